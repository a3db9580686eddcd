"""The framework-agnostic core, on dicts of NumPy arrays."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import warnings

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


def test_ctrl_c_among_writes_that_cannot_fail_finishes_them_first(monkeypatch):
    import os
    import signal

    import helpers.adapters

    model = small_model() | {"extra": np.zeros(4, np.float32)}
    vector, layout = helpers.flatten(model)
    real_copyto, calls = np.copyto, []

    def interrupted_copyto(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between two writes
        return real_copyto(*args, **kwargs)

    monkeypatch.setattr(helpers.adapters.np, "copyto", interrupted_copyto)
    with pytest.raises(KeyboardInterrupt):
        helpers.restore(model, vector + 1, layout)
    monkeypatch.undo()
    np.testing.assert_array_equal(helpers.flatten(model)[0], vector + 1)  # all written


def test_a_vector_that_overlaps_the_arrays_is_read_before_they_are_written():
    memory = np.arange(6.0)
    model = {"first": memory[:3], "second": memory[3:]}
    _, layout = helpers.flatten(model)
    backwards = memory[::-1]  # the same memory, read the other way
    wanted = backwards.copy()
    helpers.restore(model, backwards, layout)
    np.testing.assert_array_equal(memory, wanted)


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
    with pytest.raises(LayoutError, match=r"'bias': offset 5, expected 12"):
        Layout.from_json(json.dumps(document))
    document["format_version"] = 99
    with pytest.raises(LayoutError, match="format_version 99, expected 2"):
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


# --- A layout is consistent by construction (issue 7, item 9) -------------------------


def entries_of(layout: Layout) -> list[helpers.TensorEntry]:
    return list(layout.entries)


def _swapped_offsets(entries):
    first, second = entries
    return [
        dataclasses.replace(first, offset=second.size),
        dataclasses.replace(second, offset=0),
    ]


@pytest.mark.parametrize(
    ("make_entries", "fields", "message"),
    [
        (_swapped_offsets, {}, r"'kernel': offset 3, expected 0"),
        (
            lambda e: [e[0], dataclasses.replace(e[1], offset=10)],
            {},
            r"'bias': offset 10, expected 12 \(entries lie back to back",
        ),
        (lambda e: [e[1], e[0]], {}, r"'bias': offset 12, expected 0"),
        (lambda e: [e[0], dataclasses.replace(e[1], name="kernel")], {}, r"repeated: \['kernel'\]"),
        (lambda e: e, {"order": "X"}, r"order must be one of \('C', 'F'\), got 'X'"),
        (lambda e: e, {"include": "bogus"}, r"include must be one of .*got 'bogus'"),
        (lambda e: e, {"dtype": "complex128"}, r"dtype must be one of .*got 'complex128'"),
        (lambda e: e, {"dtype": "bfloat16"}, r"dtype must be one of .*got 'bfloat16'"),
        (lambda e: e, {"framework": ""}, r"framework: expected a framework name"),
        (lambda e: [*e, "not an entry"], {}, r"expected TensorEntry objects"),
    ],
    ids=[
        "swapped",
        "overlapping",
        "out-of-order",
        "repeated-name",
        "order",
        "include",
        "vector-dtype",
        "bfloat16-vector",
        "framework",
        "not-an-entry",
    ],
)
def test_an_inconsistent_layout_cannot_be_made(make_entries, fields, message):
    _, layout = helpers.flatten(small_model())
    arguments = {"framework": "numpy", "dtype": "float32", **fields}
    with pytest.raises(LayoutError, match=message):
        Layout(tuple(make_entries(entries_of(layout))), **arguments)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size": 5}, r"'kernel': size 5 does not match shape \(4, 3\) \(expected 12\)"),
        ({"shape": (4, -3), "size": -12}, r"shape must be a tuple of non-negative integers"),
        ({"shape": (4.0, 3)}, r"shape must be a tuple of non-negative integers"),
        ({"shape": (True, 12)}, r"shape must be a tuple of non-negative integers"),
        ({"shape": "ab"}, r"shape must be a tuple of non-negative integers, got 'ab'"),
        ({"offset": -1}, r"offset must be a non-negative integer, got -1"),
        ({"offset": 0.0}, r"offset must be a non-negative integer, got 0.0"),
        ({"dtype": "complex128"}, r"'kernel': dtype must be one of .*got 'complex128'"),
        ({"trainable": 1}, r"trainable must be True or False, got 1"),
        ({"name": 0}, r"tensor name: expected a str, got 0"),
    ],
)
def test_an_inconsistent_tensor_entry_cannot_be_made(changes, message):
    entry = helpers.flatten(small_model())[1].entries[0]
    with pytest.raises(LayoutError, match=message):
        dataclasses.replace(entry, **changes)


def test_from_specs_checks_shapes_before_computing_sizes():
    with pytest.raises(LayoutError, match=r"tensor 'w': shape must be .*got \[2, 'a'\]"):
        Layout.from_specs([("w", [2, "a"], "float32", True)], framework="numpy")
    layout = Layout.from_specs([("w", [2, np.int64(3)], "float32", True)], framework="numpy")
    assert layout["w"].shape == (2, 3) and type(layout["w"].shape[1]) is int


# --- from_json: every malformed document is a LayoutError (raw internal errors) -------


def layout_document() -> dict:
    return json.loads(helpers.flatten(small_model())[1].to_json())


def edited(path: tuple, value) -> str:
    document = layout_document()
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(document)


DELETE = object()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"format_version": 2}', r"missing keys \['framework', .*'checksum'\]"),
        ('{"format_version": 1}', r"format_version 1, expected 2 \(written before"),
        ("[1]", r"expected a JSON object, got list"),
        ("null", r"expected a JSON object, got NoneType"),
        ('"x"', r"expected a JSON object, got str"),
        ("{", r"not valid JSON \(JSONDecodeError"),
        ("", r"not valid JSON"),
        ("[" * 100_000, r"not valid JSON \(RecursionError"),
        (b"\xff\xfe{", r"not valid JSON"),
        (None, r"expected a JSON string, got NoneType"),
        (edited(("entries",), None), r"entries: expected a list, got None"),
        (edited(("entries", 0), 7), r"entry #0: expected a JSON object, got 7"),
        (edited(("entries", 0, "offset"), DELETE), r"entry #0: missing keys \['offset'\]"),
        (edited(("entries", 0, "colour"), "red"), r"entry #0: .*unknown keys \['colour'\]"),
        (edited(("extra",), 1), r"the document: missing keys \[\], unknown keys \['extra'\]"),
        (edited(("entries", 0, "shape"), "ab"), r"entry #0: tensor 'kernel': shape must be"),
        (edited(("entries", 0, "shape"), 6), r"shape must be .*got 6"),
        (edited(("entries", 0, "shape"), [-4, -3]), r"shape must be .*got \[-4, -3\]"),
        (edited(("entries", 0, "shape"), [4.0, 3]), r"shape must be .*got \[4.0, 3\]"),
        (edited(("entries", 0, "trainable"), 1), r"trainable must be True or False, got 1"),
        (edited(("entries", 0, "name"), 5), r"entry #0: tensor name: expected a str, got 5"),
        (edited(("entries", 0, "dtype"), "complex128"), r"dtype must be one of .*'complex128'"),
        (edited(("entries", 0, "offset"), float("nan")), r"offset must be .*got nan"),
        (edited(("order",), "X"), r"order must be one of \('C', 'F'\), got 'X'"),
        (edited(("include",), "bogus"), r"include must be one of .*got 'bogus'"),
        (edited(("dtype",), "complex128"), r"dtype must be one of .*got 'complex128'"),
        (edited(("framework",), None), r"framework: expected a framework name, got None"),
        (edited(("fingerprint",), 0), r"fingerprint 0, but its entries give"),
        (edited(("checksum",), None), r"checksum None, but the document gives"),
    ],
)
def test_malformed_layout_json_is_a_layout_error(text, message):
    with pytest.raises(LayoutError, match=r"^layout JSON: .*" + message):
        Layout.from_json(text)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (("order",), "F"),
        (("include",), "all"),
        (("dtype",), "float64"),
        (("entries", 1, "name"), "renamed"),
    ],
)
def test_edited_order_include_dtype_or_name_is_caught_by_the_checksum(field, value):
    """The fingerprint leaves these out on purpose; the JSON checksum covers them (item 8)."""
    with pytest.raises(LayoutError, match=r"layout JSON: checksum '\w+', but the document gives"):
        Layout.from_json(edited(field, value))


def test_c_and_f_layouts_share_a_fingerprint_but_not_a_checksum():
    model = small_model()
    c_layout, f_layout = helpers.flatten(model)[1], helpers.flatten(model, order="F")[1]
    assert c_layout.fingerprint == f_layout.fingerprint
    assert json.loads(c_layout.to_json())["checksum"] != json.loads(f_layout.to_json())["checksum"]
    assert Layout.from_json(f_layout.to_json()).order == "F"


def test_layout_json_accepts_bytes():
    _, layout = helpers.flatten(small_model())
    assert Layout.from_json(layout.to_json().encode()) == layout


# --- Values that do not survive their casts (items 4, 5, 6) ----------------------------


def test_reject_nonfinite_counts_overflow_to_inf_when_narrowing():
    weights = {"half": np.zeros(2, np.float16), "wide": np.zeros(1, np.float64)}
    vector, layout = helpers.flatten(weights)
    vector[0] = 1e6  # finite in float64, inf in float16
    before = digest(weights)
    with pytest.raises(
        LayoutError, match=r"'half': expected finite values, got 1 NaN/inf \(1 finite values"
    ):
        helpers.restore(weights, vector, layout, reject_nonfinite=True)
    assert digest(weights) == before
    with pytest.warns(PrecisionWarning, match=r"'half': 1 values rounded .*, 1 of them to inf"):
        helpers.restore(weights, vector, layout)
    assert np.isinf(weights["half"][0])


def test_reject_nonfinite_counts_overflow_of_float32_from_a_float64_vector():
    weights = {"single": np.zeros(2, np.float32), "double": np.zeros(1, np.float64)}
    vector, layout = helpers.flatten(weights)
    vector[1] = -1e300
    with pytest.raises(LayoutError, match=r"'single': expected finite values"):
        helpers.restore(weights, vector, layout, reject_nonfinite=True)


def test_the_largest_float16_is_not_mistaken_for_an_overflow():
    weights = {"half": np.zeros(2, np.float16), "wide": np.zeros(1, np.float32)}
    vector, layout = helpers.flatten(weights)
    vector[:2] = [65504.0, -65504.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        helpers.restore(weights, vector, layout, reject_nonfinite=True)
    assert weights["half"].tolist() == [65504.0, -65504.0]


@pytest.mark.parametrize(
    ("tensor_dtype", "vector_dtype", "too_big", "largest_that_fits"),
    [
        (np.int64, np.float64, 2.0**63, 2.0**63 - 1024),
        (np.int64, np.float32, 2.0**63, 2.0**63 - 2**39),
        (np.int32, np.float32, 2.0**31, 2.0**31 - 128),
        (np.int32, np.float64, 2.0**31, 2.0**31 - 1),
        (np.uint8, np.float16, 256.0, 255.0),
        (np.uint64, np.float64, 2.0**64, 2.0**64 - 2048),
    ],
)
def test_integer_slots_at_the_top_of_their_range_never_wrap(
    tensor_dtype, vector_dtype, too_big, largest_that_fits
):
    weights = {"count": np.zeros(1, tensor_dtype), "scale": np.zeros(1, vector_dtype)}
    vector, layout = helpers.flatten(weights)
    vector[0] = too_big
    before = digest(weights)
    with pytest.raises(LayoutError, match=r"'count': expected whole numbers that fit"):
        helpers.restore(weights, vector, layout)
    assert digest(weights) == before
    vector[0] = largest_that_fits
    helpers.restore(weights, vector, layout)
    assert int(weights["count"][0]) == int(largest_that_fits)


@pytest.mark.parametrize("tensor_dtype", [np.int8, np.int16, np.int32, np.int64])
def test_the_lowest_integer_of_a_signed_dtype_fits(tensor_dtype):
    lowest = int(np.iinfo(tensor_dtype).min)
    weights = {"count": np.zeros(1, tensor_dtype), "scale": np.zeros(1)}
    vector, layout = helpers.flatten(weights)
    vector[0] = lowest
    helpers.restore(weights, vector, layout)
    assert int(weights["count"][0]) == lowest
    vector[0] = np.nextafter(float(lowest), -np.inf)
    if vector[0] != lowest:
        with pytest.raises(LayoutError, match="'count': expected whole numbers"):
            helpers.restore(weights, vector, layout)


def test_bool_tensors_take_only_zero_and_one():
    weights = {"mask": np.array([True, False]), "scale": np.zeros(1)}
    vector, layout = helpers.flatten(weights)
    vector[:2] = [0.0, 1.0]
    helpers.restore(weights, vector, layout)
    assert weights["mask"].tolist() == [False, True]
    vector[0] = 2.0
    with pytest.raises(LayoutError, match="'mask': expected whole numbers that fit bool"):
        helpers.restore(weights, vector, layout)


def test_int64_values_above_2_to_the_53_warn_in_a_float64_vector():
    with pytest.warns(
        PrecisionWarning, match=r"'n': int64 values do not fit a float64 vector exactly \(1 changed"
    ):
        vector, _ = helpers.flatten({"n": np.array([2**53 + 1, 5])})
    assert vector[0] == 2**53
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        helpers.flatten({"n": np.array([2**53, -(2**53)])})


def test_the_largest_int64_warns_since_float64_rounds_it_up_to_2_to_the_63():
    with pytest.warns(PrecisionWarning, match="'n': int64 values do not fit"):
        helpers.flatten({"n": np.array([2**63 - 1])})


def test_flatten_warns_when_a_float_overflows_a_narrower_vector_dtype():
    weights = {"big": np.array([1e6, 1.0]), "small": np.array([0.1])}
    with pytest.warns(PrecisionWarning, match=r"'big': float64 values overflow a float16 vector"):
        helpers.flatten(weights, dtype="float16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        helpers.flatten(weights, dtype="float32")  # rounding, asked for: no warning


def test_unflatten_refuses_what_restore_refuses():
    weights = {"count": np.zeros(1, np.int64), "scale": np.zeros(1)}
    vector, layout = helpers.flatten(weights)
    vector[0] = 2.5
    with pytest.raises(LayoutError, match="'count': expected whole numbers that fit int64"):
        helpers.unflatten(vector, layout)


# --- What cannot travel in a vector: refused on every path (item 10, raw errors) -------


@pytest.mark.parametrize(
    "array",
    [
        np.ones(2, np.complex128),
        np.ones(2, np.complex64),
        np.array(["a", "b"], dtype=object),
        np.array(["a", "b"]),
        np.array([b"a"]),
        np.zeros(2, dtype="datetime64[s]"),
        np.zeros(2, dtype=[("x", "f4")]),
    ],
    ids=["complex128", "complex64", "object", "unicode", "bytes", "datetime", "structured"],
)
def test_arrays_that_are_not_real_numbers_are_refused(array):
    with pytest.raises(TypeError, match=r"tensor 'w': dtype .* cannot travel in a real-valued"):
        helpers.flatten({"w": array, "b": np.zeros(2)})


def test_dict_keys_must_be_names():
    with pytest.raises(TypeError, match=r"0: expected str names for the arrays, got int"):
        helpers.flatten({0: np.ones(2)})


@pytest.mark.parametrize("dtype", ["bfloat16", "int32", "complex128", "float128", "nonsense"])
def test_a_vector_dtype_that_is_not_float16_32_or_64_is_refused(dtype):
    with pytest.raises(ValueError, match=r"dtype: the vector must be floating point"):
        helpers.flatten(small_model(), dtype=dtype)


def test_bfloat16_vector_request_explains_how_bfloat16_travels():
    with pytest.raises(ValueError, match="NumPy has no bfloat16"):
        helpers.flatten(small_model(), dtype="bfloat16")


def test_a_read_only_array_is_refused_by_name_and_nothing_changes():
    model = small_model()
    vector, layout = helpers.flatten(model)
    model["kernel"].flags.writeable = False
    before = digest(model)
    with pytest.raises(LayoutError, match=r"tensor 'kernel': the array is read-only"):
        helpers.restore(model, vector * 0, layout)
    assert digest(model) == before


def test_a_broadcast_view_that_is_writable_is_refused_as_a_restore_target():
    row = np.zeros(3)
    weights = {"w": np.lib.stride_tricks.as_strided(row, shape=(2, 3), strides=(0, 8))}
    vector, layout = helpers.flatten(weights)
    with pytest.raises(LayoutError, match=r"tensor 'w': several elements share one memory"):
        helpers.restore(weights, np.arange(6.0), layout)
    assert row.tolist() == [0.0, 0.0, 0.0]


def test_overlapping_views_in_a_dict_are_refused():
    base = np.zeros(6)
    with pytest.raises(LayoutError, match=r"tensors 'a' and 'b' share memory but are different"):
        helpers.flatten({"a": base[:4], "b": base[2:]})


def test_interleaved_views_that_do_not_overlap_are_fine():
    base = np.zeros(6)
    weights = {"even": base[::2], "odd": base[1::2]}
    vector, layout = helpers.flatten(weights)
    helpers.restore(weights, np.arange(6.0), layout)
    assert base.tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]


def test_one_array_under_two_names_is_one_tensor_like_tied_weights():
    shared = np.zeros(3)
    weights = {"encoder": shared, "decoder": shared, "bias": np.zeros(1)}
    vector, layout = helpers.flatten(weights)
    assert layout.names == ["encoder", "bias"] and vector.size == 4
    helpers.restore(weights, np.arange(4.0), layout)
    assert weights["decoder"].tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("bad_layout", [None, "layout", {"entries": []}])
def test_restore_and_unflatten_want_a_layout(bad_layout):
    with pytest.raises(TypeError, match="layout: expected a helpers.Layout"):
        helpers.restore(small_model(), np.zeros(15, np.float32), bad_layout)
    with pytest.raises(TypeError, match="layout: expected a helpers.Layout"):
        helpers.unflatten(np.zeros(15, np.float32), bad_layout)


def test_a_model_with_nothing_to_take_is_refused_by_name():
    with pytest.raises(helpers.LayoutError, match=r"dict has no tensors .* got none"):
        helpers.flatten({})
