"""The framework-agnostic core, on dicts of NumPy arrays."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import helpers
from helpers import Layout, LayoutError, PrecisionWarning

FLOAT_DTYPES = [np.float16, np.float32, np.float64]

weights_dicts = st.dictionaries(
    keys=st.from_regex(r"[a-z][a-z0-9_/.]{0,12}", fullmatch=True),
    values=st.sampled_from(FLOAT_DTYPES).flatmap(
        lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=4, max_side=5))
    ),
    min_size=1,
    max_size=6,
)


def digest(weights: dict[str, np.ndarray]) -> str:
    """A hash of every byte, shape and dtype: equal digests mean nothing changed."""
    hasher = hashlib.sha256()
    for name, array in weights.items():
        hasher.update(f"{name}{array.shape}{array.dtype}".encode())
        hasher.update(np.ascontiguousarray(array).tobytes())
    return hasher.hexdigest()


def small_model() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "kernel": rng.normal(size=(4, 3)).astype(np.float32),
        "bias": rng.normal(size=3).astype(np.float32),
    }


@settings(max_examples=60, deadline=None)
@given(weights=weights_dicts, order=st.sampled_from(["C", "F"]))
def test_unflatten_inverts_flatten_bit_for_bit(weights, order):
    vector, layout = helpers.flatten(weights, order=order)
    assert vector.shape == (sum(a.size for a in weights.values()),)
    back = helpers.unflatten(vector, layout)
    assert list(back) == list(weights)
    for name, array in weights.items():
        assert back[name].dtype == array.dtype
        np.testing.assert_array_equal(back[name], array, strict=True)


@settings(max_examples=60, deadline=None)
@given(weights=weights_dicts, order=st.sampled_from(["C", "F"]))
def test_restore_into_a_zeroed_twin_reproduces_the_model(weights, order):
    vector, layout = helpers.flatten(weights, order=order)
    twin = {name: np.zeros_like(array) for name, array in weights.items()}
    helpers.restore(twin, vector, layout)
    assert digest(twin) == digest(weights)


@settings(max_examples=30, deadline=None)
@given(weights=weights_dicts)
def test_layout_survives_json(weights):
    _, layout = helpers.flatten(weights, order="F")
    again = Layout.from_json(layout.to_json())
    assert again == layout
    assert again.fingerprint == layout.fingerprint


def test_c_order_is_concatenated_ravel_and_f_order_walks_columns():
    weights = {"kernel": np.arange(6.0).reshape(2, 3), "bias": np.array([10.0, 20.0, 30.0])}
    c_vector, _ = helpers.flatten(weights, order="C")
    f_vector, _ = helpers.flatten(weights, order="F")
    assert c_vector.tolist() == [0, 1, 2, 3, 4, 5, 10, 20, 30]
    assert f_vector.tolist() == [0, 3, 1, 4, 2, 5, 10, 20, 30]


def test_layout_records_offsets_sizes_and_the_widest_float_dtype():
    weights = {"half": np.ones((2, 2), np.float16), "single": np.ones(3, np.float32)}
    vector, layout = helpers.flatten(weights)
    assert vector.dtype == np.float32 and layout.dtype == "float32"
    assert [(e.offset, e.size, e.dtype) for e in layout] == [(0, 4, "float16"), (4, 3, "float32")]
    assert layout["single"].shape == (3,)
    assert "single" in str(layout) and layout.fingerprint in str(layout)


def test_chosen_vector_dtype_is_used():
    vector, layout = helpers.flatten(small_model(), dtype="float64")
    assert vector.dtype == np.float64 and layout.dtype == "float64"
    with pytest.raises(ValueError, match="floating point"):
        helpers.flatten(small_model(), dtype="int32")


def test_integer_tensors_travel_as_floats_and_come_back_as_integers():
    weights = {"scale": np.ones(2, np.float32), "count": np.array(7, np.int64)}
    vector, layout = helpers.flatten(weights)
    assert vector.tolist() == [1.0, 1.0, 7.0]
    helpers.restore(weights, vector + np.float32(1), layout)
    assert weights["count"].dtype == np.int64 and int(weights["count"]) == 8


def test_fingerprint_ignores_names_and_order_but_not_shapes():
    model = small_model()
    renamed = {"w": model["kernel"], "b": model["bias"]}
    _, layout = helpers.flatten(model)
    assert helpers.flatten(renamed)[1].fingerprint == layout.fingerprint
    assert helpers.flatten(model, order="F")[1].fingerprint == layout.fingerprint
    reshaped = {"kernel": model["kernel"].reshape(3, 4), "bias": model["bias"]}
    assert helpers.flatten(reshaped)[1].fingerprint != layout.fingerprint


@pytest.mark.parametrize(
    ("make_bad_input", "message"),
    [
        (
            lambda vector, layout: (vector[:-1], layout),
            r"vector: expected 15 values for this layout, got 14",
        ),
        (
            lambda vector, layout: (vector.reshape(3, 5), layout),
            r"vector: expected a 1-D array, got shape \(3, 5\)",
        ),
        (
            lambda vector, layout: (vector.astype(np.float64), layout),
            r"vector: expected dtype float32, got float64",
        ),
        (
            lambda vector, layout: (
                vector[:12],
                helpers.flatten({"kernel": np.ones((4, 3), np.float32)})[1],
            ),
            r"expected 2 tensors \(15 values\), got 1 \(12 values\)",
        ),
        (
            lambda vector, layout: (
                vector,
                helpers.flatten(
                    {"kernel": np.ones((3, 4), np.float32), "bias": np.ones(3, np.float32)}
                )[1],
            ),
            r"tensor #0 'kernel': expected shape \(4, 3\), got \(3, 4\)",
        ),
        (
            lambda vector, layout: (
                vector.astype(np.float64),
                helpers.flatten({"kernel": np.ones((4, 3)), "bias": np.ones(3)})[1],
            ),
            r"tensor #0 'kernel': expected dtype float32, got float64",
        ),
    ],
    ids=["too-short", "not-1d", "wrong-dtype", "fewer-tensors", "wrong-shape", "tensor-dtype"],
)
def test_bad_input_raises_a_clear_error_and_changes_nothing(make_bad_input, message):
    model = small_model()
    vector, layout = helpers.flatten(model)
    before = digest(model)
    bad_vector, bad_layout = make_bad_input(vector * 0, layout)
    with pytest.raises(LayoutError, match=message):
        helpers.restore(model, bad_vector, bad_layout)
    assert digest(model) == before


def test_layout_for_another_framework_is_refused():
    model = small_model()
    vector, layout = helpers.flatten(model)
    foreign = Layout(layout.entries, framework="torch", dtype=layout.dtype)
    with pytest.raises(LayoutError, match="it is for a torch model, this is a numpy model"):
        helpers.restore(model, vector, foreign)


def test_nonfinite_values_are_refused_only_when_asked():
    model = small_model()
    vector, layout = helpers.flatten(model)
    vector[13] = np.nan
    before = digest(model)
    with pytest.raises(LayoutError, match=r"tensor 'bias': expected finite values, got 1 NaN/inf"):
        helpers.restore(model, vector, layout, reject_nonfinite=True)
    assert digest(model) == before
    helpers.restore(model, vector, layout)
    assert np.isnan(model["bias"][1])


@pytest.mark.parametrize("bad_count", [0.5, -1.0, np.inf, 2.0**40])
def test_integer_tensor_refuses_values_it_cannot_hold(bad_count):
    weights = {"count": np.array([3], np.int32), "scale": np.ones(2)}
    vector, layout = helpers.flatten(weights)
    vector[0] = bad_count
    weights["count"] = weights["count"].astype(np.uint8)  # model now holds uint8
    _, layout = helpers.flatten(weights)
    before = digest(weights)
    with pytest.raises(LayoutError, match=r"tensor 'count': expected whole numbers that fit uint8"):
        helpers.restore(weights, vector, layout)
    assert digest(weights) == before


def test_narrowing_cast_warns_when_values_round():
    weights = {"half": np.zeros(3, np.float16), "wide": np.zeros(1, np.float32)}
    vector, layout = helpers.flatten(weights)
    vector[:] = [1.0, 1.0 + 2.0**-20, 2.0, 0.0]
    with pytest.warns(PrecisionWarning, match=r"tensor 'half': 1 values rounded"):
        helpers.restore(weights, vector, layout)


def test_failed_write_puts_back_what_was_written():
    model = small_model()
    vector, layout = helpers.flatten(model)
    before = digest(model)
    model["bias"].flags.writeable = False  # the second write will fail
    with pytest.raises(ValueError, match="read-only"):
        helpers.restore(model, vector * 0, layout)
    assert digest(model) == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"include": "frozen"}, r"include must be one of \('trainable', 'all'\), got 'frozen'"),
        ({"order": "K"}, r"order must be one of \('C', 'F'\), got 'K'"),
    ],
)
def test_invalid_choices_are_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        helpers.flatten(small_model(), **arguments)


def test_unknown_models_and_non_arrays_are_refused():
    with pytest.raises(TypeError, match="no adapter for builtins.list"):
        helpers.flatten([np.ones(3)])
    with pytest.raises(TypeError, match=r"'kernel': expected a numpy.ndarray, got list"):
        helpers.flatten({"kernel": [1.0, 2.0]})


def test_corrupt_layout_json_is_refused():
    _, layout = helpers.flatten(small_model())
    document = json.loads(layout.to_json())
    document["entries"][0]["shape"] = [3, 4]
    with pytest.raises(LayoutError, match="fingerprint"):
        Layout.from_json(json.dumps(document))
    document = json.loads(layout.to_json())
    document["entries"][1]["offset"] = 5
    with pytest.raises(LayoutError, match="offsets/sizes"):
        Layout.from_json(json.dumps(document))
    document["format_version"] = 99
    with pytest.raises(LayoutError, match="format_version 99, expected 1"):
        Layout.from_json(json.dumps(document))


def test_repeated_names_are_refused():
    with pytest.raises(LayoutError, match=r"repeated: \['w'\]"):
        Layout.from_specs([("w", (1,), "float32", True)] * 2, framework="numpy")


def test_unknown_tensor_name_lists_the_known_ones():
    _, layout = helpers.flatten(small_model())
    with pytest.raises(
        KeyError, match=r"no tensor named 'weight'; the layout has \['kernel', 'bias'\]"
    ):
        layout["weight"]


def test_import_helpers_loads_no_framework():
    code = (
        "import sys, helpers, helpers.data, helpers.nnet; "
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'sklearn') if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "[]"


def test_restore_into_a_twin_with_other_names_goes_by_position():
    model = small_model()
    vector, layout = helpers.flatten(model)
    twin = {"w": np.zeros((4, 3), np.float32), "b": np.zeros(3, np.float32)}
    helpers.restore(twin, vector, layout)
    assert np.array_equal(twin["w"], model["kernel"]) and np.array_equal(twin["b"], model["bias"])


def test_integers_a_float32_vector_cannot_hold_are_reported():
    weights = {"scale": np.ones(2, np.float32), "count": np.array(2**24 + 1, np.int64)}
    with pytest.warns(PrecisionWarning, match="'count': int64 values do not fit a float32 vector"):
        helpers.flatten(weights)
    vector, _ = helpers.flatten(weights, dtype="float64")
    assert vector[-1] == 2**24 + 1
