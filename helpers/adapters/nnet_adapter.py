"""R's nnet (``helpers.nnet.NNet``): the weights are already one vector, ``fit.wts``.

The layout has one 1-D entry per destination unit, named as R's ``summary()`` names
its rows: the hidden units ``h1``, ``h2``, ... and then the outputs ``o1``, ``o2``, ...
(``o`` when there is a single output). Each entry holds that unit's incoming weights,
bias first, then its sources (inputs for a hidden unit; hidden units, then inputs with
``skip=True``, for an output). Laid back to back they are exactly R's ``model$wts``, so
``flatten(fit)[0]`` equals ``fit.wts`` and the layout documents R's order. Because every
entry is 1-D, ``order="F"`` gives the same vector as ``order="C"``. Each entry's kind is
``"bias+weight"``: ``helpers.select(layout, kind="bias")`` picks the first value of each.

``restore`` writes into ``fit.wts`` in place, so ``fit.predict`` uses the new weights.
What the fit recorded about its training data (``fitted_values``, ``residuals``,
``value``, ``convergence``) is *not* recomputed: the fit does not keep ``x``. Refit with
``nnet(x, y, ..., Wts=vector, maxit=0)`` to get those for a new vector.
"""

from __future__ import annotations

import numpy as np

from helpers._layout import Include, LayoutError
from helpers.adapters import TensorHandle
from helpers.nnet import NNet


def handles(model: NNet, include: Include) -> list[TensorHandle]:
    """One handle per destination unit, in R's order (hidden units, then outputs).

    Every nnet weight is fitted, so ``include`` makes no difference here.
    """
    if not isinstance(model, NNet):
        raise TypeError(f"{type(model).__name__}: expected a helpers.nnet.NNet fit")
    names = model.weight_names()  # "source->unit", each unit's weights together
    wts = model.wts
    if not isinstance(wts, np.ndarray) or wts.shape != (len(names),):
        raise LayoutError(
            f"wts: a {'-'.join(map(str, model.n))} network"
            f"{' with skip-layer connections' if model.skip else ''} has {len(names)} "
            f"weights, got an array of shape {np.shape(wts)}"
        )
    units = [name.split("->")[1] for name in names]
    result, start = [], 0
    for unit in dict.fromkeys(units):  # destination units in order of first appearance
        stop = start + units.count(unit)
        result.append(_handle(unit, wts, start, stop))
        start = stop
    return result


def unit_layers(model: NNet) -> list[list[TensorHandle]]:
    """The handles of :func:`handles`, grouped by layer: the hidden units, then the outputs.

    This is the layout ``helpers.transfer`` reads: each unit's vector is its bias, then
    one weight per source, so a layer's units stacked are ``[bias | weight]`` of a torch
    ``Linear``.

    >>> from helpers.nnet import nnet
    >>> fit = nnet([[0.0, 1.0], [1.0, 0.0]], [0.0, 1.0], size=2, maxit=0, trace=False, seed=0)
    >>> [[handle.name for handle in layer] for layer in unit_layers(fit)]
    [['h1', 'h2'], ['o']]
    """
    layers: dict[str, list[TensorHandle]] = {}
    for handle in handles(model, "all"):
        layers.setdefault(handle.name[0], []).append(handle)  # "h..." or "o..."
    return list(layers.values())


def _handle(name: str, wts: np.ndarray, start: int, stop: int) -> TensorHandle:
    shape = (stop - start,)

    def write(values: np.ndarray) -> None:
        # write_all checked the shape; np.copyto writes in place (fit.wts stays the array).
        np.copyto(wts[start:stop], values)

    return TensorHandle(
        name=name,
        shape=shape,
        dtype=str(wts.dtype),
        trainable=True,
        read=lambda: wts[start:stop],
        write=write,
        kind="bias+weight",  # R's order: the unit's bias first, then its incoming weights
    )
