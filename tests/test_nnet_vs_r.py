"""helpers.nnet against R's nnet: same data, same starting weights, same answers.

Each case writes x, y and the starting weights to CSV (``%.17g``, which R reads back
exactly), runs tests/r/nnet_reference.R once, and compares. Without Rscript or R's
nnet package these tests skip, except under CI=true, where they fail instead.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from helpers.nnet import NNet, class_ind, nnet

pytestmark = pytest.mark.r

R_SCRIPT = Path(__file__).parent / "r" / "nnet_reference.R"
R_TIMEOUT_S = 60
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Case:
    classes: int = 2
    size: int = 5
    maxit: int = 50
    rang: float = 0.7
    settings: dict = field(default_factory=dict)


CASES = {
    "least_squares": Case(),
    "entropy": Case(settings={"entropy": True}),
    "softmax": Case(settings={"softmax": True}),
    "softmax_3_classes": Case(classes=3, settings={"softmax": True}),
    "decay": Case(settings={"decay": 0.1}),
    "skip": Case(settings={"skip": True}),
    "linout": Case(settings={"linout": True}),
    "softmax_3_classes_skip_decay": Case(
        classes=3, settings={"softmax": True, "skip": True, "decay": 0.01}
    ),
    "logistic_regression": Case(classes=1, size=0, settings={"skip": True, "entropy": True}),
    # Starting far out, where nnet guards log(0): entropy outputs of exactly 0 or 1,
    # and softmax probabilities that underflow to 0 (a fixed penalty of 1000 each).
    "entropy_saturated": Case(rang=40.0, maxit=20, settings={"entropy": True}),
    "softmax_saturated": Case(classes=3, rang=300.0, maxit=20, settings={"softmax": True}),
}


def r_unavailable_reason() -> str | None:
    if shutil.which("Rscript") is None:
        return "Rscript is not on PATH"
    probe = subprocess.run(
        ["Rscript", "-e", "library(nnet)"], capture_output=True, text=True, timeout=R_TIMEOUT_S
    )
    if probe.returncode != 0:
        return f"R's nnet package is not installed: {probe.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def rscript() -> None:
    reason = r_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but R cannot run: {reason}")
    pytest.skip(reason)


def make_data(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The R example's shape: 100 x 2 uniform inputs; class indicators (or one 0/1 column)."""
    rng = np.random.default_rng(2024)
    x = rng.uniform(size=(100, 2))
    total = x.sum(axis=1)
    if case.classes == 1:
        return x, (total > 1).astype(float), rng.uniform(size=(7, 2))
    cuts = [1.0] if case.classes == 2 else [0.8, 1.2]
    return x, class_ind(np.digitize(total, cuts)), rng.uniform(size=(7, 2))


def r_value(value: object) -> str:
    return str(value).upper() if isinstance(value, bool) else str(value)


def write_csv(path: Path, values: np.ndarray) -> None:
    np.savetxt(path, np.atleast_1d(values), fmt="%.17g", delimiter=",")


def read_csv(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


@dataclass(frozen=True)
class Comparison:
    start: NNet
    fit: NNet
    trace: str
    new_x: np.ndarray
    r_dir: Path


@pytest.fixture(scope="module", params=CASES, ids=list(CASES))
def comparison(
    request: pytest.FixtureRequest, rscript: None, tmp_path_factory: pytest.TempPathFactory
) -> Comparison:
    case = CASES[request.param]
    x, y, new_x = make_data(case)
    run = dict(x=x, y=y, size=case.size, **case.settings)
    n_weights = nnet(**run, maxit=0, trace=False, seed=0).wts.size
    wts = np.random.default_rng(7).uniform(-case.rang, case.rang, n_weights)

    r_dir = tmp_path_factory.mktemp(request.param)
    for name, values in [("x", x), ("y", y), ("wts", wts), ("newx", new_x)]:
        write_csv(r_dir / f"{name}.csv", values)
    settings = {"size": case.size, "maxit": case.maxit, **case.settings}
    args = [f"{key}={r_value(value)}" for key, value in settings.items()]
    subprocess.run(["Rscript", str(R_SCRIPT), str(r_dir), *args], check=True, timeout=R_TIMEOUT_S)

    start = nnet(**run, Wts=wts, maxit=0, trace=False)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        fit = nnet(**run, Wts=wts, maxit=case.maxit)
    return Comparison(start, fit, printed.getvalue(), new_x, r_dir)


def assert_close(python: np.ndarray, r: np.ndarray, rel: float) -> None:
    """Within ``rel`` of the largest magnitude in R's answer (or absolutely, below 1)."""
    scale = max(1.0, float(np.max(np.abs(r))))
    np.testing.assert_allclose(python, r, rtol=0, atol=rel * scale)


def test_predictions_before_fitting_match_r(comparison: Comparison) -> None:
    r_start = read_csv(comparison.r_dir / "initial.csv")
    assert_close(comparison.start.fitted_values, r_start, rel=1e-12)
    r_value0 = read_csv(comparison.r_dir / "initial_value.csv")[0, 0]
    assert_close(np.array(comparison.start.value), np.array(r_value0), rel=1e-12)


def test_fit_matches_r(comparison: Comparison) -> None:
    value, convergence = read_csv(comparison.r_dir / "value.csv").ravel()
    fit = comparison.fit
    assert_close(np.array(fit.value), np.array(value), rel=1e-6)
    assert_close(fit.wts, read_csv(comparison.r_dir / "wts.out.csv").ravel(), rel=1e-6)
    assert_close(fit.fitted_values, read_csv(comparison.r_dir / "fitted.csv"), rel=1e-6)
    assert fit.convergence == int(convergence)


def test_predict_matches_r(comparison: Comparison) -> None:
    r_predictions = read_csv(comparison.r_dir / "predict.csv")
    assert_close(comparison.fit.predict(comparison.new_x), r_predictions, rel=1e-6)


def test_trace_matches_r(comparison: Comparison) -> None:
    """Same lines and words; the printed numbers may differ only in the last digit."""
    r_trace = (comparison.r_dir / "trace.txt").read_text()
    assert NUMBER.sub("#", comparison.trace) == NUMBER.sub("#", r_trace)
    ours = np.array(NUMBER.findall(comparison.trace), dtype=float)
    theirs = np.array(NUMBER.findall(r_trace), dtype=float)
    assert_close(ours, theirs, rel=1e-6)


def test_print_and_summary_match_r(comparison: Comparison) -> None:
    assert repr(comparison.fit) + "\n" == (comparison.r_dir / "print.txt").read_text()
    assert comparison.fit.summary() + "\n" == (comparison.r_dir / "summary.txt").read_text()


@pytest.mark.parametrize("name", ["entropy_saturated", "softmax_saturated"])
def test_saturated_cases_reach_the_log_zero_guards(name: str) -> None:
    case = CASES[name]
    x, y, _ = make_data(case)
    n_weights = nnet(x, y, size=case.size, maxit=0, trace=False, seed=0, **case.settings).wts.size
    wts = np.random.default_rng(7).uniform(-case.rang, case.rang, n_weights)
    start = nnet(x, y, size=case.size, Wts=wts, maxit=0, trace=False, **case.settings)
    if case.settings.get("softmax"):
        assert ((start.fitted_values == 0) & (y > 0)).any()
    else:
        assert np.isin(start.fitted_values, [0.0, 1.0]).any()
