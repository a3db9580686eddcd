"""The Keras 3 adapter: model.weights order, trainable vs all, exact round trips, safe errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
layers = keras.layers

import helpers  # noqa: E402
from helpers import LayoutError, PrecisionWarning  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Keras' own get_weights() goes through np.array(tf_tensor), which NumPy 2 flags; the
# adapter reads around it (see test_flatten_and_restore_raise_no_warnings).
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
RNG = np.random.default_rng(0)


# ---------------------------------------------------------------- models, built once


def sequential(input_shape: tuple[int, ...], *stack: keras.Layer, dtype: str = "float32"):
    return keras.Sequential([keras.Input(input_shape, dtype=dtype), *stack])


def _build_models() -> dict[str, tuple[keras.Model, np.ndarray]]:
    """One small model per layer kind, each with an input batch to predict on."""
    keras.utils.set_random_seed(0)
    image = RNG.normal(size=(2, 6, 6, 4)).astype("float32")
    sequence = RNG.normal(size=(2, 5, 3)).astype("float32")
    tokens = RNG.integers(0, 10, size=(2, 5)).astype("int32")
    frozen = sequential((4,), layers.Dense(3), layers.Dense(2))
    frozen.layers[0].trainable = False
    normalization = layers.Normalization()
    normalization.adapt(RNG.normal(size=(20, 4)).astype("float32"))
    normalization.count.assign(20)  # Keras 3's adapt() leaves this int64 counter at 0
    models = {
        "dense": (sequential((4,), layers.Dense(3), layers.Dense(2)), image[:, 0, 0]),
        "conv2d": (sequential((6, 6, 4), layers.Conv2D(3, 3), layers.Flatten()), image),
        "grouped_conv2d": (sequential((6, 6, 4), layers.Conv2D(6, (3, 2), groups=2)), image),
        "depthwise_conv2d": (
            sequential((6, 6, 4), layers.DepthwiseConv2D(3, depth_multiplier=2)),
            image,
        ),
        "batch_norm": (
            sequential((6, 6, 4), layers.Conv2D(3, 3), layers.BatchNormalization()),
            image,
        ),
        "lstm": (sequential((5, 3), layers.LSTM(4, return_sequences=True)), sequence),
        "gru_reset_after": (sequential((5, 3), layers.GRU(4, reset_after=True)), sequence),
        "gru_reset_before": (sequential((5, 3), layers.GRU(4, reset_after=False)), sequence),
        "embedding": (
            sequential((5,), layers.Embedding(10, 3), layers.LayerNormalization(), dtype="int32"),
            tokens,
        ),
        "frozen_layer": (frozen, image[:, 0, 0]),
        "normalization_int64_count": (
            sequential((4,), normalization, layers.Dense(2)),
            image[:, 0, 0],
        ),
    }
    # Give the batch-norm statistics values that are not the initial zeros and ones.
    batch_norm = models["batch_norm"][0].layers[-1]
    batch_norm.moving_mean.assign(RNG.normal(size=3).astype("float32"))
    batch_norm.moving_variance.assign(RNG.uniform(0.5, 2, size=3).astype("float32"))
    return models


MODELS = _build_models()
NAMES = sorted(MODELS)


def weights_digest(model: keras.Model) -> str:
    """A hash of every weight's path, shape, dtype and bytes, in get_weights order."""
    hasher = hashlib.sha256()
    for variable, array in zip(model.weights, model.get_weights(), strict=True):
        hasher.update(f"{variable.path}{array.shape}{array.dtype}".encode())
        hasher.update(np.ascontiguousarray(array).tobytes())
    return hasher.hexdigest()


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x, training=False))


def bitwise_equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        for x, y in zip(a, b, strict=True)
    )


def zero_covered(model: keras.Model, include: str) -> None:
    """Zero what a layout with this ``include`` covers, through set_weights."""
    model.set_weights(
        [
            np.zeros_like(array) if include == "all" or variable.trainable else array
            for variable, array in zip(model.weights, model.get_weights(), strict=True)
        ]
    )


# ---------------------------------------------------------------- order


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("order", ["C", "F"])
def test_all_is_get_weights_order(name: str, order: str) -> None:
    model, _ = MODELS[name]
    vector, layout = helpers.flatten(model, include="all", order=order)
    weights = model.get_weights()
    by_hand = np.concatenate([array.ravel(order=order) for array in weights])
    assert np.array_equal(vector, by_hand.astype(vector.dtype))
    assert layout.names == [variable.path for variable in model.weights]
    assert [entry.shape for entry in layout] == [array.shape for array in weights]
    assert [entry.dtype for entry in layout] == [str(array.dtype) for array in weights]
    assert layout.framework == "keras" and layout.order == order


@pytest.mark.parametrize("name", NAMES)
def test_trainable_keeps_relative_order(name: str) -> None:
    model, _ = MODELS[name]
    vector, layout = helpers.flatten(model, include="trainable")
    kept = [(v, a) for v, a in zip(model.weights, model.get_weights(), strict=True) if v.trainable]
    assert layout.names == [variable.path for variable, _ in kept]
    assert layout.names == [variable.path for variable in model.trainable_weights]
    assert all(entry.trainable for entry in layout)
    expected = [array.ravel() for _, array in kept] or [np.zeros(0, vector.dtype)]
    assert np.array_equal(vector, np.concatenate(expected))


def test_all_adds_batch_norm_statistics_after_gamma_and_beta() -> None:
    model, _ = MODELS["batch_norm"]
    _, trainable = helpers.flatten(model, include="trainable")
    _, everything = helpers.flatten(model, include="all")
    short = [name.rsplit("/", 1)[-1] for name in everything.names]
    assert short == ["kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance"]
    assert [e.trainable for e in everything] == [True] * 4 + [False] * 2
    assert trainable.names == everything.names[:4]
    assert everything.size == trainable.size + 2 * 3
    assert trainable.fingerprint != everything.fingerprint


def test_all_adds_a_frozen_layer() -> None:
    model, _ = MODELS["frozen_layer"]
    _, trainable = helpers.flatten(model, include="trainable")
    _, everything = helpers.flatten(model, include="all")
    assert len(trainable) == 2 and len(everything) == 4
    assert [e.trainable for e in everything] == [False, False, True, True]
    assert trainable.names == everything.names[2:]


def test_recurrent_and_conv_shapes() -> None:
    """The shapes the lesson on conv and recurrent layouts relies on."""

    def shapes(name: str) -> list[tuple[int, ...]]:
        return [entry.shape for entry in helpers.flatten(MODELS[name][0], include="all")[1]]

    assert shapes("conv2d")[:2] == [(3, 3, 4, 3), (3,)]  # (kh, kw, in, out)
    assert shapes("grouped_conv2d") == [(3, 2, 2, 6), (6,)]  # in / groups
    assert shapes("depthwise_conv2d") == [(3, 3, 4, 2), (8,)]  # (kh, kw, in, multiplier)
    assert shapes("lstm") == [(3, 16), (4, 16), (16,)]  # i, f, c, o blocks of 4
    assert shapes("gru_reset_after") == [(3, 12), (4, 12), (2, 12)]
    assert shapes("gru_reset_before") == [(3, 12), (4, 12), (12,)]


def test_repeated_variable_paths_get_distinct_names() -> None:
    class TwoDense(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.first = layers.Dense(3, name="same")
            self.second = layers.Dense(2, name="same")

        def call(self, x):
            return self.second(self.first(x))

    model = TwoDense()
    model(np.zeros((1, 4), "float32"))
    paths = [variable.path for variable in model.weights]
    assert len(set(paths)) == 2  # Keras itself repeats the paths
    vector, layout = helpers.flatten(model)
    assert layout.names == [paths[0], paths[1], paths[0] + "#2", paths[1] + "#2"]
    before = model.get_weights()
    model.set_weights([np.zeros_like(a) for a in before])
    helpers.restore(model, vector, layout)
    assert bitwise_equal(model.get_weights(), before)


@pytest.mark.parametrize("name", ["batch_norm", "lstm", "normalization_int64_count"])
def test_flatten_and_restore_raise_no_warnings(name: str) -> None:
    model, _ = MODELS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vector, layout = helpers.flatten(model, include="all")
        helpers.restore(model, vector, layout)


def test_shared_layer_appears_once() -> None:
    shared = layers.Dense(3)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, shared(shared(inputs)))
    _, layout = helpers.flatten(model)
    assert len(layout) == 2 and layout.size == 12


# ---------------------------------------------------------------- exact round trips


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("include", ["trainable", "all"])
def test_round_trip_is_bit_exact(name: str, order: str, include: str) -> None:
    model, x = MODELS[name]
    before, prediction = model.get_weights(), predict(model, x)
    vector, layout = helpers.flatten(model, include=include, order=order)
    zero_covered(model, include)
    assert not bitwise_equal(model.get_weights(), before)
    helpers.restore(model, vector, layout)
    assert bitwise_equal(model.get_weights(), before)
    assert np.array_equal(predict(model, x), prediction)
    again, _ = helpers.flatten(model, include=include, order=order)
    assert again.tobytes() == vector.tobytes()


@pytest.mark.parametrize("include", ["trainable", "all"])
def test_vector_restores_into_a_freshly_built_twin(include: str) -> None:
    """Keras names the twin's layers conv2d_7, batch_normalization_3...: names are labels."""

    def build():
        return sequential(
            (6, 6, 4),
            layers.Conv2D(3, 3),
            layers.BatchNormalization(),
            layers.Flatten(),
            layers.Dense(2),
        )

    model, twin = build(), build()
    model.layers[1].moving_mean.assign(np.arange(3, dtype="float32"))
    vector, layout = helpers.flatten(model, include=include)
    _, twin_layout = helpers.flatten(twin, include=include)
    assert twin_layout.names != layout.names and twin_layout.fingerprint == layout.fingerprint
    helpers.restore(twin, vector, layout)
    assert helpers.flatten(twin, include=include)[0].tobytes() == vector.tobytes()
    x = RNG.normal(size=(2, 6, 6, 4)).astype("float32")
    assert np.array_equal(predict(twin, x), predict(model, x)) == (include == "all")


@pytest.mark.parametrize("name", ["dense", "batch_norm", "lstm", "gru_reset_after"])
def test_restore_writes_exactly_the_vector(name: str) -> None:
    """A random vector goes in; unflatten of it is what the model then holds."""
    model, _ = MODELS[name]
    original, layout = helpers.flatten(model, include="all", order="F")
    vector = RNG.normal(size=layout.size).astype(layout.dtype)
    try:
        helpers.restore(model, vector, layout)
        expected = helpers.unflatten(vector, layout)
        assert bitwise_equal(model.get_weights(), list(expected.values()))
    finally:
        helpers.restore(model, original, layout)


@st.composite
def dense_stacks(draw):
    inputs = draw(st.integers(1, 5))
    widths = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
    biases = draw(st.lists(st.booleans(), min_size=len(widths), max_size=len(widths)))
    dtype = draw(st.sampled_from(["float32", "float64", "float16"]))
    return inputs, widths, biases, dtype


@settings(max_examples=12, deadline=None)
@given(spec=dense_stacks(), order=st.sampled_from(["C", "F"]), seed=st.integers(0, 2**16))
def test_random_dense_stacks_round_trip(spec, order: str, seed: int) -> None:
    inputs, widths, biases, dtype = spec
    stack = [layers.Dense(w, use_bias=b, dtype=dtype) for w, b in zip(widths, biases, strict=True)]
    model = sequential((inputs,), *stack)
    expected_size = sum(
        fan_in * w + (w if b else 0)
        for fan_in, w, b in zip([inputs, *widths[:-1]], widths, biases, strict=True)
    )
    vector, layout = helpers.flatten(model, order=order)
    assert vector.size == layout.size == expected_size == model.count_params()
    assert vector.dtype == np.dtype(dtype)
    by_hand = np.concatenate([a.ravel(order=order) for a in model.get_weights()])
    assert vector.tobytes() == by_hand.tobytes()
    fresh = np.random.default_rng(seed).normal(size=layout.size).astype(layout.dtype)
    helpers.restore(model, fresh, layout)
    assert helpers.flatten(model, order=order)[0].tobytes() == fresh.tobytes()
    helpers.restore(model, vector, layout)
    assert helpers.flatten(model, order=order)[0].tobytes() == vector.tobytes()


# ---------------------------------------------------------------- errors leave the model alone


@pytest.fixture
def mixed():
    model, _ = MODELS["batch_norm"]
    vector, layout = helpers.flatten(model, include="all")
    return model, vector, layout, weights_digest(model)


def test_wrong_length_is_refused(mixed) -> None:
    model, vector, layout, digest = mixed
    for bad in (vector[:-1], np.concatenate([vector, vector[:1]]), vector.reshape(1, -1)):
        with pytest.raises(LayoutError, match="vector: expected"):
            helpers.restore(model, np.zeros_like(bad), layout)
    assert weights_digest(model) == digest


def test_wrong_dtype_is_refused(mixed) -> None:
    model, vector, layout, digest = mixed
    with pytest.raises(LayoutError, match="expected dtype float32, got float64"):
        helpers.restore(model, np.zeros(vector.size), layout)
    assert weights_digest(model) == digest


def test_layout_of_another_architecture_is_refused(mixed) -> None:
    model, vector, _, digest = mixed
    for other in ("conv2d", "lstm", "depthwise_conv2d"):
        other_vector, other_layout = helpers.flatten(MODELS[other][0], include="all")
        with pytest.raises(LayoutError, match="does not fit this model"):
            helpers.restore(model, np.zeros_like(other_vector), other_layout)
    wider = sequential((6, 6, 4), layers.Conv2D(4, 3), layers.BatchNormalization())
    wider_vector, wider_layout = helpers.flatten(wider, include="all")
    with pytest.raises(LayoutError, match=r"tensor #0 .*expected shape \(3, 3, 4, 3\)"):
        helpers.restore(model, wider_vector, wider_layout)
    assert weights_digest(model) == digest


def test_nonfinite_is_refused_when_asked(mixed) -> None:
    model, vector, layout, digest = mixed
    for bad_value in (np.nan, np.inf):
        poisoned = vector.copy()
        poisoned[-1] = bad_value
        with pytest.raises(LayoutError, match="expected finite values, got 1 NaN/inf"):
            helpers.restore(model, poisoned, layout, reject_nonfinite=True)
    assert weights_digest(model) == digest


def test_failure_part_way_through_writing_rolls_back(mixed) -> None:
    from helpers.adapters import keras_adapter

    model, vector, layout, digest = mixed
    calls = {"n": 0}

    def flaky(real):  # Keras's assign, or the TensorFlow op it ends in (called directly)
        def write(*args):
            calls["n"] += 1
            if calls["n"] == 4:
                raise RuntimeError("device lost")
            return real(*args)

        return write

    variable_class = type(model.weights[0])
    with (
        mock.patch.object(variable_class, "assign", flaky(variable_class.assign)),
        mock.patch.object(keras_adapter, "_assign_directly", flaky(keras_adapter._assign_directly)),
        pytest.raises(RuntimeError, match="device lost"),
    ):
        helpers.restore(model, np.zeros_like(vector), layout)
    assert calls["n"] > 4  # three writes, the failure, then the three put back
    assert weights_digest(model) == digest


def test_integer_variable_travels_as_a_float_and_checks_on_the_way_back() -> None:
    model, _ = MODELS["normalization_int64_count"]
    digest = weights_digest(model)
    vector, layout = helpers.flatten(model, include="all")
    count = layout[next(n for n in layout.names if n.endswith("count"))]
    assert count.dtype == "int64" and count.shape == () and not count.trainable
    assert vector.dtype == np.float32 and vector[count.offset] == 20
    for bad in (20.5, -(2.0**70), np.nan):
        poisoned = vector.copy()
        poisoned[count.offset] = bad
        with pytest.raises(LayoutError, match="expected whole numbers"):
            helpers.restore(model, poisoned, layout)
    assert weights_digest(model) == digest
    changed = vector.copy()
    changed[count.offset] = 7
    helpers.restore(model, changed, layout)
    assert int(model.layers[0].count.numpy()) == 7
    helpers.restore(model, vector, layout)
    assert weights_digest(model) == digest


def test_unbuilt_models_give_a_clear_error() -> None:
    unbuilt = keras.Sequential([layers.Dense(3)])
    with pytest.raises(LayoutError, match="not built, so it has no weights yet: build it"):
        helpers.flatten(unbuilt)

    class Subclassed(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(LayoutError, match="not built"):
        helpers.flatten(Subclassed())
    with pytest.raises(LayoutError, match="not built"):
        _, layout = helpers.flatten(MODELS["dense"][0])
        helpers.restore(unbuilt, np.zeros(layout.size, "float32"), layout)
    with pytest.raises(LayoutError, match="built but has no weights"):
        helpers.flatten(sequential((3, 4), layers.Flatten()))


# ---------------------------------------------------------------- dtypes


def test_mixed_precision_policy_keeps_float32_variables() -> None:
    model = sequential((4,), layers.Dense(3, dtype="mixed_float16"), layers.Dense(2))
    assert model.layers[0].compute_dtype == "float16"
    assert [v.dtype for v in model.weights] == ["float32"] * 4
    vector, layout = helpers.flatten(model)
    assert vector.dtype == np.float32
    before = model.get_weights()
    zero_covered(model, "all")
    helpers.restore(model, vector, layout)
    assert bitwise_equal(model.get_weights(), before)


@pytest.mark.parametrize(
    ("dtypes", "vector_dtype"),
    [
        (["float16", "float16"], "float16"),
        (["float16", "float32"], "float32"),
        (["mixed_float16", "float16"], "float32"),
        (["float16", "float64"], "float64"),
        (["bfloat16", "float16"], "float32"),  # NumPy has no bfloat16: it travels as float32
    ],
)
def test_vector_dtype_is_the_widest_float(dtypes: list[str], vector_dtype: str) -> None:
    model = sequential((4,), *[layers.Dense(3, dtype=d) for d in dtypes])
    x = RNG.normal(size=(2, 4)).astype("float32")
    vector, layout = helpers.flatten(model)
    assert str(vector.dtype) == layout.dtype == vector_dtype
    variable_dtypes = [str(v.dtype) for v in model.weights]
    assert [entry.dtype for entry in layout] == variable_dtypes
    before, prediction = model.get_weights(), predict(model, x)
    zero_covered(model, "all")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # values that came from the model cast back exactly
        helpers.restore(model, vector, layout)
    assert bitwise_equal(model.get_weights(), before)
    assert np.array_equal(predict(model, x), prediction)


def test_narrowing_to_float16_warns_but_writes() -> None:
    model = sequential((2,), layers.Dense(1, dtype="float16"), layers.Dense(1))
    vector, layout = helpers.flatten(model)
    nudged = vector.copy()
    nudged[0] += np.float32(1e-6)  # below float16's resolution near these values
    with pytest.warns(PrecisionWarning, match="rounded when cast from float32 to float16"):
        helpers.restore(model, nudged, layout)
    helpers.restore(model, vector, layout)
    assert helpers.flatten(model)[0].tobytes() == vector.tobytes()


def test_reject_nonfinite_refuses_a_value_that_overflows_a_bfloat16_variable() -> None:
    model = sequential((2,), layers.Dense(1, dtype="bfloat16"), layers.Dense(1))
    vector, layout = helpers.flatten(model)
    before = model.get_weights()
    overflowing = vector.copy()
    overflowing[0] = 3.4e38  # a finite float32 that rounds to inf in bfloat16
    with pytest.raises(LayoutError, match=r"expected finite values, got 1 NaN/inf \(1 finite"):
        helpers.restore(model, overflowing, layout, reject_nonfinite=True)
    assert bitwise_equal(model.get_weights(), before)


def test_bfloat16_rounding_predicted_by_restore_is_what_the_variable_holds() -> None:
    model = sequential((2,), layers.Dense(3, dtype="bfloat16"))
    vector, layout = helpers.flatten(model)
    nudged = (vector + RNG.normal(size=vector.size) * 1e-2).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionWarning)
        expected = helpers.unflatten(nudged, layout)  # float32 holding bfloat16 values
        helpers.restore(model, nudged, layout)
    held = helpers.unflatten(helpers.flatten(model)[0], layout)
    for name in layout.names:
        np.testing.assert_array_equal(held[name], expected[name])


class ComplexPhase(layers.Layer):
    """A layer holding a complex weight, which no real-valued vector can carry."""

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.phase = self.add_weight(shape=(2,), dtype="complex64", initializer="zeros")

    def call(self, inputs):
        return inputs


def test_a_complex_variable_is_refused_by_name() -> None:
    model = sequential((2,), ComplexPhase(name="rotate"), layers.Dense(1))
    with pytest.raises(TypeError, match=r"rotate/variable': dtype complex64 cannot travel"):
        helpers.flatten(model)


# ---------------------------------------------------------------- the torch backend

TORCH_BACKEND_SCRIPT = textwrap.dedent(
    """
    import warnings
    import numpy as np
    import keras
    import helpers

    assert keras.backend.backend() == "torch"
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((8, 8, 2)),
        keras.layers.Conv2D(4, 3, groups=2),
        keras.layers.BatchNormalization(),
        keras.layers.Reshape((6, 24)),
        keras.layers.LSTM(3),
        keras.layers.Dense(2, dtype="float16"),
    ])
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 2)).astype("float32")
    model(x, training=True)  # moves the batch-norm statistics off zeros and ones
    before, prediction = model.get_weights(), keras.ops.convert_to_numpy(model(x))
    for include in ("trainable", "all"):
        for order in ("C", "F"):
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # helpers must not warn (NumPy 2 __array__)
                vector, layout = helpers.flatten(model, include=include, order=order)
            by_hand = np.concatenate([
                a.ravel(order=order) for v, a in zip(model.weights, before)
                if include == "all" or v.trainable
            ])
            assert vector.tobytes() == by_hand.astype(vector.dtype).tobytes()
            model.set_weights([np.zeros_like(a) for a in before])
            if include == "trainable":
                model.set_weights([
                    np.zeros_like(a) if v.trainable else a for v, a in zip(model.weights, before)
                ])
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                helpers.restore(model, vector, layout)
            after = model.get_weights()
            assert all(a.dtype == b.dtype and a.tobytes() == b.tobytes()
                       for a, b in zip(before, after))
            assert np.array_equal(keras.ops.convert_to_numpy(model(x)), prediction)
    # helpers.functional on this backend: stateless_call with a population's values.
    weights, trainable = helpers.flatten(model)
    population = np.stack([weights, weights * 0.5])  # halving is exact in float16 too
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outputs = helpers.functional(model, trainable)(population, x)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(before, model.get_weights()))
    for member, row in zip(population, outputs):
        helpers.restore(model, member, trainable)
        assert np.array_equal(row, keras.ops.convert_to_numpy(model(x))), "functional"
    helpers.restore(model, weights, trainable)
    print("functional OK", outputs.shape)
    print("torch backend round trip OK", layout.size, layout.dtype)
    """
)


def test_round_trip_on_the_torch_backend() -> None:
    pytest.importorskip("torch")
    env = dict(os.environ, KERAS_BACKEND="torch", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", TORCH_BACKEND_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30 * 60,  # a hang guard only: starting Keras takes minutes on a busy machine
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Conv 3·3·1·4 + 4, BN 4·4, LSTM 4·3·(24 + 3) + 12, Dense 3·2 + 2: vector is float32.
    assert done.stdout.strip().endswith(f"OK {36 + 4 + 16 + 4 * 3 * 27 + 12 + 8} float32")
    assert "functional OK (2, 2, 2)" in done.stdout  # helpers.functional, population of 2
