"""What each axis of a tensor holds, in words both frameworks share: transfer's bookkeeping.

A Dense kernel's rows follow the features along its input's last axis. After a Keras
``Flatten`` of a feature map those features run (height, width, channels); after torch's
``nn.Flatten`` of the same map, (channels, height, width). To put each row where the twin
reads it, transfer describes every tensor of both models symbolically and compares.

An :class:`Axes` value describes one tensor: one :class:`Axis` per dimension. An axis is a
concatenation of parts (one part, unless a ``Concatenate`` made it), and a part is a
row-major product of :class:`Factor` objects, each a named quantity with a size:
``"x0.a2"`` (input 0, axis 2), ``"L3"`` (the outputs of the layer pair #3), ``"L3.s0"``
(its first spatial axis), ``"L3.s0~"`` (that axis pooled or resampled), ``"x0.a1//4"`` and
``"x0.a1%4"`` (an axis split in two by a reshape). Both models' walks name factors the same
way, so two axes hold the same things in the same order exactly when they are equal, and
:func:`permutation` says how to reorder one into the other. :class:`Unknown` stands for a
tensor whose axes could not be followed, with the reason; it only becomes an error when a
layer with weights reads it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Factor:
    """A named quantity along an axis, ``size`` values long."""

    name: str
    size: int
    fixed: bool = True  # False: follows an input dimension that may have another size
    # X//n and X%n (a reshape cut X in two) know X; a composite (X*Y) knows X and Y.
    split_of: Factor | None = field(default=None, compare=False, repr=False)
    whole: tuple[Factor, ...] = field(default=(), compare=False, repr=False)


Part = tuple[Factor, ...]  # a row-major product of factors; () holds a single value


@dataclass(frozen=True)
class Axis:
    """One dimension of a tensor: its parts, concatenated in order; or the batch."""

    parts: tuple[Part, ...] = ((),)
    batch: bool = False

    @property
    def size(self) -> int | None:
        """The number of values along the axis (None for the batch)."""
        if self.batch:
            return None
        return sum(math.prod(factor.size for factor in part) for part in self.parts)


BATCH = Axis(parts=(), batch=True)


@dataclass(frozen=True)
class Axes:
    """What each dimension of one tensor holds."""

    axes: tuple[Axis, ...]

    @property
    def shape(self) -> tuple[int | None, ...]:
        return tuple(axis.size for axis in self.axes)

    def __len__(self) -> int:
        return len(self.axes)


@dataclass(frozen=True)
class Unknown:
    """A tensor whose axes transfer could not follow, and why."""

    reason: str


Value = Axes | Unknown


def axis_of(*factors: Factor) -> Axis:
    """One axis holding the product of ``factors``, normalised (see :func:`_normalised`)."""
    return Axis((_normalised(factors),))


def _normalised(factors: Sequence[Factor]) -> Part:
    """Drop factors of size 1 (they order nothing), join the halves of a split factor, and
    open a composite whose halves were joined again: one way to write each product."""
    result: list[Factor] = []
    pending = list(factors)
    while pending:
        factor = pending.pop(0)
        if factor.whole:
            pending[:0] = factor.whole
            continue
        if factor.size == 1 and factor.fixed:
            continue
        result.append(factor)
        if len(result) >= 2 and (joined := _joined(result[-2], result[-1])):
            del result[-2:]
            pending.insert(0, joined)
    return tuple(result)


def _joined(high: Factor, low: Factor) -> Factor | None:
    """``X//n`` followed by ``X%n`` is ``X`` again."""
    base = high.split_of
    if base is not None and low.split_of == base and high.name == f"{base.name}//{low.size}":
        return base
    return None


def _split(factor: Factor, high_size: int) -> tuple[Factor, Factor]:
    """``factor`` as ``name//n`` (``high_size`` values) then ``name%n`` (the ``n`` inner ones)."""
    low_size = factor.size // high_size
    high = Factor(f"{factor.name}//{low_size}", high_size, factor.fixed, split_of=factor)
    return high, Factor(f"{factor.name}%{low_size}", low_size, factor.fixed, split_of=factor)


def unknown_among(*values: object) -> Unknown | None:
    """The first :class:`Unknown` among ``values`` (looking into lists and tuples)."""
    for value in values:
        if isinstance(value, Unknown):
            return value
        if isinstance(value, list | tuple):
            found = unknown_among(*value)
            if found:
                return found
    return None


def _dim(dim: int, rank: int) -> int:
    if not -rank <= dim < rank:
        raise IndexError(f"dimension {dim} out of range for {rank} dimensions")
    return dim % rank


# ---------------------------------------------------------------- operations


def permuted(value: Value, dims: Sequence[int]) -> Value:
    """``x.permute(dims)``: the same axes in another order."""
    if isinstance(value, Unknown):
        return value
    dims = [_dim(dim, len(value)) for dim in dims]
    return Axes(tuple(value.axes[dim] for dim in dims))


def reshaped(value: Value, shape: Sequence[int | None], where: str) -> Value:
    """``x.reshape(shape)`` where ``shape`` is the real result (None marks the batch).

    Factors are read in row-major order and regrouped into the new dimensions; a factor
    that a new dimension cuts through is split into ``name//n`` and ``name%n``.
    """
    if isinstance(value, Unknown):
        return value
    if tuple(shape) == value.shape:
        return value
    if any(len(axis.parts) > 1 for axis in value.axes if not axis.batch):
        return _merged(value, shape, where)
    queue: deque[Factor | Axis] = deque()
    for axis in value.axes:
        queue.extend([axis] if axis.batch else axis.parts[0])
    result = []
    for size in shape:
        if size is None:
            if not queue or queue[0] != BATCH:
                return Unknown(f"{where} moves the batch into another dimension")
            result.append(queue.popleft())
            continue
        taken = _take(queue, size)
        if taken is None:
            return Unknown(
                f"{where} mixes the batch with other dimensions, or splits a "
                "dimension of no fixed size"
            )
        result.append(axis_of(*taken))
    if queue:
        return Unknown(f"{where} drops part of its input")
    return Axes(tuple(result))


def _take(queue: deque, size: int) -> list[Factor] | None:
    """Factors from the front of ``queue`` whose product is ``size``, splitting the last."""
    taken, product = [], 1
    while product < size:
        if not queue or queue[0] == BATCH:
            return None
        factor = queue.popleft()
        if size % (product * factor.size) == 0:
            taken.append(factor)
            product *= factor.size
            continue
        needed = size // product
        group = [factor]  # the cut may go through several factors: take them as one
        while math.prod(f.size for f in group) % needed and queue and queue[0] != BATCH:
            group.append(queue.popleft())
        whole = math.prod(f.size for f in group)
        if size % product or whole % needed or not all(f.fixed for f in group):
            return None
        if len(group) > 1:
            names = "*".join(f.name for f in group)
            factor = Factor(f"({names})", whole, whole=tuple(group))
        high, low = _split(factor, needed)
        taken.append(high)
        queue.appendleft(low)
        product *= needed
    return taken if product == size else None


def _merged(value: Axes, shape: Sequence[int | None], where: str) -> Value:
    """A reshape that only merges neighbouring dimensions, some of them concatenations."""
    axes, result = list(value.axes), []
    for size in shape:
        if size is None:
            if not axes or not axes[0].batch:
                return Unknown(f"{where} moves the batch into another dimension")
            result.append(axes.pop(0))
            continue
        group, product = [], 1
        while product < size and axes and not axes[0].batch:
            group.append(axes.pop(0))
            product *= group[-1].size
        if product != size:
            return Unknown(f"{where} splits a concatenated dimension")
        merged = _merged_parts(group)
        if merged is None:
            return Unknown(f"{where} interleaves a concatenated dimension with another")
        result.append(merged)
    if any(axis.batch or axis.size != 1 for axis in axes):
        return Unknown(f"{where} drops part of its input")
    return Axes(tuple(result))


def _merged_parts(group: list[Axis]) -> Axis | None:
    """Neighbouring axes merged row-major: (P1 + P2) x Q is (P1 x Q) + (P2 x Q)."""
    parts: list[tuple[Factor, ...]] = [()]
    for axis in group:
        if len(axis.parts) == 1:
            parts = [part + axis.parts[0] for part in parts]
        elif parts == [()]:
            parts = list(axis.parts)
        else:
            return None
    return Axis(tuple(_normalised(part) for part in parts))


def indexed(value: Value, index: object, where: str) -> Value:
    """``x[index]`` for integers, full or plain slices, ``None`` and ``...``."""
    if isinstance(value, Unknown):
        return value
    items = list(index) if isinstance(index, tuple) else [index]
    if sum(item is Ellipsis for item in items) > 1:
        return Unknown(f"{where} indexes with more than one '...'")
    if Ellipsis in items:
        at = items.index(Ellipsis)
        used = sum(item is not None for item in items) - 1
        items[at : at + 1] = [slice(None)] * (len(value) - used)
    axes, result = list(value.axes), []
    for item in items:
        if item is None:
            result.append(axis_of())
            continue
        if not axes:
            return Unknown(f"{where} indexes more dimensions than it has")
        axis = axes.pop(0)
        if isinstance(item, int) and not isinstance(item, bool):
            if axis.batch:
                return Unknown(f"{where} picks one sample of the batch")
            continue
        if not isinstance(item, slice):
            return Unknown(
                f"{where} indexes with {type(item).__name__} (only integers, "
                "slices, None and ... are followed)"
            )
        sliced = _sliced(axis, item)
        if sliced is None:
            return Unknown(f"{where} takes a slice of a dimension that is not one quantity")
        result.append(sliced)
    return Axes(tuple(result + axes))


def _sliced(axis: Axis, item: slice) -> Axis | None:
    if item == slice(None):
        return axis
    if axis.batch or len(axis.parts) != 1 or len(axis.parts[0]) != 1:
        return None
    factor = axis.parts[0][0]
    kept = range(factor.size)[item]
    if kept == range(factor.size):
        return axis
    if not factor.fixed:
        return None
    name = f"{factor.name}[{kept.start}:{kept.stop}:{kept.step}]"
    return axis_of(Factor(name, len(kept)))


def concatenated(values: Sequence[Value], dim: int, where: str) -> Value:
    """``cat(values, dim)``: equal elsewhere; along ``dim`` the parts, one after another."""
    found = unknown_among(*values)
    if found:
        return found
    first = values[0]
    dim = _dim(dim, len(first))
    for value in values[1:]:
        if len(value) != len(first) or any(
            mine != theirs
            for at, (mine, theirs) in enumerate(zip(first.axes, value.axes, strict=True))
            if at != dim
        ):
            return Unknown(f"{where} joins tensors whose other dimensions hold different things")
    if any(value.axes[dim].batch for value in values):
        return Unknown(f"{where} concatenates along the batch")
    parts = tuple(part for value in values for part in value.axes[dim].parts)
    return Axes(first.axes[:dim] + (Axis(parts),) + first.axes[dim + 1 :])


def reduced(value: Value, dims: Sequence[int], keepdim: bool, where: str) -> Value:
    """A mean, sum or maximum over ``dims``: those dimensions go (or keep size 1)."""
    if isinstance(value, Unknown):
        return value
    dims = {_dim(dim, len(value)) for dim in dims}
    if any(value.axes[dim].batch for dim in dims):
        return Unknown(f"{where} reduces over the batch")
    if keepdim:
        return Axes(tuple(axis_of() if at in dims else a for at, a in enumerate(value.axes)))
    return Axes(tuple(a for at, a in enumerate(value.axes) if at not in dims))


def resampled(value: Value, dims: Sequence[int], sizes: Sequence[int], where: str) -> Value:
    """Pooling, padding, cropping or upsampling along ``dims``: new positions, ``name~``."""
    if isinstance(value, Unknown):
        return value
    axes = list(value.axes)
    for dim, size in zip(dims, sizes, strict=True):
        axis = axes[dim]
        factors = axis.parts[0] if len(axis.parts) == 1 and not axis.batch else None
        if factors is None or len(factors) > 1 or (not factors and size != 1):
            return Unknown(f"{where} pools or resizes a dimension that is not one quantity")
        axes[dim] = axis_of(*(Factor(f"{f.name}~", size, f.fixed) for f in factors))
    return Axes(tuple(axes))


def broadcast(values: Sequence[object], where: str) -> Value:
    """An elementwise operation on several tensors (numbers aside), NumPy-broadcast."""
    found = unknown_among(*values)
    if found:
        return found
    tensors = [value for value in values if isinstance(value, Axes)]
    rank = max(len(tensor) for tensor in tensors)
    result = []
    for at in range(rank):
        candidates = {
            tensor.axes[at - rank + len(tensor)]
            for tensor in tensors
            if at - rank + len(tensor) >= 0
        }
        candidates.discard(axis_of())  # size 1 broadcasts
        if len(candidates) > 1:
            combined = _combined(sorted(candidates, key=repr))
            if combined is None:
                return Unknown(f"{where} combines dimensions of different shapes")
            candidates = {combined}
        result.append(candidates.pop() if candidates else axis_of())
    return Axes(tuple(result))


def _combined(axes: list[Axis]) -> Axis | None:
    """Axes added (or multiplied...) element by element: position i holds all their i-th values.

    Their factors are paired one by one, named ``(A+B)`` whatever the order of the operands.
    """
    if any(axis.batch or len(axis.parts) != 1 for axis in axes):
        return None
    sizes = {tuple(factor.size for factor in axis.parts[0]) for axis in axes}
    if len(sizes) != 1:
        return None
    factors = []
    for paired in zip(*(axis.parts[0] for axis in axes), strict=True):
        names = sorted({factor.name for factor in paired})
        fixed = all(factor.fixed for factor in paired)
        factors.append(Factor("(" + "+".join(names) + ")", paired[0].size, fixed))
    return axis_of(*factors)


# ---------------------------------------------------------------- comparing


def permutation(source: Axis, target: Axis) -> np.ndarray | None:
    """For each position along ``target``, the position along ``source`` with the same value.

    None when the two axes do not hold the same things.

    >>> rows, cols = Factor("rows", 2), Factor("cols", 3)
    >>> permutation(axis_of(rows, cols), axis_of(cols, rows)).tolist()
    [0, 3, 1, 4, 2, 5]
    """
    if source == target:
        return np.arange(source.size or 0)
    if source.batch or target.batch:
        return None
    if len(source.parts) == len(target.parts) == 1:
        source, target = (Axis((part,)) for part in _refined(source.parts[0], target.parts[0]))
    starts, start = {}, 0
    for part in source.parts:
        key = tuple(sorted((factor.name, factor.size) for factor in part))
        if key in starts:
            return None  # two parts alike: which is which cannot be told
        starts[key] = (start, part)
        start += math.prod(factor.size for factor in part)
    pieces = []
    for part in target.parts:
        key = tuple(sorted((factor.name, factor.size) for factor in part))
        if key not in starts:
            return None
        offset, source_part = starts.pop(key)
        sizes = [factor.size for factor in source_part]
        order = [source_part.index(factor) for factor in part]
        index = np.arange(math.prod(sizes)).reshape(sizes).transpose(order)
        pieces.append(index.reshape(-1) + offset)
    if starts:
        return None
    return np.concatenate(pieces) if pieces else np.arange(0)


def _refined(first: Part, second: Part) -> tuple[Part, Part]:
    """Split ``X`` into ``X//n, X%n`` on one side where the other holds it split so."""
    for _ in range(8):  # each round splits at least one factor; splits nest a few deep
        new_first, new_second = _split_like(first, second), _split_like(second, first)
        if (new_first, new_second) == (first, second):
            break
        first, second = new_first, new_second
    return first, second


def _split_like(part: Part, other: Part) -> Part:
    """``part`` with what ``other`` holds cut in two (``X//n, X%n``) cut the same way.

    ``X`` is one factor of ``part``, or a run of them that a reshape took as one (``(A*B)``).
    """
    result = list(part)
    for half in other:
        base = half.split_of
        if base is None or half.name != f"{base.name}//{base.size // half.size}":
            continue
        names = [factor.name for factor in result]
        if base.name in names:
            at, count = names.index(base.name), 1
        else:
            run = [factor.name for factor in base.whole]
            at = next(
                (i for i in range(len(names)) if run and names[i : i + len(run)] == run), None
            )
            count = len(run)
        if at is not None:
            result[at : at + count] = _split(base, half.size)
    return tuple(result)


def described(axis: Axis) -> str:
    """An axis in words, for error messages.

    >>> described(axis_of(Factor("L0", 8), Factor("x0.a1", 5)))
    '40 = 8 x 5 (outputs of layer #0, input 0 axis 2)'
    """
    if axis.batch:
        return "the batch"
    if len(axis.parts) > 1:
        return " + ".join(described(Axis((part,))) for part in axis.parts)
    factors = axis.parts[0]
    if not factors:
        return "1 value"
    if len(factors) == 1:
        return f"{factors[0].size} ({_label(factors[0].name)})"
    sizes = " x ".join(str(factor.size) for factor in factors)
    names = ", ".join(_label(factor.name) for factor in factors)
    return f"{axis.size} = {sizes} ({names})"


def _label(name: str) -> str:
    """``L3.s1~`` -> ``pooled axis 1 of layer #3's output`` and the like."""
    suffix = ""
    for marker in ("//", "%", "["):
        if marker in name:
            at = name.index(marker)
            name, suffix = name[:at], f" {name[at:]}" + suffix
            break
    pooled = name.endswith("~")
    name = name.rstrip("~")
    if name.startswith("x") and ".a" in name:
        number, axis = name[1:].split(".a")
        text = f"input {number} axis {int(axis) + 1}"
    elif name.startswith("L") and ".s" in name:
        layer, axis = name[1:].split(".s")
        text = f"spatial axis {int(axis) + 1} of layer #{layer}"
    elif name.startswith("L") and name[1:].isdigit():
        text = f"outputs of layer #{name[1:]}"
    else:
        text = name
    return ("pooled " if pooled else "") + text + suffix
