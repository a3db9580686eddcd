"""helpers.nnet on its own: wiring, gradient, validation and R's printed formats.

Agreement with R itself is checked in test_nnet_vs_r.py.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from helpers import nnet as nnet_module
from helpers.nnet import NNet, class_ind, nnet

SETTINGS = {
    "least_squares": {},
    "entropy": {"entropy": True},
    "softmax": {"softmax": True},
    "decay": {"decay": 0.1},
    "skip": {"skip": True},
    "linout": {"linout": True},
    "softmax_skip_decay": {"softmax": True, "skip": True, "decay": 0.01},
}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(30, 2))
    y = class_ind((x.sum(axis=1) > 1).astype(int))
    return x, y


def unfitted(x: np.ndarray, y: np.ndarray, size: int = 5, **settings: object) -> NNet:
    return nnet(x, y, size=size, maxit=0, trace=False, seed=0, **settings)


def logistic(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


# --- class_ind ---------------------------------------------------------------


def test_class_ind_has_one_column_per_level_in_sorted_order() -> None:
    np.testing.assert_array_equal(
        class_ind(["b", "a", "c", "a"]),
        [[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0]],
    )


def test_class_ind_sorts_numbers_numerically() -> None:
    np.testing.assert_array_equal(class_ind([10, 2, 2]), [[0, 1], [1, 0], [1, 0]])


def test_class_ind_rejects_a_matrix() -> None:
    with pytest.raises(ValueError, match="1-D"):
        class_ind(np.zeros((2, 2)))


# --- wiring: weight count, order and names -----------------------------------


@pytest.mark.parametrize(
    ("size", "skip", "expected"), [(5, False, 27), (5, True, 31), (0, True, 6)]
)
def test_weight_count(
    data: tuple[np.ndarray, np.ndarray], size: int, skip: bool, expected: int
) -> None:
    x, y = data
    fit = unfitted(x, y, size=size, skip=skip)
    assert fit.wts.shape == (expected,)
    assert len(fit.weight_names()) == expected
    assert fit.n == (2, size, 2)


def test_weight_names_follow_r_order(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    names = unfitted(x, y, size=2, skip=True).weight_names()
    assert names == [
        "b->h1", "i1->h1", "i2->h1",
        "b->h2", "i1->h2", "i2->h2",
        "b->o1", "h1->o1", "h2->o1", "i1->o1", "i2->o1",
        "b->o2", "h1->o2", "h2->o2", "i1->o2", "i2->o2",
    ]  # fmt: skip


def test_a_single_output_is_called_o(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    names = unfitted(x, y[:, 1], size=1).weight_names()
    assert names == ["b->h1", "i1->h1", "i2->h1", "b->o", "h1->o"]


def test_predict_reads_weights_in_r_order(data: tuple[np.ndarray, np.ndarray]) -> None:
    """Each unit's bias, then its sources; hidden units, then outputs (skip inputs last)."""
    x, y = data
    wts = np.random.default_rng(3).normal(size=31)
    fit = nnet(x, y, size=5, Wts=wts, skip=True, linout=True, maxit=0, trace=False)
    hidden_w = wts[:15].reshape(5, 3)
    output_w = wts[15:].reshape(2, 8)
    hidden = logistic(hidden_w[:, 0] + x @ hidden_w[:, 1:].T)
    expected = output_w[:, 0] + hidden @ output_w[:, 1:6].T + x @ output_w[:, 6:].T
    np.testing.assert_allclose(fit.predict(x), expected, rtol=0, atol=1e-12)


def test_softmax_predictions_are_probabilities(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    fit = unfitted(x, y, softmax=True)
    linear = nnet(x, y, size=5, Wts=fit.wts, linout=True, maxit=0, trace=False).predict(x)
    expected = np.exp(linear) / np.exp(linear).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(fit.predict(x), expected, rtol=0, atol=1e-12)


# --- criterion and gradient ----------------------------------------------------


def loss_for(x: np.ndarray, y: np.ndarray, **settings: object) -> nnet_module._Loss:
    fit = unfitted(x, y, **settings)
    return nnet_module._Loss(
        nnet_module._Wiring(*fit.n, skip=fit.skip),
        x,
        y,
        logistic_out=not fit.linout,
        entropy=fit.entropy,
        softmax=fit.softmax,
        decay=fit.decay,
    )


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
def test_gradient_matches_finite_differences(
    data: tuple[np.ndarray, np.ndarray], settings: dict
) -> None:
    x, y = data
    loss = loss_for(x, y, **settings)
    wts = np.random.default_rng(5).uniform(-1, 1, loss.wiring.n_weights)
    step = 1e-6
    numeric = np.array(
        [
            (loss.value(wts + step * e) - loss.value(wts - step * e)) / (2 * step)
            for e in np.eye(wts.size)
        ]
    )
    np.testing.assert_allclose(loss.gradient(wts), numeric, rtol=1e-6, atol=1e-6)


def test_value_includes_decay_on_every_weight(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    wts = np.random.default_rng(6).uniform(-1, 1, 27)
    plain = nnet(x, y, size=5, Wts=wts, maxit=0, trace=False).value
    decayed = nnet(x, y, size=5, Wts=wts, decay=0.1, maxit=0, trace=False).value
    assert decayed - plain == pytest.approx(0.1 * np.sum(wts**2), rel=1e-12)


def test_entropy_survives_outputs_of_exactly_0_and_1(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    wts = np.random.default_rng(7).uniform(-40, 40, 27)
    fit = nnet(x, y, size=5, Wts=wts, entropy=True, maxit=0, trace=False)
    assert np.isin(fit.fitted_values, [0.0, 1.0]).any()
    assert np.isfinite(fit.value)


def test_fitting_lowers_the_criterion(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    start = unfitted(x, y, entropy=True)
    fit = nnet(x, y, size=5, Wts=start.wts, entropy=True, maxit=30, trace=False)
    assert fit.value < start.value
    np.testing.assert_allclose(fit.residuals, y - fit.fitted_values)


# --- results --------------------------------------------------------------------


def test_predict_shapes(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    fit = unfitted(x, y)
    assert fit.predict(x[:4]).shape == (4, 2)
    assert fit.predict(x[0]).shape == (1, 2)
    assert fit.fitted_values.shape == y.shape
    with pytest.raises(ValueError, match="2 columns"):
        fit.predict(np.zeros((3, 3)))


def test_seed_makes_starting_weights_reproducible(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    first, again = unfitted(x, y), unfitted(x, y)
    np.testing.assert_array_equal(first.wts, again.wts)
    assert np.all(np.abs(first.wts) <= 0.7)
    zeros = nnet(x, y, size=5, rang=0, maxit=0, trace=False)
    np.testing.assert_array_equal(zeros.wts, np.zeros(27))


def test_convergence_code(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    assert nnet(x, y, size=2, maxit=3, trace=False, seed=0).convergence == 1
    assert nnet(x, y, size=2, maxit=0, trace=False, seed=0).convergence == 0
    assert nnet(x, y, size=2, maxit=1000, trace=False, seed=0).convergence == 0


def test_softmax_switches_entropy_off_and_linear_outputs_on(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = data
    fit = unfitted(x, y, softmax=True, entropy=True)
    assert (fit.softmax, fit.linout, fit.entropy) == (True, True, False)


# --- exp and log from the C library -------------------------------------------------


class WithoutNumpyTranscendentals:
    """Stands in for numpy inside helpers.nnet; fails on any exp/log-like function."""

    BLOCKED = {"exp", "exp2", "expm1", "log", "log1p", "log2", "log10", "logaddexp", "power"}

    def __getattr__(self, name: str) -> object:
        if name in self.BLOCKED:
            raise AssertionError(f"helpers.nnet called np.{name}, not the C library's")
        return getattr(np, name)


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
def test_exp_and_log_come_from_the_c_library_not_numpy(
    data: tuple[np.ndarray, np.ndarray], settings: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nnet.c calls C's exp() and log(); NumPy's AVX-512 versions differ in the last bit
    (measured: 4.7% of exp, 0.35% of log results on a Xeon), which a badly conditioned fit
    grows to 3e-5 and more in 100 iterations. The port must not use them."""
    x, y = data
    monkeypatch.setattr(nnet_module, "np", WithoutNumpyTranscendentals())
    fit = nnet(x, y, size=3, maxit=5, trace=False, seed=0, **settings)
    assert math.isfinite(fit.value)


def test_c_library_exp_and_log_match_math_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    exponents = rng.uniform(-745, 709, 2000)
    positives = np.exp2(rng.uniform(-1074, 1023, 2000))
    assert nnet_module._c_exp(exponents).tolist() == [math.exp(v) for v in exponents]
    assert nnet_module._c_log(positives).tolist() == [math.log(v) for v in positives]


def test_c_library_exp_and_log_give_c_results_at_the_edges() -> None:
    exp_of = nnet_module._c_exp(np.array([-np.inf, np.inf, 710.0, -800.0, np.nan]))
    np.testing.assert_array_equal(exp_of, [0.0, np.inf, np.inf, 0.0, np.nan])
    log_of = nnet_module._c_log(np.array([0.0, -0.0, -1.0, np.inf, np.nan, 5e-324]))
    np.testing.assert_array_equal(
        log_of, [-np.inf, -np.inf, np.nan, np.inf, np.nan, -744.4400719213812]
    )
    assert nnet_module._c_exp(np.zeros((2, 3))).shape == (2, 3)


# --- argument checks: a clear error naming the argument, expected vs got -------------


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"linout": True, "entropy": True}, ValueError, "'linout' and 'entropy' are both True"),
        ({"Wts": np.zeros(26)}, ValueError, "'Wts' .*incorrect length: expected 27, got 26"),
        ({"size": 0}, ValueError, "no weights to fit: 'size' is 0 and 'skip' is False"),
        ({"size": -1}, ValueError, "'size' must be at least 0, got -1"),
        ({"size": 2.5}, ValueError, "'size' must be a whole number, got 2.5"),
        ({"size": 400}, ValueError, r"too many \(2002\) weights: 'size' = 400 .*'MaxNWts' = 1000"),
        ({"size": "3"}, TypeError, "'size' must be a whole number, got '3' \\(str\\)"),
        ({"size": float("inf")}, ValueError, "'size' must be a whole number, got inf"),
        ({"entropy": "no"}, TypeError, "'entropy' must be True or False, got 'no' \\(str\\)"),
        ({"skip": 1}, TypeError, "'skip' must be True or False, got 1 \\(int\\)"),
        ({"trace": None}, TypeError, "'trace' must be True or False, got None"),
        ({"maxit": 2.5}, ValueError, "'maxit' must be a whole number, got 2.5"),
        ({"maxit": float("nan")}, ValueError, "'maxit' must be a number, got nan"),
        ({"maxit": -1}, ValueError, "'maxit' must be at least 0, got -1"),
        ({"decay": [0.1, 0.2]}, TypeError, "'decay' must be a real number, got \\[0.1, 0.2\\]"),
        ({"decay": -0.1}, ValueError, "'decay' must be at least 0, got -0.1"),
        ({"decay": float("inf")}, ValueError, "'decay' must be finite and below 8e307, got inf"),
        ({"rang": float("nan"), "Wts": None}, ValueError, "'rang' must be a number, got nan"),
        ({"rang": 1e308, "Wts": None}, ValueError, "'rang' must be finite and below 8e307"),
        ({"abstol": float("nan")}, ValueError, "'abstol' must be a number, got nan"),
        ({"reltol": "small"}, TypeError, "'reltol' must be a real number, got 'small'"),
        ({"seed": -1, "Wts": None}, ValueError, "'seed' must be at least 0, got -1"),
        ({"seed": "a", "Wts": None}, TypeError, "'seed' must be a whole number, got 'a'"),
        ({"MaxNWts": None}, TypeError, "'MaxNWts' must be a whole number, got None"),
        (
            {"Wts": np.ones((1, 27))},
            ValueError,
            "'Wts' must be a flat \\(1-D\\) weight vector, got shape \\(1, 27\\)",
        ),
        ({"Wts": [np.inf] * 27}, ValueError, "'Wts' must be finite, got inf at index 0"),
        (
            {"Wts": [1e200] * 27, "decay": 0.1},  # 0.1 * 1e200**2 overflows
            ValueError,
            "criterion at the starting weights is inf: .*'Wts' or 'rang'\\) or 'decay'",
        ),
    ],
)
def test_bad_arguments(
    data: tuple[np.ndarray, np.ndarray], settings: dict, error: type, message: str
) -> None:
    x, y = data
    arguments = {"size": 5, "Wts": np.zeros(27), "maxit": 0, "trace": False, **settings}
    with pytest.raises(error, match=message):
        nnet(x, y, **arguments)


@pytest.mark.parametrize("size", [None, float("nan")])
def test_size_none_or_nan_is_refused_naming_size(
    data: tuple[np.ndarray, np.ndarray], size: object
) -> None:
    x, y = data
    with pytest.raises((TypeError, ValueError), match=f"'size' must be a .*got {size}"):
        nnet(x, y, size=size, trace=False)


def test_zero_rows_are_refused_naming_x(data: tuple[np.ndarray, np.ndarray]) -> None:
    """R "fits" zero rows (criterion 0, weights untouched); that is no fit at all."""
    _, y = data
    with pytest.raises(ValueError, match=r"'x' must have at least one row .*got shape \(0, 2\)"):
        nnet(np.zeros((0, 2)), y[:0], size=2, trace=False)
    with pytest.raises(ValueError, match=r"'y' must have at least one row .*got shape \(30, 0\)"):
        nnet(data[0], np.zeros((30, 0)), size=2, trace=False)


def test_wts_as_a_list_fits_exactly_as_the_array(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    wts = np.random.default_rng(4).uniform(-1, 1, 27)
    from_list = nnet(x, y, size=5, Wts=wts.tolist(), maxit=5, trace=False)
    from_array = nnet(x, y, size=5, Wts=wts, maxit=5, trace=False)
    np.testing.assert_array_equal(from_list.wts, from_array.wts)


@pytest.mark.parametrize(
    ("wts", "error", "message"),
    [
        ([[0.1] * 3, [0.1] * 24], ValueError, "'Wts' must be a rectangular array of numbers"),
        (["0.1"] * 27, TypeError, "'Wts' must hold real numbers, got dtype <U3"),
        ([None] * 27, TypeError, "'Wts' must hold real numbers, got dtype object"),
        ([0.1 + 1j] * 27, TypeError, "'Wts' must hold real numbers, got dtype complex128"),
        ([[0.1] * 27], ValueError, "'Wts' must be a flat \\(1-D\\) weight vector"),
        ([0.1] * 26, ValueError, "'Wts' .*incorrect length: expected 27, got 26"),
    ],
)
def test_wts_as_a_bad_list_is_refused_naming_wts(
    data: tuple[np.ndarray, np.ndarray], wts: list, error: type, message: str
) -> None:
    x, y = data
    with pytest.raises(error, match=message):
        nnet(x, y, size=5, Wts=wts, trace=False)


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ([["a", "b"]] * 30, TypeError, "'x' must hold real numbers, got dtype <U1"),
        ("x" * 30, TypeError, "'x' must hold real numbers"),
        ({"a": 1}, TypeError, "'x' must hold real numbers, got dtype object"),
        ([[1.0, 2.0], [3.0]], ValueError, "'x' must be a rectangular array of numbers"),
        (np.ones((30, 2, 1)), ValueError, "'x' must be 1-D or 2-D, got 3 dimensions"),
        (
            np.ones((30, 2), dtype=complex),
            TypeError,
            "'x' must hold real numbers, got dtype complex128",
        ),
        (np.full((30, 2), np.inf), ValueError, r"'x' must be finite, got inf at index \(0, 0\)"),
    ],
)
def test_bad_inputs_are_refused_naming_x(
    data: tuple[np.ndarray, np.ndarray], values: object, error: type, message: str
) -> None:
    _, y = data
    with pytest.raises(error, match=message):
        nnet(values, y, size=2, trace=False)


def test_softmax_needs_two_columns(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    with pytest.raises(ValueError, match="'softmax = TRUE' requires at least two response"):
        nnet(x, y[:, 0], size=2, softmax=True, trace=False)


def test_missing_values_and_row_mismatch(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    with pytest.raises(ValueError, match="missing values in 'x': NaN at index"):
        nnet(np.where(x > 0.9, np.nan, x), y, size=2, trace=False)
    with pytest.raises(ValueError, match=r"missing values in 'y': NaN at index \(0, 0\)"):
        nnet(x, np.full_like(y, np.nan), size=2, trace=False)
    with pytest.raises(ValueError, match="must match: 'x' has 29 rows, 'y' has 30"):
        nnet(x[:-1], y, size=2, trace=False)
    with pytest.raises(ValueError, match="missing values in 'x'"):
        unfitted(x, y).predict([[np.nan, 0.0]])
    with pytest.raises(TypeError, match="'x' must hold real numbers"):
        unfitted(x, y).predict([["a", "b"]])


def test_arguments_are_not_changed(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    wts = np.random.default_rng(9).uniform(-1, 1, 27)
    before = [a.copy() for a in (x, y, wts)]
    fit = nnet(x, y, size=5, Wts=wts, maxit=10, trace=False)
    for array, copy in zip((x, y, wts), before, strict=True):
        np.testing.assert_array_equal(array, copy)
    assert not np.shares_memory(fit.wts, wts)


# --- fuzzing: any argument, any value -> a fit, or an error that names the argument ---

ARGUMENTS = [
    "x", "y", "size", "Wts", "linout", "entropy", "softmax", "skip", "rang", "decay",
    "maxit", "abstol", "reltol", "trace", "seed", "MaxNWts",
]  # fmt: skip
FUZZ_X = np.random.default_rng(12).uniform(size=(12, 2))
FUZZ_Y = class_ind(FUZZ_X.sum(axis=1) > 1)
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-3, max_value=40),
    st.floats(),
    st.floats(min_value=-1e3, max_value=1e3),
    st.complex_numbers(),
    st.fractions(),
    st.decimals(),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.lists(st.floats(), max_size=30),
    st.lists(st.lists(st.integers(min_value=-2, max_value=2), max_size=3), max_size=13),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    hnp.arrays(
        dtype=st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex128, "U2"]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=13),
    ),
    # Right-sized data and weight vectors with arbitrary (also huge or non-finite) entries.
    hnp.arrays(np.float64, (12, 2)),
    hnp.arrays(np.float64, (12, 1)),
    hnp.arrays(np.float64, 15),
)


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(ARGUMENTS), value=ANY_VALUE)
def test_any_argument_value_gives_a_fit_or_an_error_naming_it(name: str, value: object) -> None:
    arguments = {"x": FUZZ_X, "y": FUZZ_Y, "size": 3, "Wts": None, "maxit": 3, "trace": False}
    arguments[name] = value
    kept = value.copy() if isinstance(value, np.ndarray) else None
    try:
        fit = nnet(**arguments, seed=0) if name != "seed" else nnet(**arguments)
    except (TypeError, ValueError) as error:
        event("refused")
        assert f"'{name}'" in str(error)
    else:
        event("fitted")
        assert math.isfinite(fit.value) and np.isfinite(fit.wts).all()
        assert fit.fitted_values.shape == (FUZZ_X.shape[0], fit.n[2])
    if kept is not None:
        np.testing.assert_array_equal(value, kept)


# --- printed output (expected text copied from R 4.2.2, nnet 7.3-18) -------------

SKIP_LINEAR_SUMMARY = """\
a 2-2-1 network with 11 weights
options were - skip-layer connections  linear output units  decay=5e-04
 b->h1 i1->h1 i2->h1 
  1.44  -1.08  -1.51 
 b->h2 i1->h2 i2->h2 
  4.33  -4.56  -3.96 
 b->o h1->o h2->o i1->o i2->o 
 0.76  4.83 -4.28 -1.06 -0.20 """  # noqa: W291 -- R ends each line with a space

SOFTMAX_SUMMARY = """\
a 2-1-2 network with 7 weights
options were - softmax modelling 
 b->h1 i1->h1 i2->h1 
  0.00 123.46   0.00 
 b->o1 h1->o1 
  0.50   1.00 
 b->o2 h1->o2 
 -2.00   0.00 """  # noqa: W291

WRAPPED_OUTPUT_UNIT = """\
  b->o  h1->o  h2->o  h3->o  h4->o  h5->o  h6->o  h7->o  h8->o  h9->o h10->o 
  0.89   1.05   1.22   1.38   1.54   1.70   1.86   2.03   2.19   2.35   2.51 
h11->o h12->o  i1->o 
  2.68   2.84   3.00 """  # noqa: W291

TINY_X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
TINY_Y = np.array([0.0, 1.0, 1.0])


def test_summary_matches_r_text() -> None:
    wts = [1.444, -1.083, -1.509, 4.33, -4.561, -3.96, 0.764, 4.83, -4.28, -1.06, -0.195]
    fit = nnet(
        TINY_X, TINY_Y, size=2, Wts=wts, skip=True, linout=True, decay=5e-4, maxit=0, trace=False
    )
    assert fit.summary() == SKIP_LINEAR_SUMMARY
    assert repr(fit) == "\n".join(SKIP_LINEAR_SUMMARY.split("\n")[:2])


def test_summary_pads_to_the_widest_weight_and_prints_no_negative_zero() -> None:
    y = np.column_stack([TINY_Y, 1 - TINY_Y])
    wts = [-0.004, 123.456, 0, 0.5, 1, -2, 1e-3]
    fit = nnet(TINY_X, y, size=1, Wts=wts, softmax=True, maxit=0, trace=False)
    assert fit.summary() == SOFTMAX_SUMMARY


def test_summary_wraps_long_units_at_80_columns() -> None:
    wts = np.round(np.linspace(-3, 3, 38), 3)
    fit = nnet(TINY_X[:, :1], TINY_Y, size=12, Wts=wts, skip=True, maxit=0, trace=False)
    assert fit.summary().endswith(WRAPPED_OUTPUT_UNIT)


def test_repr_lists_no_options_when_there_are_none(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    assert repr(unfitted(x, y)) == "a 2-5-2 network with 27 weights\noptions were -"
    assert repr(unfitted(x, y, entropy=True, decay=1e-3)) == (
        "a 2-5-2 network with 27 weights\noptions were - entropy fitting  decay=0.001"
    )


def test_trace_prints_like_r(
    data: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture
) -> None:
    x, y = data
    nnet(x, y, size=5, maxit=20, seed=0)
    lines = capsys.readouterr().out.split("\n")
    assert lines[0] == "# weights:  27"
    assert re.fullmatch(r"initial  value \d+\.\d{6} ", lines[1])
    assert re.fullmatch(r"iter  10 value \d+\.\d{6}", lines[2])
    assert re.fullmatch(r"iter  20 value \d+\.\d{6}", lines[3])
    assert re.fullmatch(r"final  value \d+\.\d{6} ", lines[4])
    assert lines[5:] == ["stopped after 20 iterations", ""]


def test_trace_says_converged(
    data: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture
) -> None:
    x, y = data
    nnet(x, y, size=1, maxit=1000, seed=0)
    assert capsys.readouterr().out.endswith(" \nconverged\n")


def test_no_iterations_prints_only_the_weight_count(
    data: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture
) -> None:
    x, y = data
    nnet(x, y, size=5, maxit=0, seed=0)
    assert capsys.readouterr().out == "# weights:  27\n"


# --- the criterion and vmmin on their own (what an optimiser other than nnet's sees) -----


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
def test_criterion_is_what_the_fit_minimised(
    data: tuple[np.ndarray, np.ndarray], settings: dict
) -> None:
    x, y = data
    fit = nnet(x, y, size=4, maxit=15, trace=False, seed=2, **settings)
    criterion = fit.criterion(x, y)
    assert criterion.n_weights == fit.wts.size
    assert criterion.value(fit.wts) == fit.value  # bit for bit: the same arithmetic
    assert criterion.value(list(fit.wts)) == fit.value
    loss = loss_for(x, y, size=4, **settings)
    np.testing.assert_array_equal(criterion.gradient(fit.wts), loss.gradient(fit.wts))


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
def test_vmmin_on_the_criterion_is_nnets_own_fit(
    data: tuple[np.ndarray, np.ndarray], settings: dict
) -> None:
    x, y = data
    start = unfitted(x, y, size=3, **settings)
    fit = nnet(x, y, size=3, Wts=start.wts, maxit=25, trace=False, **settings)
    criterion = start.criterion(x, y)
    minimum = nnet_module.vmmin(start.wts, criterion.value, criterion.gradient, maxit=25)
    np.testing.assert_array_equal(minimum.wts, fit.wts)
    assert (minimum.value, minimum.convergence) == (fit.value, fit.convergence)


def test_vmmin_trace_is_nnets_trace(
    data: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture
) -> None:
    x, y = data
    start = unfitted(x, y)
    nnet(x, y, size=5, Wts=start.wts, maxit=20)
    from_nnet = capsys.readouterr().out.split("\n", 1)[1]  # after "# weights:  27"
    criterion = start.criterion(x, y)
    nnet_module.vmmin(start.wts, criterion.value, criterion.gradient, maxit=20, trace=True)
    assert capsys.readouterr().out == from_nnet


def test_vmmin_hands_out_copies_and_leaves_start_alone() -> None:
    start = np.array([3.0, -1.0, 2.0])
    kept = start.copy()
    seen = []

    def value(w: np.ndarray) -> float:
        seen.append(w)
        result = float(((w - 1.0) ** 2).sum())
        w[:] = 1e9  # a careless objective writes into its argument: the optimiser must not care
        return result

    minimum = nnet_module.vmmin(start, value, lambda w: 2 * (w - 1.0))
    np.testing.assert_array_equal(start, kept)
    np.testing.assert_allclose(minimum.wts, [1.0, 1.0, 1.0], atol=1e-8)
    assert minimum.convergence == 0 and len({id(w) for w in seen}) == len(seen)


def test_vmmin_counts_are_what_a_wrapper_sees() -> None:
    calls = {"fn": 0, "gr": 0}

    def rosenbrock(w: np.ndarray) -> float:
        calls["fn"] += 1
        return float((1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2)

    def slope(w: np.ndarray) -> np.ndarray:
        calls["gr"] += 1
        return np.array(
            [-2 * (1 - w[0]) - 400 * w[0] * (w[1] - w[0] ** 2), 200 * (w[1] - w[0] ** 2)]
        )

    minimum = nnet_module.vmmin([-1.2, 1.0], rosenbrock, slope, maxit=200, abstol=-math.inf)
    np.testing.assert_allclose(minimum.wts, [1.0, 1.0], atol=1e-3)
    # BFGS evaluates the gradient once per accepted step and fn at every trial step too.
    assert minimum.convergence == 0 and calls["fn"] > calls["gr"] > 10


def test_criterion_refuses_weights_and_data_of_the_wrong_shape(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = data
    fit = unfitted(x, y)
    criterion = fit.criterion(x, y)
    with pytest.raises(
        ValueError, match=r"'wts' must be a flat vector of 27 weights, got shape \(26,\)"
    ):
        criterion.value(fit.wts[:-1])
    with pytest.raises(
        ValueError, match=r"'wts' must be a flat vector of 27 weights, got shape \(1, 27\)"
    ):
        criterion.gradient(fit.wts[None])
    with pytest.raises(ValueError, match=r"'x' must have 2 columns for this 2-5-2 network"):
        fit.criterion(x[:, :1], y)
    with pytest.raises(ValueError, match=r"'y' must have 2 columns .* got shape \(30, 1\)"):
        fit.criterion(x, y[:, 0])
    with pytest.raises(ValueError, match="nrows of 'x' and 'y' must match"):
        fit.criterion(x[:5], y)
    with pytest.raises(ValueError, match="missing values in 'x'"):
        fit.criterion(np.where(x > 0.5, np.nan, x), y)
    assert "2-5-2 network on 30 rows: 27 weights" in repr(criterion)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"start": [[1.0, 2.0]]}, ValueError, "'start' must be a flat"),
        ({"start": []}, ValueError, "'start' must be a flat"),
        ({"start": [1.0, np.inf]}, ValueError, "'start' must be finite, got inf at index 1"),
        ({"start": ["a", "b"]}, TypeError, "'start' must hold real numbers"),
        ({"fn": None}, TypeError, "'fn' must be a function of the weights"),
        ({"gr": 3}, TypeError, "'gr' must be a function of the weights"),
        ({"maxit": -1}, ValueError, "'maxit' must be at least 0"),
        ({"maxit": 2.5}, ValueError, "'maxit' must be a whole number"),
        ({"reltol": float("nan")}, ValueError, "'reltol' must be a number"),
        ({"trace": "yes"}, TypeError, "'trace' must be True or False"),
        ({"gr": lambda w: w[:1]}, ValueError, r"'gr' must return one value per weight"),
        ({"fn": lambda w: math.inf}, ValueError, "initial value in 'vmmin' is not finite"),
    ],
)
def test_vmmin_refuses_bad_arguments(arguments: dict, error: type, message: str) -> None:
    call = {"start": [1.0, 2.0], "fn": lambda w: float((w**2).sum()), "gr": lambda w: 2 * w}
    call |= arguments
    with pytest.raises(error, match=message):
        nnet_module.vmmin(call.pop("start"), call.pop("fn"), call.pop("gr"), **call)


def test_docstring_examples_run() -> None:
    import doctest

    assert doctest.testmod(nnet_module).failed == 0


@settings(max_examples=60)
@given(
    wts=hnp.arrays(
        np.float64,
        st.one_of(st.just((9,)), hnp.array_shapes(min_dims=0, max_dims=2, max_side=30)),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    )
)
def test_criterion_takes_any_array_or_names_wts(wts: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(12, 2))
    fit = nnet(x, x[:, 0] > x[:, 1], size=2, entropy=True, maxit=0, trace=False, seed=0)
    criterion = fit.criterion(x, x[:, 0] > x[:, 1])
    kept = wts.copy()
    if wts.shape != (criterion.n_weights,):
        event("refused")
        with pytest.raises(ValueError, match=r"'wts' must be a flat vector of 9 weights"):
            criterion.value(wts)
        return
    value, slope = criterion.value(wts), criterion.gradient(wts)
    assert isinstance(value, float) and slope.shape == (9,)
    if np.isfinite(wts).all() and np.abs(wts).max() < 1e3:
        event("finite")
        assert math.isfinite(value) and np.isfinite(slope).all()
    np.testing.assert_array_equal(wts, kept)  # the caller's weights are never written
