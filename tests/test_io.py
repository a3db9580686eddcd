"""Saving a vector with its layout, and loading it back (.npz and .safetensors)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import helpers
from helpers import LayoutError


def model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {"kernel": rng.normal(size=(5, 4)).astype(np.float32), "bias": np.zeros(4, np.float32)}


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_save_then_load_gives_back_the_same_vector_and_layout(tmp_path, suffix, order):
    vector, layout = helpers.flatten(model(), order=order)
    path = helpers.save(tmp_path / f"weights{suffix}", vector, layout)
    loaded_vector, loaded_layout = helpers.load(path, model=model())
    assert loaded_layout == layout
    assert loaded_vector.dtype == vector.dtype
    np.testing.assert_array_equal(loaded_vector, vector, strict=True)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_loading_for_another_model_names_the_tensor(tmp_path, suffix):
    path = helpers.save(tmp_path / f"weights{suffix}", *helpers.flatten(model()))
    other = {"kernel": np.zeros((6, 4), np.float32), "bias": np.zeros(4, np.float32)}
    with pytest.raises(LayoutError, match=rf"weights{suffix}: .*'kernel': expected shape \(6, 4\)"):
        helpers.load(path, model=other)


def test_npz_is_read_without_pickle(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, vector=np.array([object()], dtype=object), layout=np.array("{}"))
    with pytest.raises(LayoutError, match="evil.npz: not a vector file written by helpers.save"):
        helpers.load(path)


def test_npz_missing_arrays_and_bad_suffixes_are_named(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, vector=np.zeros(3))
    with pytest.raises(LayoutError, match=r"partial.npz: .*missing \['layout'\]"):
        helpers.load(path)
    with pytest.raises(ValueError, match=r"weights.pt: expected a name ending in"):
        helpers.save(tmp_path / "weights.pt", *helpers.flatten(model()))
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        helpers.load(tmp_path / "absent.npz")


def test_a_vector_that_disagrees_with_its_layout_is_refused(tmp_path):
    vector, layout = helpers.flatten(model())
    with pytest.raises(LayoutError, match=r"expected shape \(24,\) and dtype float32"):
        helpers.save(tmp_path / "w.npz", vector[:-1], layout)
    path = tmp_path / "edited.npz"
    np.savez(path, vector=vector[:-1], layout=np.array(layout.to_json()))
    with pytest.raises(LayoutError, match="edited.npz: the layout expects 24 values of float32"):
        helpers.load(path)


def test_edited_layout_in_the_file_is_caught_by_its_fingerprint(tmp_path):
    vector, layout = helpers.flatten(model())
    document = json.loads(layout.to_json())
    document["entries"][1]["dtype"] = "float64"
    path = tmp_path / "edited.npz"
    np.savez(path, vector=vector, layout=np.array(json.dumps(document)))
    with pytest.raises(LayoutError, match="fingerprint"):
        helpers.load(path)


# --- Damaged or wrong files: a LayoutError that names the file (issue 7) --------------


def saved_bytes(tmp_path, suffix: str) -> bytes:
    return helpers.save(tmp_path / f"good{suffix}", *helpers.flatten(model())).read_bytes()


def _npy_named_npz(tmp_path):
    path = tmp_path / "weights.npz"
    with path.open("wb") as stream:
        np.save(stream, np.zeros(3))
    return path


def _empty_npz(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path)
    return path


def _truncated(suffix):
    def make(tmp_path):
        path = tmp_path / f"weights{suffix}"
        path.write_bytes(saved_bytes(tmp_path, suffix)[:-40])
        return path

    return make


def _crc_damaged_npz(tmp_path):
    data = bytearray(saved_bytes(tmp_path, ".npz"))
    data[data.index(b"\x93NUMPY") + 200] ^= 0xFF  # inside the vector's bytes
    path = tmp_path / "weights.npz"
    path.write_bytes(bytes(data))
    return path


def _text(suffix):
    def make(tmp_path):
        path = tmp_path / f"weights{suffix}"
        path.write_text("kernel,bias\n1,2\n")
        return path

    return make


def _empty_file(suffix):
    def make(tmp_path):
        path = tmp_path / f"weights{suffix}"
        path.write_bytes(b"")
        return path

    return make


def _huge_safetensors_header(tmp_path):
    path = tmp_path / "weights.safetensors"
    path.write_bytes((2**40).to_bytes(8, "little") + b"{}")
    return path


def _non_json_layout_npz(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, vector=np.zeros(24, np.float32), layout=np.array("kernel then bias"))
    return path


def _non_json_layout_safetensors(tmp_path):
    from safetensors.numpy import save_file

    from helpers._io import _crc32

    path, vector = tmp_path / "weights.safetensors", np.zeros(24, np.float32)
    save_file(
        {"vector": vector}, path, metadata={"layout": "{oops", "vector_crc32": _crc32(vector)}
    )
    return path


def _flipped_value_safetensors(tmp_path):
    data = bytearray(saved_bytes(tmp_path, ".safetensors"))
    data[-5] ^= 0x01  # one bit of the last value: no format check can see it, the CRC does
    path = tmp_path / "weights.safetensors"
    path.write_bytes(bytes(data))
    return path


def _no_crc_safetensors(tmp_path):
    from safetensors.numpy import save_file

    vector, layout = helpers.flatten(model())
    path = tmp_path / "weights.safetensors"
    save_file({"vector": vector}, path, metadata={"layout": layout.to_json()})
    return path


def _layout_not_a_string_npz(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, vector=np.zeros(24, np.float32), layout=np.arange(3))
    return path


def _edited_order_npz(tmp_path):
    vector, layout = helpers.flatten(model())
    document = json.loads(layout.to_json())
    document["order"] = "F"
    path = tmp_path / "weights.npz"
    np.savez(path, vector=vector, layout=np.array(json.dumps(document)))
    return path


@pytest.mark.parametrize(
    ("make_file", "message"),
    [
        (_npy_named_npz, r"holds a single array \(np.save\), not an .npz archive"),
        (_empty_npz, r"missing \['layout', 'vector'\]"),
        (_truncated(".npz"), r"not a vector file written by helpers.save \(BadZipFile"),
        (_crc_damaged_npz, r"not a vector file written by helpers.save \(BadZipFile: Bad CRC"),
        (_text(".npz"), r"not a zip archive \(an .npz is one\); it starts with b'kernel,b'"),
        (_empty_file(".npz"), r"not a zip archive"),
        (_truncated(".safetensors"), r"not a vector file written by helpers.save \(Safetensor"),
        (_huge_safetensors_header, r"\(SafetensorError: .*header too large"),
        (_text(".safetensors"), r"not a vector file written by helpers.save \(SafetensorError"),
        (_empty_file(".safetensors"), r"not a vector file written by helpers.save"),
        (_non_json_layout_npz, r"layout JSON: not valid JSON"),
        (_non_json_layout_safetensors, r"layout JSON: not valid JSON"),
        (_layout_not_a_string_npz, r"'layout' must be one JSON string, got shape \(3,\)"),
        (_flipped_value_safetensors, r"the vector's CRC-32 is \w+, the file says '\w+'"),
        (_no_crc_safetensors, r"expected a 'vector' tensor and 'layout' and 'vector_crc32'"),
        (_edited_order_npz, r"layout JSON: checksum"),
    ],
    ids=[
        "npy-as-npz",
        "empty-npz",
        "truncated-npz",
        "crc-damaged-npz",
        "text-npz",
        "empty-file-npz",
        "truncated-safetensors",
        "2**40-header",
        "text-safetensors",
        "empty-file-safetensors",
        "non-json-npz",
        "non-json-safetensors",
        "layout-not-a-string",
        "flipped-value-safetensors",
        "no-crc-safetensors",
        "edited-order",
    ],
)
def test_a_damaged_or_foreign_file_is_a_layout_error_naming_it(tmp_path, make_file, message):
    path = make_file(tmp_path)
    with pytest.raises(LayoutError, match=rf"^{path.name}: .*{message}"):
        helpers.load(path)


def test_a_directory_named_like_a_vector_file_is_reported_as_one(tmp_path):
    (tmp_path / "weights.npz").mkdir()
    with pytest.raises(IsADirectoryError, match=r"weights.npz: is a directory, expected a file"):
        helpers.load(tmp_path / "weights.npz")


@pytest.mark.parametrize(
    "make_file",
    [
        _npy_named_npz,
        _empty_npz,
        _truncated(".npz"),
        _crc_damaged_npz,
        _text(".npz"),
        _empty_file(".npz"),
        _truncated(".safetensors"),
        _huge_safetensors_header,
        _text(".safetensors"),
        _empty_file(".safetensors"),
        _non_json_layout_npz,
        _non_json_layout_safetensors,
        _layout_not_a_string_npz,
        _flipped_value_safetensors,
        _no_crc_safetensors,
        _edited_order_npz,
    ],
)
def test_a_damaged_file_is_refused_when_memory_mapped_too(tmp_path, make_file):
    path = make_file(tmp_path)
    with pytest.raises(LayoutError, match=rf"^{path.name}: "):
        helpers.load(path, mmap=True)


def torch_model():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3),
        torch.nn.BatchNorm2d(3),
        torch.nn.Flatten(),
        torch.nn.Linear(12, 2),
    )
    net(torch.randn(4, 2, 4, 4))  # batch-norm statistics, and an int64 counter
    net[3].weight.data = net[3].weight.data.t().contiguous().t()  # a transposed parameter
    return net


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@pytest.mark.parametrize(
    ("include", "order", "dtype"),
    [
        ("trainable", "C", None),
        ("all", "F", None),
        ("all", "C", "float64"),
        ("all", "C", "float16"),
    ],
)
@pytest.mark.parametrize("make_model", [model, torch_model], ids=["numpy", "torch"])
def test_saving_a_model_streams_the_same_file_as_saving_its_vector(
    tmp_path, suffix, include, order, dtype, make_model
):
    net = make_model()
    vector, layout = helpers.flatten(net, include=include, order=order, dtype=dtype)
    from_vector = helpers.save(tmp_path / f"vector{suffix}", vector, layout)
    streamed = helpers.save(
        tmp_path / f"model{suffix}", model=net, include=include, order=order, dtype=dtype
    )
    if suffix == ".npz":
        import zipfile

        with zipfile.ZipFile(from_vector) as first, zipfile.ZipFile(streamed) as second:
            assert first.namelist() == second.namelist()
            for name in first.namelist():
                assert first.read(name) == second.read(name)
                assert first.getinfo(name).compress_type == second.getinfo(name).compress_type
    else:  # safetensors writes its metadata keys in any order; the data must be identical
        first, second = from_vector.read_bytes(), streamed.read_bytes()
        assert len(first) == len(second)
        assert first[-vector.nbytes :] == second[-vector.nbytes :]
    for path in (from_vector, streamed):
        for mmap in (False, True):
            loaded, loaded_layout = helpers.load(path, model=net, mmap=mmap)
            assert loaded_layout == layout
            assert loaded.dtype == vector.dtype
            np.testing.assert_array_equal(loaded, vector, strict=False)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_a_memory_mapped_vector_is_read_only_and_restores(tmp_path, suffix):
    weights = model()
    vector, layout = helpers.flatten(weights)
    path = helpers.save(tmp_path / f"weights{suffix}", vector * 2, layout)
    mapped, mapped_layout = helpers.load(path, mmap=True)
    assert not mapped.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        mapped[0] = 1.0
    helpers.restore(weights, mapped, mapped_layout)
    np.testing.assert_array_equal(helpers.flatten(weights)[0], vector * 2)


def test_a_compressed_npz_cannot_be_memory_mapped(tmp_path):
    vector, layout = helpers.flatten(model())
    path = tmp_path / "weights.npz"
    np.savez_compressed(path, vector=vector, layout=np.array(layout.to_json()))
    np.testing.assert_array_equal(helpers.load(path)[0], vector)
    with pytest.raises(LayoutError, match=r"compressed .* load it with mmap=False"):
        helpers.load(path, mmap=True)


def test_save_takes_a_vector_and_layout_or_a_model(tmp_path):
    vector, layout = helpers.flatten(model())
    with pytest.raises(TypeError, match="not both"):
        helpers.save(tmp_path / "w.npz", vector, layout, model=model())
    with pytest.raises(TypeError, match="expected a vector and its layout, or model="):
        helpers.save(tmp_path / "w.npz", vector)
    with pytest.raises(ValueError, match=r"w.pt: expected a name ending in"):
        helpers.save(tmp_path / "w.pt", model=model())
