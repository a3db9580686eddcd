"""Fuzzing the doors into the package: Layout.from_json, load, load_mnist and restore.

Each property allows exactly two outcomes: a bit-exact success, or a documented error
(LayoutError, TypeError, ValueError, MnistFileError; a PrecisionWarning beside a
success) whose message names the tensor, field or file, with the model unchanged. Any
other exception type fails the test, since hypothesis lets it propagate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import helpers
from helpers import Layout, LayoutError, PrecisionWarning
from helpers._layout import TENSOR_DTYPES
from helpers.data import MnistFileError, load_mnist

DOCUMENTED = (LayoutError, TypeError, ValueError)
# Messages about the whole layout or vector name the field instead of a tensor.
FIELD_PREFIXES = (
    "vector:",
    "layout:",
    "order ",
    "include ",
    "dtype ",
    "framework:",
    "entries:",
    "tensor name",
    "tensor names must be unique",
    "the layout does not fit this model",
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


# --- models and what "unchanged" and "bit-exact" mean -----------------------------------


def numpy_model() -> dict[str, np.ndarray]:
    """One tensor of each kind a vector must carry back exactly, or refuse."""
    rng = np.random.default_rng(0)
    return {
        "kernel": rng.normal(size=(3, 4)).astype(np.float32),
        "half": rng.normal(size=5).astype(np.float16),
        "wide": rng.normal(size=(2, 2)),
        "count": np.array(7, np.int64),
        "steps": np.array([3, -4], np.int32),
        "pixels": np.array([0, 255, 17], np.uint8),
        "mask": np.array([True, False]),
    }


def digest_arrays(arrays: dict[str, np.ndarray]) -> str:
    hasher = hashlib.sha256()
    for name, array in arrays.items():
        hasher.update(f"{name}{array.shape}{array.dtype}".encode())
        hasher.update(np.ascontiguousarray(array).tobytes())
    return hasher.hexdigest()


def same_values(expected: np.ndarray, got: np.ndarray) -> bool:
    """Bit for bit, except that every NaN equals every NaN (casts may change payloads)."""
    if expected.dtype != got.dtype or expected.shape != got.shape:
        return False
    nan = np.isnan(expected)
    if not np.array_equal(nan, np.isnan(got)):
        return False
    unsigned = np.dtype(f"u{expected.dtype.itemsize}")
    return np.array_equal(expected[~nan].view(unsigned), got[~nan].view(unsigned))


def expected_after_restore(vector: np.ndarray, layout: Layout) -> np.ndarray:
    """The vector as the model should hold it, worked out without helpers' own casts.

    Integer and bool slots must come back exactly (anything else must be refused); a
    float slot is the IEEE cast, round to nearest even (bfloat16's done by torch).
    """
    pieces = []
    for entry in layout:
        part = vector[entry.offset : entry.offset + entry.size]
        with np.errstate(over="ignore"):
            if entry.dtype == "bfloat16":
                torch = pytest.importorskip("torch")
                stored = torch.from_numpy(part.astype(np.float32)).to(torch.bfloat16)
                part = stored.float().numpy().astype(vector.dtype)
            elif np.dtype(entry.dtype).kind == "f":
                part = part.astype(entry.dtype).astype(vector.dtype)
            else:
                part = part + 0.0  # the integer 0 has no sign: -0.0 comes back as 0.0
        pieces.append(part)
    return np.concatenate(pieces or [np.empty(0, vector.dtype)])


def check_documented_error(error: Exception, names: list[str]) -> None:
    message = str(error)
    named = any(repr(name) in message for name in names) or message.startswith(FIELD_PREFIXES)
    assert named, f"the message names no tensor or field: {message!r}"


def check_restore(model, vector: np.ndarray, layout: Layout, digest, names, **options) -> None:
    """Restore, then check the only two outcomes allowed."""
    before = digest(model)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            helpers.restore(model, vector, layout, **options)
    except DOCUMENTED as error:
        event(f"refused: {type(error).__name__}")
        check_documented_error(error, names)
        assert digest(model) == before, f"a refused restore changed the model: {error}"
        return
    event("restored" + (" with a PrecisionWarning" if caught else ""))
    for warning in caught:
        assert issubclass(warning.category, PrecisionWarning), warning
        check_documented_error(warning.message, names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        held, _ = helpers.flatten(
            model, include=layout.include, order=layout.order, dtype=layout.dtype
        )
    expected = expected_after_restore(vector, layout)
    assert same_values(expected, held)
    if options.get("reject_nonfinite"):
        assert np.isfinite(held).all(), "reject_nonfinite let a NaN or inf through"


# Values that sit on the edges of the casts: integer ranges, float16/bfloat16 overflow.
EDGES = [
    2.0**63,
    2.0**63 - 1024,
    -(2.0**63),
    2.0**31,
    -(2.0**31),
    2.0**53 + 2,
    255.0,
    256.0,
    -1.0,
    0.5,
    -0.0,
    65504.0,
    65520.0,
    3.4e38,
    1e300,
    5e-324,
    np.nan,
    np.inf,
    -np.inf,
]
edge_values = st.sampled_from(EDGES)


def slot_values(tensor_dtype: str) -> st.SearchStrategy[float]:
    """Mostly values the tensor can hold, so that restores succeed often; some edges."""
    if tensor_dtype == "bool":
        fitting = st.sampled_from([0.0, 1.0])
    elif tensor_dtype == "float16":  # up to a little past float16's largest, 65504
        fitting = st.floats(-7e4, 7e4)
    elif tensor_dtype in ("bfloat16", "float32", "float64"):  # what a float32 vector holds
        fitting = st.floats(-3.4e38, 3.4e38)
    else:
        info = np.iinfo(tensor_dtype)
        fitting = st.integers(int(info.min), int(info.max)).map(float)
    return st.one_of(*[fitting] * 6, edge_values)


def random_vector(layout: Layout, data) -> np.ndarray:
    slots = [
        data.draw(hnp.arrays(np.float64, entry.size, elements=slot_values(entry.dtype)))
        for entry in layout
    ]
    with np.errstate(over="ignore"):
        return np.concatenate(slots).astype(layout.dtype)


# --- Layout.from_json ---------------------------------------------------------------


def valid_document() -> dict:
    _, layout = helpers.flatten(numpy_model(), include="all", order="F")
    return json.loads(layout.to_json())


def paths_of(document, prefix=()):
    """Every place in a JSON document that a mutation could replace."""
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from paths_of(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from paths_of(value, (*prefix, index))


VALID_DOCUMENT = valid_document()
DOCUMENT_PATHS = [path for path in paths_of(VALID_DOCUMENT) if path]


def replaced(document, path, value):
    document = json.loads(json.dumps(document))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return document


@settings(max_examples=150)
@given(text=st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_from_json_on_any_text_is_a_layout_error(text):
    with pytest.raises(LayoutError, match=r"^layout JSON: "):
        Layout.from_json(text)


@settings(max_examples=150)
@given(document=json_values)
def test_from_json_on_any_json_value_is_a_layout_error(document):
    with pytest.raises(LayoutError, match=r"^layout JSON: "):
        Layout.from_json(json.dumps(document))


@settings(max_examples=300)
@given(path=st.sampled_from(DOCUMENT_PATHS), value=json_values)
def test_from_json_on_a_mutated_document_refuses_or_reads_the_same_layout(path, value):
    text = json.dumps(replaced(VALID_DOCUMENT, path, value))
    original = Layout.from_json(json.dumps(VALID_DOCUMENT))
    try:
        layout = Layout.from_json(text)
    except LayoutError as error:
        event("refused")
        assert str(error).startswith("layout JSON: ")
        return
    event("read")
    assert layout == original  # only a mutation that changed nothing may pass


# --- load ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_files(tmp_path_factory) -> dict[str, tuple[bytes, np.ndarray, Layout]]:
    folder = tmp_path_factory.mktemp("saved")
    vector, layout = helpers.flatten(numpy_model(), include="all")
    return {
        suffix: (
            helpers.save(folder / f"good{suffix}", vector, layout).read_bytes(),
            vector,
            layout,
        )
        for suffix in (".npz", ".safetensors")
    }


def check_load(contents: bytes, suffix: str, original: tuple[np.ndarray, Layout] | None):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzzed{suffix}"
        path.write_bytes(contents)
        try:
            vector, layout = helpers.load(path)
        except LayoutError as error:
            event("refused")
            assert str(error).startswith(f"{path.name}: "), str(error)
            return
    event("loaded")
    assert original is not None, "random bytes were accepted as a vector file"
    assert layout == original[1]
    assert vector.tobytes() == original[0].tobytes() and vector.dtype == original[0].dtype


fuzz_files = settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])


@fuzz_files
@given(suffix=st.sampled_from([".npz", ".safetensors"]), contents=st.binary(max_size=300))
def test_load_of_random_bytes_is_a_layout_error_naming_the_file(suffix, contents):
    check_load(contents, suffix, None)


@fuzz_files
@given(suffix=st.sampled_from([".npz", ".safetensors"]), data=st.data())
def test_load_of_a_truncated_file_is_a_layout_error_naming_the_file(saved_files, suffix, data):
    contents, vector, layout = saved_files[suffix]
    length = data.draw(st.integers(0, len(contents) - 1), label="length")
    check_load(contents[:length], suffix, (vector, layout))


@settings(max_examples=250, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from([".npz", ".safetensors"]), data=st.data())
def test_load_of_a_mutated_file_refuses_or_gives_the_same_vector(saved_files, suffix, data):
    contents, vector, layout = saved_files[suffix]
    mutated = bytearray(contents)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        position = data.draw(st.integers(0, len(mutated) - 1), label="position")
        mutated[position] = data.draw(st.integers(0, 255), label="byte")
    check_load(bytes(mutated), suffix, (vector, layout))


# --- load_mnist --------------------------------------------------------------------------


def tiny_keras_npz() -> tuple[bytes, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8),
        "y_train": np.array([0, 9, 4], np.uint8),
        "x_test": rng.integers(0, 256, size=(2, 28, 28), dtype=np.uint8),
        "y_test": np.array([7, 1], np.uint8),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue(), arrays


MNIST_NPZ, MNIST_ARRAYS = tiny_keras_npz()


@settings(max_examples=150)
@given(data=st.data())
def test_load_mnist_of_a_damaged_npz_is_a_mnist_file_error_naming_the_file(data):
    mutated = bytearray(MNIST_NPZ)
    if data.draw(st.booleans(), label="truncate"):
        mutated = mutated[: data.draw(st.integers(0, len(mutated) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 4), label="mutations")):
            position = data.draw(st.integers(0, len(mutated) - 1), label="position")
            mutated[position] = data.draw(st.integers(0, 255), label="byte")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mnist.npz"
        path.write_bytes(bytes(mutated))
        try:
            (x_train, y_train), (x_test, y_test) = load_mnist(path)
        except MnistFileError as error:
            event("refused")
            assert str(path) in str(error), str(error)
            return
        event("loaded")
    loaded = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for name, array in MNIST_ARRAYS.items():  # the zip's CRC leaves no silent change
        np.testing.assert_array_equal(loaded[name], array, strict=True)


# --- restore ------------------------------------------------------------------------------


@settings(max_examples=200)
@given(
    order=st.sampled_from(["C", "F"]),
    dtype=st.sampled_from(["float32", "float64"]),
    reject_nonfinite=st.booleans(),
    data=st.data(),
)
def test_restore_of_a_random_vector_is_bit_exact_or_refused(order, dtype, reject_nonfinite, data):
    model = numpy_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)  # float64 "wide" into float32
        _, layout = helpers.flatten(model, include="all", order=order, dtype=dtype)
    vector = random_vector(layout, data)
    check_restore(
        model, vector, layout, digest_arrays, layout.names, reject_nonfinite=reject_nonfinite
    )


def mutated_entry(entry, data) -> helpers.TensorEntry:
    field = data.draw(st.sampled_from(["shape", "dtype", "offset", "size", "trainable", "name"]))
    values = {
        "shape": st.one_of(
            st.lists(st.integers(-2, 6), max_size=3).map(tuple),
            st.lists(st.floats(0, 4), max_size=2),
            st.text(max_size=3),
            st.integers(),
        ),
        "dtype": st.sampled_from([*TENSOR_DTYPES, "complex128", "object", "float128", ""]),
        "offset": st.one_of(st.integers(-3, 80), st.floats(0, 80)),
        "size": st.one_of(st.integers(-3, 80), st.just(True)),
        "trainable": st.one_of(st.booleans(), st.integers(0, 1), st.none()),
        "name": st.one_of(st.text(max_size=6), st.integers(), st.none()),
    }[field]
    return dataclasses.replace(entry, **{field: data.draw(values, label=field)})


def mutated_layout(layout: Layout, data) -> Layout:
    """One random edit of a valid layout; building it may already refuse it."""
    entries = list(layout.entries)
    kind = data.draw(
        st.sampled_from(
            ["entry", "swap", "drop", "repeat", "order", "include", "dtype", "framework"]
        )
    )
    index = data.draw(st.integers(0, len(entries) - 1), label="index")
    fields = {
        "framework": layout.framework,
        "include": layout.include,
        "order": layout.order,
        "dtype": layout.dtype,
    }
    if kind == "entry":
        entries[index] = mutated_entry(entries[index], data)
    elif kind == "swap":
        other = data.draw(st.integers(0, len(entries) - 1), label="other")
        entries[index], entries[other] = entries[other], entries[index]
    elif kind == "drop":
        del entries[index]
    elif kind == "repeat":
        entries.insert(index, entries[index])
    else:
        choices = {
            "order": ["C", "F", "X", None],
            "include": ["trainable", "all", "bogus"],
            "dtype": ["float16", "float32", "float64", "bfloat16", "int32", 5],
            "framework": ["numpy", "torch", "keras", "", None],
        }[kind]
        fields[kind] = data.draw(st.sampled_from(choices), label=kind)
    return Layout(tuple(entries), **fields)


@settings(max_examples=300)
@given(data=st.data())
def test_restore_with_a_mutated_layout_is_bit_exact_or_refused(data):
    model = numpy_model()
    vector, layout = helpers.flatten(model, include="all")
    names = layout.names
    try:
        bad_layout = mutated_layout(layout, data)
    except DOCUMENTED as error:
        event("refused when built")
        check_documented_error(error, names)
        return
    names = names + bad_layout.names
    resized = np.resize(vector, bad_layout.size)
    with np.errstate(over="ignore"):
        bad_vector = resized.astype(bad_layout.dtype)
    check_restore(model, bad_vector, bad_layout, digest_arrays, names)


@pytest.fixture(scope="module")
def torch_parts():
    torch = pytest.importorskip("torch")
    nn = torch.nn

    def make() -> nn.Module:
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Linear(3, 4),
            nn.BatchNorm1d(4),
            nn.Linear(4, 2).half(),
            nn.Linear(2, 2).to(torch.bfloat16),
        )
        model[1].num_batches_tracked.fill_(3)
        return model

    def digest(model: nn.Module) -> str:
        hasher = hashlib.sha256()
        for name, tensor in model.state_dict().items():
            raw = tensor.detach().contiguous().reshape(-1).view(torch.uint8)
            hasher.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            hasher.update(raw.numpy().tobytes())
        return hasher.hexdigest()

    return make, digest


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    order=st.sampled_from(["C", "F"]),
    dtype=st.sampled_from(["float32", "float64"]),
    reject_nonfinite=st.booleans(),
    data=st.data(),
)
def test_torch_restore_of_a_random_vector_is_bit_exact_or_refused(
    torch_parts, order, dtype, reject_nonfinite, data
):
    make, digest = torch_parts
    model = make()
    _, layout = helpers.flatten(model, include="all", order=order, dtype=dtype)
    vector = random_vector(layout, data)
    check_restore(model, vector, layout, digest, layout.names, reject_nonfinite=reject_nonfinite)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_torch_restore_with_a_mutated_layout_is_bit_exact_or_refused(torch_parts, data):
    make, digest = torch_parts
    model = make()
    vector, layout = helpers.flatten(model, include="all")
    names = layout.names
    try:
        bad_layout = mutated_layout(layout, data)
    except DOCUMENTED as error:
        event("refused when built")
        check_documented_error(error, names)
        return
    assume(bad_layout.size < 10_000)
    with np.errstate(over="ignore"):
        bad_vector = np.resize(vector, bad_layout.size).astype(bad_layout.dtype)
    check_restore(model, bad_vector, bad_layout, digest, names + bad_layout.names)
