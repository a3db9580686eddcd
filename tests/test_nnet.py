"""helpers.nnet on its own: wiring, gradient, validation and R's printed formats.

Agreement with R itself is checked in test_nnet_vs_r.py.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

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


# --- argument checks --------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"linout": True, "entropy": True}, "entropy fit only for logistic units"),
        ({"Wts": np.zeros(26)}, "incorrect length: expected 27, got 26"),
        ({"size": 0}, "no weights to fit"),
        ({"size": -1}, "non-negative integer"),
        ({"size": 2.5}, "non-negative integer"),
        ({"size": 400}, r"too many \(2002\) weights"),
    ],
)
def test_bad_arguments(data: tuple[np.ndarray, np.ndarray], settings: dict, message: str) -> None:
    x, y = data
    settings = {"size": 5, **settings}
    with pytest.raises(ValueError, match=message):
        nnet(x, y, maxit=0, trace=False, **settings)


def test_softmax_needs_two_columns(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    with pytest.raises(ValueError, match="'softmax = TRUE' requires at least two response"):
        nnet(x, y[:, 0], size=2, softmax=True, trace=False)


def test_missing_values_and_row_mismatch(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    with pytest.raises(ValueError, match="missing values in 'x'"):
        nnet(np.where(x > 0.9, np.nan, x), y, size=2, trace=False)
    with pytest.raises(ValueError, match="missing values in 'y'"):
        nnet(x, np.full_like(y, np.nan), size=2, trace=False)
    with pytest.raises(ValueError, match="nrows of 'x' and 'y' must match"):
        nnet(x[:-1], y, size=2, trace=False)


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
