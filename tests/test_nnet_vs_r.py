"""helpers.nnet against R's nnet: same data, same starting weights, same answers.

Every case writes x, y and the starting weights to CSV (``%.17g``, which R reads back
exactly); one run of tests/r/nnet_reference.R fits them all, and each is compared.
Without Rscript or R's nnet package these tests skip, except under CI=true, where they
fail instead.

The port does nnet.c's arithmetic in nnet.c's order, with the same C library's ``exp``
and ``log``, so on the same machine its answers are bit-identical to R's
(``test_fit_is_bit_identical_to_r``). That holds where R's C code is compiled without
fusing ``a * b + c`` into one FMA instruction, as Debian's R for x86-64 is (gcc -O2, no
-march; neither nnet.so nor libR.so holds an FMA instruction). A build that fuses (gcc's
default on arm64, or -march=native) rounds differently, and the ill-conditioned "sign"
fits below then drift apart as far as a last-bit difference grows in their iterations
(over 300 such fits, measured: median 1e-8 of the weights, at most 0.3).
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

from helpers.nnet import NNet, class_ind, nnet, vmmin

pytestmark = pytest.mark.r

R_SCRIPT = Path(__file__).parent / "r" / "nnet_reference.R"
R_TIMEOUT_S = 30 * 60  # a hang guard only, never a speed limit: a busy machine is slow
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Case:
    """One fit. ``data``: "uniform_sum" is R's example shape (100 x 2 uniform inputs,
    classes cut from their sum; data seed 2024, weight seed 7); "sign" is 80 x 3 standard
    normal inputs with one 0/1 output, x1 * x2 > 0, all drawn from ``seed``. The sign
    fits are ill-conditioned: a last-bit difference anywhere grows to 1e-5 and beyond
    within 100 iterations, so they catch any arithmetic that is not R's."""

    classes: int = 2
    size: int = 5
    maxit: int = 50
    rang: float = 0.7
    settings: dict = field(default_factory=dict)
    data: str = "uniform_sum"
    seed: int = 2024


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
# Entropy fits on the sign data over seeds, sizes and iteration counts. Seed 29, size 6,
# 100 iterations is where NumPy's own AVX-512 exp/log (once used here) ended 3.4e-5 away.
SIGN_FITS = [(0, 3, 100), (1, 1, 300), (2, 6, 100), (3, 3, 300), (4, 2, 20), (5, 3, 10)]
SIGN_FITS += [(6, 4, 200), (7, 6, 300), (29, 6, 100)]
for seed, size, maxit in SIGN_FITS:
    CASES[f"entropy_sign_seed{seed}_size{size}_maxit{maxit}"] = Case(
        classes=1, size=size, maxit=maxit, settings={"entropy": True}, data="sign", seed=seed
    )
CASES["entropy_sign_decay"] = Case(
    classes=1, size=3, maxit=100, settings={"entropy": True, "decay": 0.01}, data="sign", seed=8
)
CASES["entropy_sign_skip"] = Case(
    classes=1, size=2, maxit=100, settings={"entropy": True, "skip": True}, data="sign", seed=9
)


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


@dataclass(frozen=True)
class Inputs:
    x: np.ndarray
    y: np.ndarray
    wts: np.ndarray  # starting weights, given to both
    new_x: np.ndarray  # rows to predict after the fit


def n_weights(case: Case) -> int:
    n_in = 2 if case.data == "uniform_sum" else 3
    n_out = 1 if case.classes == 1 else case.classes
    skip = n_in if case.settings.get("skip") else 0
    return case.size * (1 + n_in) + n_out * (1 + case.size + skip)


def make_inputs(case: Case) -> Inputs:
    rng = np.random.default_rng(case.seed)
    if case.data == "sign":
        x = rng.standard_normal((80, 3))
        wts = rng.uniform(-case.rang, case.rang, n_weights(case))
        return Inputs(x, (x[:, 0] * x[:, 1] > 0).astype(float), wts, rng.standard_normal((7, 3)))
    x = rng.uniform(size=(100, 2))
    total = x.sum(axis=1)
    if case.classes == 1:
        y = (total > 1).astype(float)
    else:
        y = class_ind(np.digitize(total, [1.0] if case.classes == 2 else [0.8, 1.2]))
    new_x = rng.uniform(size=(7, 2))
    wts = np.random.default_rng(7).uniform(-case.rang, case.rang, n_weights(case))
    return Inputs(x, y, wts, new_x)


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


@pytest.fixture(scope="module")
def r_root(rscript: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every case's inputs written to ROOT/CASE, then fitted by one run of R."""
    root = tmp_path_factory.mktemp("nnet_r")
    for name, case in CASES.items():
        inputs = make_inputs(case)
        case_dir = root / name
        case_dir.mkdir()
        for name_of_values, values in vars(inputs).items():
            write_csv(case_dir / f"{name_of_values}.csv", values)
        settings = {"size": case.size, "maxit": case.maxit, **case.settings}
        lines = [f"{key}={r_value(value)}\n" for key, value in settings.items()]
        (case_dir / "settings.txt").write_text("".join(lines))
    subprocess.run(["Rscript", str(R_SCRIPT), str(root)], check=True)
    return root


@pytest.fixture(scope="module", params=CASES, ids=list(CASES))
def comparison(request: pytest.FixtureRequest, r_root: Path) -> Comparison:
    case = CASES[request.param]
    inputs = make_inputs(case)
    run = dict(x=inputs.x, y=inputs.y, size=case.size, Wts=inputs.wts, **case.settings)
    start = nnet(**run, maxit=0, trace=False)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        fit = nnet(**run, maxit=case.maxit)
    return Comparison(start, fit, printed.getvalue(), inputs.new_x, r_root / request.param)


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


def test_fit_is_bit_identical_to_r(comparison: Comparison) -> None:
    """Same arithmetic, same order, same exp and log: not one bit apart (see the top)."""
    r_dir, fit = comparison.r_dir, comparison.fit
    np.testing.assert_array_equal(fit.wts, read_csv(r_dir / "wts.out.csv").ravel())
    assert fit.value == read_csv(r_dir / "value.csv")[0, 0]
    np.testing.assert_array_equal(fit.fitted_values, read_csv(r_dir / "fitted.csv"))
    np.testing.assert_array_equal(comparison.start.value, read_csv(r_dir / "initial_value.csv"))


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
    inputs = make_inputs(case)
    start = nnet(
        inputs.x, inputs.y, size=case.size, Wts=inputs.wts, maxit=0, trace=False, **case.settings
    )
    if case.settings.get("softmax"):
        assert ((start.fitted_values == 0) & (inputs.y > 0)).any()
    else:
        assert np.isin(start.fitted_values, [0.0, 1.0]).any()


def test_sign_fits_are_ill_conditioned() -> None:
    """The sign fits are there to catch last-bit differences: check that they would.

    One ulp more in one starting weight moves this fit further than the 1e-6 that
    test_fit_matches_r allows, so arithmetic that rounds even once unlike R's fails there.
    """
    case = CASES["entropy_sign_seed29_size6_maxit100"]
    inputs = make_inputs(case)
    nudged = inputs.wts.copy()
    nudged[0] = np.nextafter(nudged[0], np.inf)
    run = dict(x=inputs.x, y=inputs.y, size=case.size, maxit=case.maxit, trace=False)
    fit = nnet(**run, Wts=inputs.wts, **case.settings).wts
    moved = nnet(**run, Wts=nudged, **case.settings).wts - fit
    assert np.max(np.abs(moved)) > 1e-6 * max(1.0, np.max(np.abs(fit)))


# R's optim(method = "BFGS") is the same vmmin: on the Rosenbrock function, with nnet's
# tolerances, it must end at the same point after the same numbers of fn and gr calls.
OPTIM_BFGS_R = """
fn <- function(w) (1 - w[1])^2 + 100 * (w[2] - w[1]^2)^2
gr <- function(w) c(-2 * (1 - w[1]) - 400 * w[1] * (w[2] - w[1]^2), 200 * (w[2] - w[1]^2))
for (maxit in c(5, 30, 200)) {
  o <- optim(c(-1.2, 1), fn, gr, method = "BFGS",
             control = list(maxit = maxit, abstol = 1e-4, reltol = 1e-8))
  cat(sprintf("%.17g", c(o$par, o$value)), o$counts, o$convergence, "\\n")
}
"""


class CountedRosenbrock:
    """The Rosenbrock function and its gradient, counting their calls (as R's optim does)."""

    def __init__(self) -> None:
        self.fn_calls = self.gr_calls = 0

    def fn(self, w: np.ndarray) -> float:
        self.fn_calls += 1
        return float((1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2)

    def gr(self, w: np.ndarray) -> np.ndarray:
        self.gr_calls += 1
        inner = w[1] - w[0] ** 2
        return np.array([-2 * (1 - w[0]) - 400 * w[0] * inner, 200 * inner])


def test_vmmin_matches_r_optim_bfgs_and_its_counts(rscript: None) -> None:
    r_lines = subprocess.run(
        ["Rscript", "-e", OPTIM_BFGS_R], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for maxit, line in zip((5, 30, 200), r_lines, strict=True):
        *r_numbers, fn_count, gr_count, convergence = line.split()
        counted = CountedRosenbrock()
        minimum = vmmin([-1.2, 1.0], counted.fn, counted.gr, maxit=maxit)
        assert [*minimum.wts, minimum.value] == [float(n) for n in r_numbers], maxit
        assert (counted.fn_calls, counted.gr_calls) == (int(fn_count), int(gr_count)), maxit
        assert minimum.convergence == int(convergence), maxit
