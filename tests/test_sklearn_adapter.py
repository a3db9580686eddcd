"""The scikit-learn adapter: MLPClassifier / MLPRegressor weights as one vector, and back."""

from __future__ import annotations

import copy
import hashlib
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.neural_network import BernoulliRBM, MLPClassifier, MLPRegressor  # noqa: E402

import helpers  # noqa: E402
from helpers import LayoutError  # noqa: E402


def digest(model) -> str:
    """A hash of every weight array's shape, dtype and bytes."""
    hasher = hashlib.sha256()
    for array in [*model.coefs_, *model.intercepts_]:
        hasher.update(f"{array.shape}{array.dtype}".encode())
        hasher.update(np.ascontiguousarray(array).tobytes())
    return hasher.hexdigest()


def fit_quietly(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few iterations on purpose
        return model.fit(X, y)


@pytest.fixture(scope="module")
def digits():
    """600 shuffled real MNIST digits, pixels scaled to [0, 1], split 500 / 100."""
    (X_train, y_train), _ = helpers.data.load_mnist()
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(X_train))[:600]
    X = X_train[pick].reshape(len(pick), -1).astype(np.float64) / 255.0
    y = y_train[pick]
    return X[:500], y[:500], X[500:], y[500:]


@pytest.fixture(scope="module")
def classifier(digits):
    X_train, y_train, _, _ = digits
    model = MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=15, random_state=0)
    return fit_quietly(model, X_train, y_train)


@pytest.fixture(scope="module")
def regressor():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 5))
    y = np.column_stack([np.sin(X[:, 0]) + X[:, 1] ** 2, X[:, 2] * X[:, 3]])
    model = MLPRegressor(hidden_layer_sizes=(12,), max_iter=50, random_state=0)
    return fit_quietly(model, X, y), X


def test_classifier_vector_order_is_kernel_then_bias_per_layer(classifier):
    vector, layout = helpers.flatten(classifier)
    assert layout.framework == "sklearn"
    assert layout.names == [
        "coefs_[0]",
        "intercepts_[0]",
        "coefs_[1]",
        "intercepts_[1]",
        "coefs_[2]",
        "intercepts_[2]",
    ]
    assert [e.shape for e in layout] == [(784, 16), (16,), (16, 8), (8,), (8, 10), (10,)]
    pieces = [classifier.coefs_[0], classifier.intercepts_[0], classifier.coefs_[1]]
    pieces += [classifier.intercepts_[1], classifier.coefs_[2], classifier.intercepts_[2]]
    np.testing.assert_array_equal(vector, np.concatenate([a.ravel() for a in pieces]))
    assert vector.size == 784 * 16 + 16 + 16 * 8 + 8 + 8 * 10 + 10
    assert vector.dtype == np.float64
    f_vector, _ = helpers.flatten(classifier, order="F")
    np.testing.assert_array_equal(f_vector[:784], classifier.coefs_[0][:, 0])


@pytest.mark.parametrize("order", ["C", "F"])
def test_classifier_round_trip_is_bit_exact_and_predicts_the_same(classifier, digits, order):
    _, _, X_test, _ = digits
    vector, layout = helpers.flatten(classifier, order=order)
    twin = copy.deepcopy(classifier)
    arrays = [*twin.coefs_, *twin.intercepts_]
    for array in arrays:
        array[...] = 0.0
    assert not np.array_equal(twin.predict_proba(X_test), classifier.predict_proba(X_test))
    helpers.restore(twin, vector, layout)
    assert digest(twin) == digest(classifier)
    assert all(a is b for a, b in zip(arrays, [*twin.coefs_, *twin.intercepts_], strict=True))
    np.testing.assert_array_equal(twin.predict_proba(X_test), classifier.predict_proba(X_test))
    np.testing.assert_array_equal(twin.predict(X_test), classifier.predict(X_test))


def test_a_perturbed_model_is_put_back_exactly(classifier, digits):
    _, _, X_test, y_test = digits
    model = copy.deepcopy(classifier)
    vector, layout = helpers.flatten(model)
    accuracy = model.score(X_test, y_test)
    rng = np.random.default_rng(2)
    helpers.restore(model, vector + rng.normal(scale=0.5, size=vector.size), layout)
    assert model.score(X_test, y_test) != accuracy
    helpers.restore(model, vector, layout)
    assert model.score(X_test, y_test) == accuracy
    assert digest(model) == digest(classifier)


def test_include_makes_no_difference_for_an_mlp(classifier):
    trainable, trainable_layout = helpers.flatten(classifier, include="trainable")
    everything, all_layout = helpers.flatten(classifier, include="all")
    np.testing.assert_array_equal(trainable, everything)
    assert trainable_layout.fingerprint == all_layout.fingerprint


@pytest.mark.parametrize("order", ["C", "F"])
def test_regressor_round_trip(regressor, order):
    model, X = regressor
    vector, layout = helpers.flatten(model, order=order)
    assert layout.names == ["coefs_[0]", "intercepts_[0]", "coefs_[1]", "intercepts_[1]"]
    assert vector.size == 5 * 12 + 12 + 12 * 2 + 2
    twin = copy.deepcopy(model)
    helpers.restore(twin, np.zeros_like(vector), layout)
    assert np.all(twin.predict(X) == 0.0)
    helpers.restore(twin, vector, layout)
    assert digest(twin) == digest(model)
    np.testing.assert_array_equal(twin.predict(X), model.predict(X))


def test_float32_fit_gives_a_float32_vector():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    model = fit_quietly(
        MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0), X, X[:, 0]
    )
    vector, layout = helpers.flatten(model)
    assert vector.dtype == np.float32 and {e.dtype for e in layout} == {"float32"}
    helpers.restore(model, vector * 2, layout)
    np.testing.assert_array_equal(helpers.flatten(model)[0], vector * 2)


def test_unfitted_and_foreign_models_are_refused():
    with pytest.raises(LayoutError, match="MLPClassifier has no weights yet: call fit"):
        helpers.flatten(MLPClassifier())
    with pytest.raises(TypeError, match="BernoulliRBM: expected an MLPClassifier or MLPRegressor"):
        helpers.flatten(BernoulliRBM())


def _wrong_length(model, other):
    vector, layout = helpers.flatten(model)
    return np.append(vector, 0.0), layout, {}


def _wrong_dtype(model, other):
    vector, layout = helpers.flatten(model)
    return vector.astype(np.float32), layout, {}


def _other_architecture(model, other):
    vector, layout = helpers.flatten(other)
    return vector, layout, {}


def _regressor_layout(model, other):
    vector, layout = helpers.flatten(model)
    twin = helpers.Layout(layout.entries[:-2], framework="sklearn", dtype=layout.dtype)
    return vector[: twin.size], twin, {}


def _infinite(model, other):
    vector, layout = helpers.flatten(model)
    vector[-1] = np.inf
    return vector, layout, {"reject_nonfinite": True}


@pytest.mark.parametrize(
    ("make_bad_input", "message"),
    [
        (_wrong_length, "expected 12,786 values for this layout, got 12,787"),
        (_wrong_dtype, "expected dtype float64, got float32"),
        (
            _other_architecture,
            r"tensor #0 'coefs_\[0\]': expected shape \(784, 16\), got \(784, 8\)",
        ),
        (_regressor_layout, "expected 6 tensors"),
        (_infinite, r"'intercepts_\[2\]': expected finite values, got 1 NaN/inf"),
    ],
)
def test_mismatches_raise_and_leave_the_model_unchanged(
    classifier, digits, make_bad_input, message
):
    X_train, y_train, X_test, _ = digits
    model = copy.deepcopy(classifier)
    other = fit_quietly(
        MLPClassifier(hidden_layer_sizes=(8, 8), max_iter=2, random_state=0), X_train, y_train
    )
    vector, layout, options = make_bad_input(model, other)
    before, predictions = digest(model), model.predict_proba(X_test)
    with pytest.raises(LayoutError, match=message):
        helpers.restore(model, vector, layout, **options)
    assert digest(model) == before
    np.testing.assert_array_equal(model.predict_proba(X_test), predictions)
