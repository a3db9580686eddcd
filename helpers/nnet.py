"""A numpy port of R's ``nnet`` for networks with one hidden layer.

R's ``nnet`` (Venables & Ripley, package *nnet*) keeps every weight of its network
in one flat vector and hands that vector straight to a general-purpose optimiser
(``vmmin``, the BFGS code behind ``optim(method = "BFGS")``). This module does the
same in numpy, with the same weight order, the same objective and gradient
arithmetic, and the same optimiser, so that a fit started from the same weights
ends where R's does (to rounding).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.uniform(size=(40, 2))
>>> y = class_ind((x.sum(axis=1) > 1).astype(int))
>>> fit = nnet(x, y, size=3, softmax=True, decay=0.01, maxit=20, trace=False, seed=1)
>>> fit
a 2-3-2 network with 17 weights
options were - softmax modelling  decay=0.01
>>> fit.weight_names()[:4]
['b->h1', 'i1->h1', 'i2->h1', 'b->h2']

Summation order: R's C code adds terms one at a time, left to right. ``np.sum``
adds pairwise, which rounds differently, so every sum that R accumulates in a
loop is taken here with ``np.cumsum(...)[-1]`` (strictly sequential) instead.

Exponentials and logarithms: nnet.c calls the C library's ``exp()`` and ``log()``.
On a processor with AVX-512, NumPy computes ``np.exp`` and ``np.log`` of float64 with
its own vector code, which differs from the C library in the last bit for some
arguments (about 5% of ``exp`` and 0.3% of ``log`` results on one Xeon). A poorly
conditioned fit grows one such bit into a visible difference (1e-5 and more after 100
iterations), so this module calls the C library's functions, through ``math``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Criterion", "Minimum", "NNet", "class_ind", "nnet", "vmmin"]

FloatArray = NDArray[np.float64]

# nnet.c: added inside log() so that a fitted probability of exactly 0 or 1 stays finite.
_LOG_GUARD = 1.0e-80
# nnet.c: what softmax fitting adds for a target class whose probability underflowed to 0.
_LOG_ZERO_PENALTY = 1000.0
# nnet.c: the logistic function is clamped to exactly 0 or 1 beyond this input.
_SIGMOID_CLAMP = 15.0
# vmmin (R's optim.c): line-search shrink factor, sufficient-decrease factor, and the
# offset used to decide that a step no longer changes a parameter.
_STEP_SHRINK = 0.2
_ACCEPT_TOL = 1.0e-4
_NO_CHANGE_OFFSET = 10.0
_REPORT_EVERY = 10
# R's default print width (options(width)), which decides where summary lines wrap.
_PRINT_WIDTH = 80


# ---------------------------------------------------------------------------
# Network wiring
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Wiring:
    """Which units feed which, in R's weight order.

    Every unit's incoming weights are contiguous in the vector: its bias first, then
    its sources. Hidden units come first (sources: the inputs), then output units
    (sources: the hidden units, then the inputs when ``skip``).
    """

    n_in: int
    size: int
    n_out: int
    skip: bool

    @property
    def hidden_fan_in(self) -> int:
        return 1 + self.n_in

    @property
    def output_fan_in(self) -> int:
        return 1 + self.size + (self.n_in if self.skip else 0)

    @property
    def n_hidden_weights(self) -> int:
        return self.size * self.hidden_fan_in

    @property
    def n_weights(self) -> int:
        if self.size == 0 and not self.skip:
            return 0
        return self.n_hidden_weights + self.n_out * self.output_fan_in

    def split(self, wts: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The hidden (size, 1 + n_in) and output (n_out, fan-in) weight matrices."""
        cut = self.n_hidden_weights
        hidden = wts[:cut].reshape(self.size, self.hidden_fan_in)
        output = wts[cut:].reshape(self.n_out, self.output_fan_in)
        return hidden, output

    def unit_labels(self) -> tuple[list[str], list[str], list[str]]:
        """R's unit names: inputs i1.., hidden h1.., outputs o1.. (a lone output is "o")."""
        inputs = [f"i{k}" for k in range(1, self.n_in + 1)]
        hidden = [f"h{k}" for k in range(1, self.size + 1)]
        outputs = ["o"] if self.n_out == 1 else [f"o{k}" for k in range(1, self.n_out + 1)]
        return inputs, hidden, outputs

    def weight_groups(self) -> list[list[str]]:
        """The "source->destination" label of every weight, grouped by destination."""
        inputs, hidden, outputs = self.unit_labels()
        output_sources = ["b", *hidden, *(inputs if self.skip else [])]
        groups = [[f"{src}->{h}" for src in ["b", *inputs]] for h in hidden]
        groups += [[f"{src}->{o}" for src in output_sources] for o in outputs]
        return groups


# ---------------------------------------------------------------------------
# Forward and backward passes (vectorised over examples, R's order within each)
# ---------------------------------------------------------------------------


def _sequential_sum(values: FloatArray, axis: int = -1) -> FloatArray:
    """Left-to-right sum along ``axis``, rounding exactly as a C accumulation loop does."""
    if values.shape[axis] == 0:
        return values.sum(axis=axis)
    return np.take(np.cumsum(values, axis=axis), -1, axis=axis)


def _weighted_sums(sources: FloatArray, weights: FloatArray) -> FloatArray:
    """Net input of each unit: (n, k) sources times (units, k) weights, added in source order."""
    total = np.zeros((sources.shape[0], weights.shape[0]))
    for k in range(sources.shape[1]):
        total = total + sources[:, k : k + 1] * weights[:, k]
    return total


def _exp_or_inf(value: float) -> float:
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


def _log_or_special(value: float) -> float:
    if value > 0:
        return math.log(value)
    return -math.inf if value == 0 else math.nan  # C's log(0) and log(negative or nan)


_C_EXP = np.frompyfunc(_exp_or_inf, 1, 1)
_C_LOG = np.frompyfunc(_log_or_special, 1, 1)


def _c_exp(values: FloatArray) -> FloatArray:
    """Elementwise ``exp`` of the C library, as nnet.c gets it (see the module docstring)."""
    with np.errstate(over="ignore"):  # inf on overflow, silently, as C's exp()
        return np.asarray(_C_EXP(values), dtype=np.float64)


def _c_log(values: FloatArray) -> FloatArray:
    """Elementwise ``log`` of the C library: -inf at 0, nan below 0, as C's ``log``."""
    with np.errstate(invalid="ignore"):
        return np.asarray(_C_LOG(values), dtype=np.float64)


def _logistic(net_input: FloatArray) -> FloatArray:
    clipped = np.clip(net_input, -_SIGMOID_CLAMP, _SIGMOID_CLAMP)
    value = 1.0 / (1.0 + _c_exp(-clipped))
    value = np.where(net_input < -_SIGMOID_CLAMP, 0.0, value)
    return np.where(net_input > _SIGMOID_CLAMP, 1.0, value)


def _softmax(net_input: FloatArray) -> FloatArray:
    shifted = _c_exp(net_input - net_input.max(axis=1, keepdims=True))
    return shifted / _sequential_sum(shifted, axis=1)[:, None]


def _with_bias(*blocks: FloatArray) -> FloatArray:
    n_rows = blocks[0].shape[0]
    return np.hstack([np.ones((n_rows, 1)), *blocks])


@dataclass(frozen=True)
class _Pass:
    """What one forward pass leaves behind for the error and the backward pass."""

    hidden_sources: FloatArray  # (n, 1 + n_in): bias, inputs
    hidden: FloatArray  # (n, size): logistic hidden activations
    output_sources: FloatArray  # (n, output fan-in): bias, hidden (, inputs)
    outputs: FloatArray  # (n, n_out): output activations (net input if linear)
    probs: FloatArray | None  # (n, n_out): softmax probabilities, softmax fits only


def _forward(
    wiring: _Wiring, wts: FloatArray, x: FloatArray, logistic_out: bool, softmax: bool
) -> _Pass:
    hidden_w, output_w = wiring.split(wts)
    hidden_sources = _with_bias(x)
    hidden = _logistic(_weighted_sums(hidden_sources, hidden_w))
    output_sources = _with_bias(hidden, *([x] if wiring.skip else []))
    outputs = _weighted_sums(output_sources, output_w)
    if logistic_out:
        outputs = _logistic(outputs)
    probs = _softmax(outputs) if softmax else None
    return _Pass(hidden_sources, hidden, output_sources, outputs, probs)


@dataclass(frozen=True)
class _Loss:
    """nnet's fitting criterion for one data set: error per example plus weight decay."""

    wiring: _Wiring
    x: FloatArray
    y: FloatArray
    logistic_out: bool
    entropy: bool
    softmax: bool
    decay: float

    def forward(self, wts: FloatArray) -> _Pass:
        return _forward(self.wiring, wts, self.x, self.logistic_out, self.softmax)

    def value(self, wts: FloatArray) -> float:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            errors = self._errors(self.forward(wts))
            penalty = _sequential_sum(self.decay * wts * wts)
            return float(_sequential_sum(errors.ravel()) + penalty)

    def gradient(self, wts: FloatArray) -> FloatArray:
        with np.errstate(over="ignore", invalid="ignore"):
            fwd = self.forward(wts)
            out_delta = self._output_deltas(fwd)
            hidden_delta = self._hidden_deltas(fwd, out_delta, self.wiring.split(wts)[1])
            per_example = np.hstack(
                [
                    _outer_rows(hidden_delta, fwd.hidden_sources),
                    _outer_rows(out_delta, fwd.output_sources),
                ]
            )
            start = 2.0 * self.decay * wts
            return _sequential_sum(np.vstack([start, per_example]), axis=0)

    def _errors(self, fwd: _Pass) -> FloatArray:
        """Each (example, output) term of the error, as nnet.c adds it to its total."""
        target = self.y
        if self.softmax:
            fitted_log = np.where(fwd.probs > 0, -(target * _c_log(fwd.probs)), _LOG_ZERO_PENALTY)
            return np.where(target > 0, fitted_log, 0.0)
        if self.entropy:
            out = fwd.outputs
            hit = np.where(target > 0, -(target * _c_log((out + _LOG_GUARD) / target)), 0.0)
            miss = (1.0 - target) * _c_log((1.0 - out + _LOG_GUARD) / (1.0 - target))
            return np.where(target < 1, hit - miss, hit)
        residual = fwd.outputs - target
        return residual * residual

    def _output_deltas(self, fwd: _Pass) -> FloatArray:
        """d(error)/d(net input) of each output unit, per example."""
        if self.softmax:
            target_total = _sequential_sum(self.y, axis=1)[:, None]
            return target_total * fwd.probs - self.y
        if self.entropy:
            return fwd.outputs - self.y
        delta = 2.0 * (fwd.outputs - self.y)
        if self.logistic_out:
            delta = delta * (fwd.outputs * (1.0 - fwd.outputs))
        return delta

    def _hidden_deltas(self, fwd: _Pass, out_delta: FloatArray, output_w: FloatArray) -> FloatArray:
        # nnet.c back-propagates from the last output unit to the first.
        size = self.wiring.size
        back = np.zeros((self.x.shape[0], size))
        for j in reversed(range(self.wiring.n_out)):
            back = back + out_delta[:, j : j + 1] * output_w[j, 1 : 1 + size]
        return back * (fwd.hidden * (1.0 - fwd.hidden))


def _outer_rows(deltas: FloatArray, sources: FloatArray) -> FloatArray:
    """Per example, delta of each unit times each of its sources, flattened in weight order."""
    return (deltas[:, :, None] * sources[:, None, :]).reshape(deltas.shape[0], -1)


# ---------------------------------------------------------------------------
# vmmin: R's BFGS variable-metric minimiser (src/main/optim.c)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Minimum:
    """What :func:`vmmin` returns: the last weights, the smallest value, R's convergence code.

    ``convergence`` is 0 when the optimiser stopped on its own (no further decrease), 1
    when it ran out of iterations (``maxit``), as in R's ``optim`` and ``nnet``.
    """

    wts: FloatArray
    value: float
    convergence: int


def _symmetric(lower: FloatArray) -> FloatArray:
    """Full matrix from the lower triangle vmmin stores (it never reads the upper one)."""
    return lower + np.tril(lower, -1).T


def _vmmin(
    start: FloatArray,
    fn: Callable[[FloatArray], float],
    gr: Callable[[FloatArray], FloatArray],
    maxit: int,
    abstol: float,
    reltol: float,
    emit: Callable[[str], None] | None,
) -> Minimum:
    """Minimise ``fn`` from ``start`` with R's vmmin; ``emit`` receives trace lines."""
    b = start.copy()
    if maxit <= 0:
        return Minimum(b, fn(b), 0)
    n = b.size
    f = fn(b)
    if not np.isfinite(f):
        raise ValueError("initial value in 'vmmin' is not finite")
    if emit:
        emit(f"initial  value {f:f} ")
    fmin = f
    g = gr(b)
    gradcount = ilast = iteration = 1
    inverse_hessian = np.eye(n)
    while True:
        if ilast == gradcount:
            inverse_hessian = np.eye(n)
        x_old, g_old = b.copy(), g.copy()
        step = -_sequential_sum(_symmetric(inverse_hessian) * g)
        gradproj = _sequential_sum(step * g)
        if gradproj < 0.0:
            b, f, steplength, unchanged = _line_search(fn, x_old, step, fmin, gradproj, f)
            enough = f > abstol and abs(f - fmin) > reltol * (abs(fmin) + reltol)
            if not enough:
                unchanged, fmin = n, f
            if unchanged < n:
                fmin = f
                g = gr(b)
                gradcount += 1
                iteration += 1
                updated = _bfgs_update(inverse_hessian, steplength * step, g - g_old)
                if updated is None:
                    ilast = gradcount
                else:
                    inverse_hessian = updated
            elif ilast < gradcount:
                unchanged, ilast = 0, gradcount
        else:
            # Uphill: restart from the identity, unless that was just done.
            unchanged = n if ilast == gradcount else 0
            ilast = gradcount
        if emit and iteration % _REPORT_EVERY == 0:
            emit(f"iter{iteration:4d} value {f:f}")
        if iteration >= maxit:
            break
        if gradcount - ilast > 2 * n:
            ilast = gradcount  # periodic restart
        if unchanged == n and ilast == gradcount:
            break
    if emit:
        emit(f"final  value {fmin:f} ")
        emit("converged" if iteration < maxit else f"stopped after {iteration} iterations")
    return Minimum(b, fmin, 0 if iteration < maxit else 1)


def _line_search(
    fn: Callable[[FloatArray], float],
    origin: FloatArray,
    direction: FloatArray,
    fmin: float,
    gradproj: float,
    f: float,
) -> tuple[FloatArray, float, float, int]:
    """Backtrack from a unit step until the decrease is sufficient or nothing moves.

    Returns the last point tried, its value (``f`` unchanged if none was evaluated), the
    step length and how many parameters the step left unchanged.
    """
    steplength = 1.0
    while True:
        b = origin + steplength * direction
        unchanged = int(np.count_nonzero(_NO_CHANGE_OFFSET + origin == _NO_CHANGE_OFFSET + b))
        if unchanged == origin.size:
            return b, f, steplength, unchanged
        f = fn(b)
        if np.isfinite(f) and f <= fmin + gradproj * steplength * _ACCEPT_TOL:
            return b, f, steplength, unchanged
        steplength *= _STEP_SHRINK


def _bfgs_update(lower: FloatArray, step: FloatArray, grad_change: FloatArray) -> FloatArray | None:
    """vmmin's update of the inverse-Hessian estimate; None when curvature is not positive."""
    d1 = _sequential_sum(step * grad_change)
    if not d1 > 0:
        return None
    h_change = _sequential_sum(_symmetric(lower) * grad_change)
    d2 = 1.0 + _sequential_sum(h_change * grad_change) / d1
    update = (np.outer(d2 * step, step) - np.outer(h_change, step) - np.outer(step, h_change)) / d1
    return lower + np.tril(update)


# ---------------------------------------------------------------------------
# R-style number formatting (for print and summary)
# ---------------------------------------------------------------------------


def _significant_digits(value: float, digits: int) -> tuple[int, int]:
    """(decimal exponent, significant digits needed) for ``value`` shown to ``digits``."""
    if value == 0:
        return 0, 1
    mantissa, exponent = f"{abs(value):.{digits - 1}e}".split("e")
    return int(exponent), max(1, len(mantissa.replace(".", "").rstrip("0")))


def _r_format(values: Sequence[float], digits: int = 7) -> list[str]:
    """Common-width strings as R's ``format()`` gives them: fixed unless scientific is narrower.

    >>> _r_format([0.5, -1.25, 3.0])
    [' 0.50', '-1.25', ' 3.00']
    >>> _r_format([1e-4]), _r_format([0.001]), _r_format([100000.0])
    (['1e-04'], ['0.001'], ['1e+05'])
    """
    values = [float(v) + 0.0 for v in values]  # + 0.0 turns -0.0 into 0.0, as R prints it
    shapes = [_significant_digits(v, digits) for v in values]
    decimals = max(max(0, sig - exp - 1) for exp, sig in shapes)
    int_width = max(
        int(v < 0) + max(exp + 1, 1) for v, (exp, _) in zip(values, shapes, strict=True)
    )
    fixed_width = int_width + decimals + (decimals > 0)
    mantissa_digits = max(sig for _, sig in shapes)
    exp_width = 3 if max(abs(exp) for exp, _ in shapes) >= 100 else 2
    any_negative = any(v < 0 for v in values)
    sci_width = any_negative + mantissa_digits + (mantissa_digits > 1) + 2 + exp_width
    if fixed_width <= sci_width:
        return [f"{v:.{decimals}f}".rjust(fixed_width) for v in values]
    return [f"{v:.{mantissa_digits - 1}e}".rjust(sci_width) for v in values]


def _r_named_vector(names: list[str], values: list[str]) -> list[str]:
    """Lines R prints for a named character vector (``print(x, quote = FALSE)``)."""
    width = max(len(s) for s in [*names, *values])
    per_line = max(1, _PRINT_WIDTH // (width + 1))
    lines = []
    for first in range(0, len(names), per_line):
        for row in (names, values):
            lines.append("".join(s.rjust(width) + " " for s in row[first : first + per_line]))
    return lines


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class NNet:
    """A fitted network, with the fields of R's ``nnet`` object.

    ``wts`` is R's flat weight vector; ``linout``/``entropy`` hold the settings R ends up
    using (``softmax=True`` forces ``linout=True`` and ``entropy=False``, as in R).

    >>> fit = nnet([[0.0], [1.0]], [0.0, 1.0], size=1, Wts=[0, 1, 0, 1], maxit=0, trace=False)
    >>> fit.n, fit.weight_names()
    ((1, 1, 1), ['b->h1', 'i1->h1', 'b->o', 'h1->o'])
    """

    n: tuple[int, int, int]
    wts: FloatArray
    value: float
    fitted_values: FloatArray
    residuals: FloatArray
    convergence: int
    linout: bool
    entropy: bool
    softmax: bool
    decay: float
    skip: bool

    @property
    def _wiring(self) -> _Wiring:
        return _Wiring(*self.n, skip=self.skip)

    def predict(self, x: ArrayLike) -> FloatArray:
        """Network outputs (softmax probabilities for softmax fits) for the rows of ``x``.

        A 1-D ``x`` is one example, as in R's ``predict.nnet``.

        >>> fit = nnet([[0.0], [1.0]], [0.0, 1.0], size=1, Wts=[0, 0, 0, 0], maxit=0, trace=False)
        >>> fit.predict([[0.5], [2.0]])
        array([[0.5],
               [0.5]])
        """
        rows = _real_array(x, "x")
        rows = rows.reshape(1, -1) if rows.ndim == 1 else rows
        if rows.ndim != 2 or rows.shape[1] != self.n[0]:
            raise ValueError(f"'x' must have {self.n[0]} columns, got shape {rows.shape}")
        _refuse_missing(rows, "x")
        return _network_outputs(self._wiring, self.wts, rows, self.linout, self.softmax)

    def criterion(self, x: ArrayLike, y: ArrayLike) -> Criterion:
        """The criterion this fit minimised, on data ``x``, ``y``, as a function of the weights.

        Same network, same options (``entropy``, ``softmax``, ``decay``...), same arithmetic as
        :func:`nnet`: ``fit.criterion(x, y).value(fit.wts)`` is ``fit.value`` when ``x``, ``y``
        are the data the fit was made on. Hand it to :func:`vmmin` or to any other optimiser
        that works on a vector. ``x`` and ``y`` are checked as :func:`nnet` checks them, and
        must have this network's numbers of input and output columns.

        >>> x = np.linspace(0, 1, 20)[:, None]
        >>> y = (x > 0.5).astype(float)
        >>> fit = nnet(x, y, size=2, entropy=True, maxit=5, trace=False, seed=0)
        >>> fit.criterion(x, y).value(fit.wts) == fit.value
        True
        """
        inputs, targets = _data_matrix(x, "x"), _data_matrix(y, "y")
        n_in, _, n_out = self.n
        if inputs.shape[0] != targets.shape[0]:
            raise ValueError(
                f"nrows of 'x' and 'y' must match: 'x' has {inputs.shape[0]} rows, "
                f"'y' has {targets.shape[0]}"
            )
        for name, data, columns in (("x", inputs, n_in), ("y", targets, n_out)):
            if data.shape[1] != columns:
                raise ValueError(
                    f"'{name}' must have {columns} columns for this {n_in}-{self.n[1]}-{n_out} "
                    f"network, got shape {data.shape}"
                )
        loss = _Loss(
            self._wiring, inputs, targets, not self.linout, self.entropy, self.softmax, self.decay
        )
        return Criterion(loss)

    def weight_names(self) -> list[str]:
        """R's label ("source->destination") for every weight, in ``wts`` order.

        >>> fit = nnet([[0.0, 1.0]], [[1.0]], size=0, skip=True, maxit=0, trace=False, seed=0)
        >>> fit.weight_names()
        ['b->o', 'i1->o', 'i2->o']
        """
        return [label for group in self._wiring.weight_groups() for label in group]

    def _options_line(self) -> str:
        flags = [
            (self.skip, " skip-layer connections "),
            (self.linout and not self.softmax, " linear output units "),
            (self.entropy, " entropy fitting "),
            (self.softmax, " softmax modelling "),
        ]
        line = "options were -" + "".join(text for on, text in flags if on)
        if self.decay > 0:
            line += f" decay={_r_format([self.decay])[0].strip()}"
        return line

    def __repr__(self) -> str:
        """R's ``print(fit)``: the architecture and the fitting options."""
        n_in, size, n_out = self.n
        header = f"a {n_in}-{size}-{n_out} network with {self.wts.size} weights"
        return f"{header}\n{self._options_line()}"

    def summary(self) -> str:
        """R's ``summary(fit)`` as text: ``repr`` plus each unit's weights to 2 decimals.

        Lines keep R's trailing spaces, so ``print(fit.summary())`` matches R's output.

        >>> fit = nnet([[0.0]], [[1.0]], size=0, skip=True, Wts=[0.5, -1.254], maxit=0,
        ...            trace=False)
        >>> print(fit.summary())  # doctest: +NORMALIZE_WHITESPACE
        a 1-0-1 network with 2 weights
        options were - skip-layer connections
          b->o  i1->o
          0.50  -1.25
        """
        shown = _r_format([round(float(w), 2) for w in self.wts])
        lines = repr(self).split("\n")
        start = 0
        for names in self._wiring.weight_groups():
            lines += _r_named_vector(names, shown[start : start + len(names)])
            start += len(names)
        return "\n".join(lines)


def class_ind(labels: ArrayLike) -> FloatArray:
    """R's ``class.ind``: one indicator column per level, levels in sorted order.

    >>> class_ind(["b", "a", "b"])
    array([[0., 1.],
           [1., 0.],
           [0., 1.]])
    """
    values = np.asarray(labels)
    if values.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {values.shape}")
    levels, codes = np.unique(values, return_inverse=True)
    indicators = np.zeros((values.size, levels.size))
    indicators[np.arange(values.size), codes] = 1.0
    return indicators


class Criterion:
    """nnet's fitting criterion on one data set, as a function of the weight vector.

    Made by :meth:`NNet.criterion`. ``value(wts)`` is the criterion (error plus decay),
    ``gradient(wts)`` its gradient, both computed as nnet.c computes them; ``n_weights`` is
    the length ``wts`` must have. A ``wts`` of another shape is refused (``ValueError``);
    non-finite weights give a non-finite value, as in R.

    >>> x = np.array([[0.0], [1.0]])
    >>> fit = nnet(x, [0.0, 1.0], size=1, Wts=[0, 1, 0, 1], maxit=0, trace=False)
    >>> criterion = fit.criterion(x, [0.0, 1.0])
    >>> criterion.n_weights, round(criterion.value(np.zeros(4)), 4)
    (4, 0.5)
    """

    def __init__(self, loss: _Loss) -> None:
        self._loss = loss
        self.n_weights = loss.wiring.n_weights

    def value(self, wts: ArrayLike) -> float:
        """The criterion at ``wts``: what ``nnet(..., Wts=wts, maxit=0).value`` reports."""
        return self._loss.value(self._checked(wts))

    def gradient(self, wts: ArrayLike) -> FloatArray:
        """The criterion's gradient at ``wts``, one entry per weight, in ``wts`` order."""
        return self._loss.gradient(self._checked(wts))

    def _checked(self, wts: ArrayLike) -> FloatArray:
        weights = _real_array(wts, "wts")
        if weights.shape != (self.n_weights,):
            raise ValueError(
                f"'wts' must be a flat vector of {self.n_weights} weights, "
                f"got shape {weights.shape}"
            )
        return weights

    def __repr__(self) -> str:
        wiring = self._loss.wiring
        return (
            f"<nnet criterion of a {wiring.n_in}-{wiring.size}-{wiring.n_out} network on "
            f"{self._loss.x.shape[0]} rows: {self.n_weights} weights>"
        )


def vmmin(
    start: ArrayLike,
    fn: Callable[[FloatArray], float],
    gr: Callable[[FloatArray], FloatArray],
    *,
    maxit: int = 100,
    abstol: float = 1.0e-4,
    reltol: float = 1.0e-8,
    trace: bool = False,
) -> Minimum:
    """Minimise ``fn`` from ``start`` with R's BFGS, the routine :func:`nnet` fits with.

    R's ``optim(start, fn, gr, method = "BFGS")`` runs the same C routine, ``vmmin``; the
    defaults here are the ones ``nnet`` passes it (R's ``optim`` defaults to
    ``abstol = -Inf``, ``reltol = 1.5e-8``). ``fn(wts)`` returns a number and ``gr(wts)``
    its gradient, one entry per weight; both receive a float64 copy of the weights and may
    count their calls. With ``trace``, progress is printed in R's words every 10 iterations.
    ``nnet(x, y, size, Wts=start, maxit=k, ...)`` ends where
    ``vmmin(start, c.value, c.gradient, maxit=k)`` ends, ``c = fit.criterion(x, y)``.

    >>> minimum = vmmin([3.0, -1.0], lambda w: float((w**2).sum()), lambda w: 2 * w)
    >>> bool(np.abs(minimum.wts).max() < 1e-12), minimum.convergence
    (True, 0)
    """
    weights = _real_array(start, "start")
    if weights.ndim != 1 or weights.size == 0:
        raise ValueError(f"'start' must be a flat (1-D) vector of weights, got {_describe(start)}")
    if not np.isfinite(weights).all():
        where = int(np.flatnonzero(~np.isfinite(weights))[0])
        raise ValueError(f"'start' must be finite, got {weights[where]} at index {where}")
    for name, function in (("fn", fn), ("gr", gr)):
        if not callable(function):
            raise TypeError(
                f"'{name}' must be a function of the weights, got {_describe(function)}"
            )
    maxit = _whole_number(maxit, "maxit")
    abstol, reltol = _real_number(abstol, "abstol"), _real_number(reltol, "reltol")
    emit = (lambda line: print(line, flush=True)) if _flag(trace, "trace") else None

    def value(wts: FloatArray) -> float:
        return float(fn(wts.copy()))

    def gradient(wts: FloatArray) -> FloatArray:
        slope = _real_array(gr(wts.copy()), "gr(wts)")
        if slope.shape != wts.shape:
            raise ValueError(
                f"'gr' must return one value per weight, shape {wts.shape}, got {slope.shape}"
            )
        return slope

    with np.errstate(over="ignore", invalid="ignore"):
        return _vmmin(weights, value, gradient, maxit, abstol, reltol, emit)


def _network_outputs(
    wiring: _Wiring, wts: FloatArray, x: FloatArray, linout: bool, softmax: bool
) -> FloatArray:
    """What R's VR_nntest returns: softmax probabilities, else the output units' values."""
    with np.errstate(over="ignore", invalid="ignore"):
        fwd = _forward(wiring, wts, x, not linout, softmax)
    return fwd.probs if softmax else fwd.outputs


# ---------------------------------------------------------------------------
# Argument checks: each error names the argument, what it must be and what it got
# ---------------------------------------------------------------------------


def _describe(value: object) -> str:
    """A short one-line picture of what the caller passed."""
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    shown = " ".join(repr(value).split())
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{shown} ({type(value).__name__})"


def _real_array(values: ArrayLike, name: str) -> FloatArray:
    """``values`` as a new float64 array, refusing ragged nesting and non-real entries."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"'{name}' must be a rectangular array of numbers: {error}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"'{name}' must hold real numbers, got dtype {array.dtype} from {_describe(values)}"
        )
    return array.astype(np.float64)


def _refuse_missing(array: FloatArray, name: str) -> None:
    if np.isnan(array).any():
        where = tuple(int(i) for i in np.argwhere(np.isnan(array))[0])
        raise ValueError(f"missing values in '{name}': NaN at index {where}")


def _data_matrix(values: ArrayLike, name: str) -> FloatArray:
    """``x`` or ``y`` as R's ``as.matrix`` makes it (a 1-D array is one column), checked."""
    matrix = _real_array(values, name)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2:
        raise ValueError(f"'{name}' must be 1-D or 2-D, got {matrix.ndim} dimensions")
    if 0 in matrix.shape:
        raise ValueError(
            f"'{name}' must have at least one row and one column, got shape {matrix.shape}"
        )
    _refuse_missing(matrix, name)
    if np.isinf(matrix).any():
        where = tuple(int(i) for i in np.argwhere(np.isinf(matrix))[0])
        raise ValueError(f"'{name}' must be finite, got {matrix[where]} at index {where}")
    return matrix


def _flag(value: object, name: str) -> bool:
    """A setting that must be True or False (a truthy string such as "no" is refused)."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"'{name}' must be True or False, got {_describe(value)}")
    return bool(value)


def _whole_number(value: object, name: str, minimum: int = 0) -> int:
    """An integer, or a float with no fractional part (R users write 5 for 5L)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"'{name}' must be a whole number, got {_describe(value)}")
    if not isinstance(value, numbers.Integral):
        number = _real_number(value, name)
        if not (math.isfinite(number) and number.is_integer()):
            raise ValueError(f"'{name}' must be a whole number, got {_describe(value)}")
    whole = int(value)
    if whole < minimum:
        raise ValueError(f"'{name}' must be at least {minimum}, got {_describe(value)}")
    return whole


def _real_number(value: object, name: str, minimum: float = -math.inf) -> float:
    """A real number, not NaN, at least ``minimum`` (infinities allowed)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"'{name}' must be a real number, got {_describe(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf if value > 0 else -math.inf
    if math.isnan(number):
        raise ValueError(f"'{name}' must be a number, got {_describe(value)}")
    if number < minimum:
        raise ValueError(f"'{name}' must be at least {minimum:g}, got {_describe(value)}")
    return number


def _non_negative_finite(value: object, name: str) -> float:
    """A finite number >= 0 whose double still fits in a float64 (``rang``, ``decay``)."""
    number = _real_number(value, name, minimum=0.0)
    if not math.isfinite(2.0 * number):
        raise ValueError(f"'{name}' must be finite and below 8e307, got {_describe(value)}")
    return number


def _given_weights(Wts: ArrayLike, n_weights: int) -> FloatArray:
    start = _real_array(Wts, "Wts")
    if start.ndim != 1:
        raise ValueError(f"'Wts' must be a flat (1-D) weight vector, got shape {start.shape}")
    if start.size != n_weights:
        raise ValueError(
            f"'Wts' is a weights vector of incorrect length: expected {n_weights}, got {start.size}"
        )
    if not np.isfinite(start).all():
        where = int(np.flatnonzero(~np.isfinite(start))[0])
        raise ValueError(f"'Wts' must be finite, got {start[where]} at index {where}")
    return start


def _start_weights(
    Wts: ArrayLike | None, n_weights: int, rang: float, seed: int | None
) -> FloatArray:
    if Wts is not None:
        return _given_weights(Wts, n_weights)
    if rang > 0:
        return np.random.default_rng(seed).uniform(-rang, rang, n_weights)
    return np.zeros(n_weights)


def _refuse_nonfinite_start(loss: _Loss, start: FloatArray) -> None:
    """R's vmmin stops on this too, but only once it iterates, and names no argument."""
    initial = loss.value(start)
    if not math.isfinite(initial):
        raise ValueError(
            f"the criterion at the starting weights is {initial}: 'x', 'y', the starting "
            "weights ('Wts' or 'rang') or 'decay' are too large for float64"
        )


def _checked_wiring(
    inputs: FloatArray, targets: FloatArray, size: object, skip: bool, max_weights: int
) -> _Wiring:
    if inputs.shape[0] != targets.shape[0]:
        raise ValueError(
            f"nrows of 'x' and 'y' must match: 'x' has {inputs.shape[0]} rows, "
            f"'y' has {targets.shape[0]}"
        )
    wiring = _Wiring(inputs.shape[1], _whole_number(size, "size"), targets.shape[1], skip)
    if wiring.n_weights == 0:
        raise ValueError("no weights to fit: 'size' is 0 and 'skip' is False")
    if wiring.n_weights > max_weights:
        raise ValueError(
            f"too many ({wiring.n_weights}) weights: 'size' = {wiring.size} with "
            f"{wiring.n_in} inputs and {wiring.n_out} outputs, more than 'MaxNWts' = "
            f"{max_weights}"
        )
    return wiring


def nnet(
    x: ArrayLike,
    y: ArrayLike,
    size: int,
    Wts: ArrayLike | None = None,
    linout: bool = False,
    entropy: bool = False,
    softmax: bool = False,
    skip: bool = False,
    rang: float = 0.7,
    decay: float = 0.0,
    maxit: int = 100,
    abstol: float = 1.0e-4,
    reltol: float = 1.0e-8,
    trace: bool = True,
    seed: int | None = None,
    MaxNWts: int = 1000,
) -> NNet:
    """Fit a single-hidden-layer network as R's ``nnet(x, y, size, ...)`` does.

    Hidden units are logistic; outputs are logistic, linear (``linout``) or softmax.
    The criterion is least squares, or conditional likelihood (``entropy``, or
    ``softmax`` with one column per class), plus ``decay`` times the sum of squared
    weights (biases included). It is minimised by R's BFGS code from ``Wts``, or from
    weights drawn uniformly in [-rang, rang] with a numpy Generator seeded by ``seed``.
    With ``trace`` the optimiser's progress is printed in R's words.

    Every argument is checked before anything is fitted; a bad one raises ``TypeError``
    or ``ValueError`` naming it, with what was expected and what came. Stricter than R:
    ``x`` and ``y`` need at least one row and column and finite values, ``Wts`` must be
    a flat finite vector, flags must be ``True``/``False``, ``size``/``maxit``/``seed``
    whole numbers >= 0, ``rang``/``decay`` finite numbers >= 0 (one ``decay`` for all
    weights), and the criterion at the starting weights must be finite.

    >>> import numpy as np
    >>> x = np.linspace(0, 1, 20)[:, None]
    >>> fit = nnet(x, (x > 0.5).astype(float), size=2, entropy=True, trace=False, seed=0)
    >>> fit.n, fit.wts.shape, fit.fitted_values.shape
    ((1, 2, 1), (7,), (20, 1))
    """
    inputs, targets = _data_matrix(x, "x"), _data_matrix(y, "y")
    linout, entropy = _flag(linout, "linout"), _flag(entropy, "entropy")
    softmax, skip, trace = _flag(softmax, "softmax"), _flag(skip, "skip"), _flag(trace, "trace")
    if linout and entropy:
        raise ValueError(
            "entropy fit only for logistic units: 'linout' and 'entropy' are both True"
        )
    if softmax:
        linout, entropy = True, False
    wiring = _checked_wiring(inputs, targets, size, skip, _whole_number(MaxNWts, "MaxNWts"))
    if softmax and targets.shape[1] < 2:
        raise ValueError(
            "'softmax = TRUE' requires at least two response categories: 'y' has 1 column"
        )
    rang, decay = _non_negative_finite(rang, "rang"), _non_negative_finite(decay, "decay")
    maxit = _whole_number(maxit, "maxit")
    abstol, reltol = _real_number(abstol, "abstol"), _real_number(reltol, "reltol")
    seed = None if seed is None else _whole_number(seed, "seed")
    start = _start_weights(Wts, wiring.n_weights, rang, seed)
    loss = _Loss(wiring, inputs, targets, not linout, entropy, softmax, decay)
    _refuse_nonfinite_start(loss, start)
    if trace:
        print(f"# weights:  {start.size}", flush=True)
    emit = (lambda line: print(line, flush=True)) if trace else None
    # vmmin, like its C original, meets inf and nan in trial steps and rejects them itself.
    with np.errstate(over="ignore", invalid="ignore"):
        best = _vmmin(start, loss.value, loss.gradient, maxit, abstol, reltol, emit)
    fitted = _network_outputs(wiring, best.wts, inputs, linout, softmax)
    return NNet(
        n=(wiring.n_in, wiring.size, wiring.n_out),
        wts=best.wts,
        value=best.value,
        fitted_values=fitted,
        residuals=targets - fitted,
        convergence=best.convergence,
        linout=linout,
        entropy=entropy,
        softmax=softmax,
        decay=decay,
        skip=wiring.skip,
    )
