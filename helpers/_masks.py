"""Parts of the vector, chosen through its layout: masks, per-tensor views and norms.

A mask is a boolean vector with the same layout as the weights: True where a value is
selected (or kept). It works the same for every framework, including nnet, whose layout
keeps each unit's bias and weights in one entry: ``select(layout, kind="weight")`` picks
the weights inside those entries and leaves the biases out. ``hold_mask`` keeps a mask
applied to a PyTorch model while it trains.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

import numpy as np

from helpers._core import check_fits
from helpers._layout import KINDS, Layout, LayoutError

# Parts of an entry whose values are not all of one kind: (kind, first, stop) of each
# part, with None for "to the end of the entry".
_PARTS = {"bias+weight": (("bias", 0, 1), ("weight", 1, None))}


def select(
    layout: Layout,
    *,
    kind: str | Iterable[str] | None = None,
    name: str | Iterable[str] | None = None,
    trainable: bool | None = None,
) -> np.ndarray:
    """A boolean mask over the vector: True where a value belongs to the selection.

    ``kind`` takes one kind or several (see :class:`TensorEntry`); ``"weight"`` and
    ``"bias"`` also pick those parts of an nnet unit (``"bias+weight"``: the first value
    is the bias). ``name`` takes shell-style patterns matched against whole tensor names
    (``"0.*"``, ``"*/kernel"``); ``trainable`` picks by trainability. Criteria combine
    with *and*, the values given to one criterion with *or*; no criteria select it all.
    A kind that is not one of the known kinds, a pattern that matches no tensor, or a
    selection with no value at all raises, rather than return a mask that selects nothing.

    >>> import helpers
    >>> vector, layout = helpers.flatten({"kernel": np.ones((2, 3)), "bias": np.zeros(3)})
    >>> int(select(layout, name="k*").sum())
    6
    """
    _check_is_layout(layout)
    kinds = _strings("kind", kind, KINDS)
    patterns = _strings("name", name, None)
    if trainable is not None and not isinstance(trainable, bool):
        raise TypeError(f"trainable: expected True, False or None, got {trainable!r}")
    for pattern in patterns or ():
        if not any(fnmatchcase(entry.name, pattern) for entry in layout):
            raise LayoutError(f"name {pattern!r} matches no tensor; the layout has {layout.names}")
    mask = np.zeros(layout.size, dtype=bool)
    for entry in layout:
        if patterns is not None and not any(fnmatchcase(entry.name, p) for p in patterns):
            continue
        if trainable is not None and entry.trainable != trainable:
            continue
        if kinds is None or entry.kind in kinds:
            mask[entry.offset : entry.offset + entry.size] = True
            continue
        for part, first, stop in _PARTS.get(entry.kind, ()):
            if part in kinds:
                stop = entry.size if stop is None else stop
                mask[entry.offset + first : entry.offset + min(stop, entry.size)] = True
    if not mask.any():
        raise LayoutError(
            f"select({_describe(kind=kind, name=name, trainable=trainable)}) matches no value "
            f"of this {layout.framework} layout; its tensors' kinds are "
            f"{sorted({entry.kind for entry in layout})}"
        )
    return mask


def views(array: np.ndarray, layout: Layout) -> dict[str, np.ndarray]:
    """Each tensor's part of ``array``, shaped like the tensor: ``{name: view}``.

    ``array`` is a vector with this layout, or a mask (any dtype, same length). The
    views share its memory, so writing into one writes into the array; the layout's
    ``order`` is respected (an ``order="F"`` layout gives column-major views).

    >>> import helpers
    >>> vector, layout = helpers.flatten({"kernel": np.ones((2, 3))})
    >>> views(vector, layout)["kernel"] *= 2
    >>> vector.tolist()
    [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    """
    array = _checked_array("array", array, layout)
    # A slice of a 1-D array has one stride, so reshape never needs to copy it: a view.
    return {
        entry.name: array[entry.offset : entry.offset + entry.size].reshape(
            entry.shape, order=layout.order
        )
        for entry in layout
    }


def norms(
    vector: np.ndarray, layout: Layout, mask: np.ndarray | None = None, ord: float = 2
) -> dict[str, float]:
    """The norm of each tensor's values, or of its values where ``mask`` is True.

    ``ord`` is 2 (Euclidean), 1, or ``np.inf`` (largest magnitude), of the values taken
    as one flat vector. Tensors with no value in ``mask`` are left out.

    >>> import helpers
    >>> vector, layout = helpers.flatten({"kernel": np.full((2, 2), 3.0), "bias": np.ones(2)})
    >>> norms(vector, layout)
    {'kernel': 6.0, 'bias': 1.4142135623730951}
    """
    vector = _checked_array("vector", vector, layout)
    if mask is not None:
        mask = checked_mask(mask, layout)
    if ord not in (1, 2, np.inf):
        raise ValueError(f"ord: expected 1, 2 or np.inf, got {ord!r}")
    result = {}
    for entry in layout:
        values = vector[entry.offset : entry.offset + entry.size]
        if mask is not None:
            values = values[mask[entry.offset : entry.offset + entry.size]]
        if values.size:
            result[entry.name] = float(np.linalg.norm(values.astype(np.float64), ord=ord))
    return result


def hold_mask(model: Any, mask: np.ndarray, layout: Layout, optimizer: Any) -> HeldMask:
    """Hold a PyTorch model's values at zero where ``mask`` is False, while it trains.

    Zeroes them now; zeroes their gradients in every backward pass (the optimizer sees
    the gradients of the pruned network, as if the forward pass used ``weight * mask``);
    and zeroes them again after every ``optimizer.step()``. The last is what keeps them
    at zero: momentum, Adam's moment estimates and weight decay move a weight whose
    gradient is zero, as soon as they hold anything from before the mask. The values
    where ``mask`` is True train as usual. ``layout`` is ``helpers.flatten(model)``'s;
    only trainable parameters the ``optimizer`` updates may be masked. Call ``remove()``
    on the result (or use it as a context manager) to let the values move again.

    >>> import torch, helpers
    >>> model = torch.nn.Linear(3, 2)
    >>> vector, layout = helpers.flatten(model)
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> with hold_mask(model, np.abs(vector) > 0.2, layout, optimizer):
    ...     model(torch.ones(1, 3)).sum().backward()
    ...     optimizer.step()
    >>> bool(np.all(helpers.flatten(model)[0][np.abs(vector) <= 0.2] == 0))
    True
    """
    import torch  # only here: importing helpers imports no framework

    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"model: hold_mask works on a torch.nn.Module, got {type(model).__name__} "
            "(elsewhere, write vector * mask back with helpers.restore after each step)"
        )
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer: expected the torch.optim.Optimizer that trains the model, "
            f"got {type(optimizer).__name__}"
        )
    check_fits(model, layout)
    mask = checked_mask(mask, layout)
    tensors = model.state_dict(keep_vars=True)
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    pruned = []  # (parameter, 1 where it trains and 0 where it is held, in its dtype)
    for entry, keep in views(mask, layout).items():
        if keep.all():
            continue
        tensor = tensors.get(entry)
        if not isinstance(tensor, torch.nn.Parameter) or not tensor.requires_grad:
            raise LayoutError(
                f"mask: tensor {entry!r} is not a trainable parameter of this model, so "
                "hold_mask cannot hold it (mask only what the optimizer trains)"
            )
        if id(tensor) not in optimised:
            raise LayoutError(
                f"mask: parameter {entry!r} is not in the optimizer's param_groups; pass the "
                "optimizer that trains this model"
            )
        keep = torch.from_numpy(np.ascontiguousarray(keep))
        pruned.append((tensor, keep.to(device=tensor.device, dtype=tensor.dtype)))
    return HeldMask(pruned, optimizer)


class HeldMask:
    """The hooks :func:`hold_mask` installed: ``apply()`` zeroes again, ``remove()`` stops."""

    def __init__(self, pruned: list[tuple[Any, Any]], optimizer: Any) -> None:
        self._pruned = pruned
        # Multiplying by 0/1 is many times faster than masked_fill on the CPU; it leaves a
        # NaN a NaN, which only a diverged training (NaN gradients) can put there.
        self._hooks = [
            parameter.register_hook(lambda grad, keep=keep: grad * keep)
            for parameter, keep in pruned
        ]
        self._hooks.append(optimizer.register_step_post_hook(lambda *_: self.apply()))
        self.apply()

    def apply(self) -> None:
        """Set every held value to zero (each ``optimizer.step()`` does this too)."""
        import torch

        with torch.no_grad():
            for parameter, keep in self._pruned:
                parameter.mul_(keep)

    def remove(self) -> None:
        """Remove the hooks: the values train freely again (they stay zero until then)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def __enter__(self) -> HeldMask:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


def checked_mask(mask: Any, layout: Layout) -> np.ndarray:
    """``mask`` as a 1-D boolean array of the layout's length, or a clear error.

    >>> import helpers
    >>> _, layout = helpers.flatten({"bias": np.zeros(3)})
    >>> checked_mask(np.ones(3, dtype=bool), layout).dtype
    dtype('bool')
    """
    mask = _checked_array("mask", mask, layout)
    if mask.dtype != np.bool_:
        raise TypeError(
            f"mask: expected a boolean array, got dtype {mask.dtype} "
            "(write mask != 0 if a nonzero value means kept)"
        )
    return mask


def _checked_array(argument: str, array: Any, layout: Layout) -> np.ndarray:
    _check_is_layout(layout)
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{argument}: expected a NumPy array, got {type(array).__name__}")
    if array.shape != (layout.size,):
        raise LayoutError(
            f"{argument}: expected shape ({layout.size},) for this layout, got {array.shape}"
        )
    return array


def _check_is_layout(layout: Any) -> None:
    if not isinstance(layout, Layout):
        raise TypeError(f"layout: expected a helpers.Layout, got {type(layout).__name__}")


def _strings(
    argument: str, value: str | Iterable[str] | None, allowed: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    """One string or several, as a tuple; each checked against ``allowed`` if given."""
    if value is None:
        return None
    try:
        values = (value,) if isinstance(value, str) else tuple(value)
    except TypeError:  # not iterable
        values = ()
    if not values or not all(isinstance(item, str) for item in values):
        raise TypeError(f"{argument}: expected a string or strings, got {value!r}")
    unknown = [item for item in values if allowed is not None and item not in allowed]
    if unknown:
        raise ValueError(f"{argument}: {unknown} not among the kinds {allowed}")
    return values


def _describe(**criteria: Any) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in criteria.items() if value is not None)
