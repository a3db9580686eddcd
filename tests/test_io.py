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
