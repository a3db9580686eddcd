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
