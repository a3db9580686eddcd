"""flatten, unflatten, restore: the whole idea, for any framework with an adapter.

``restore`` validates everything before it writes anything, in separate steps that a
faster writer can reuse: :func:`check_fits` (the layout describes the model),
:func:`checked_vector` (length and dtype) and :func:`check_values` (every value lands
in its tensor's dtype as documented). Each step is vectorised per tensor.
"""

from __future__ import annotations

import warnings
from typing import Any, get_args

import numpy as np

from helpers._layout import VECTOR_DTYPES, Include, Layout, LayoutError, Order, TensorEntry
from helpers.adapters import ModelTensors, TensorHandle, model_tensors, write_all

# NumPy has no bfloat16; a bfloat16 tensor travels in the vector as float32.
_WIDENED = {"bfloat16": "float32"}


class PrecisionWarning(UserWarning):
    """A value did not survive a cast between its tensor's dtype and the vector's exactly.

    ``restore`` and ``unflatten`` warn when a slice is narrowed back to a smaller float
    (float16, bfloat16, float32 from a float64 vector) and rounds, or overflows to inf;
    ``flatten`` when the vector's dtype cannot hold an integer tensor's values exactly
    (above 2**24 in float32, 2**53 in float64), or a float overflows a narrower ``dtype``.
    """


def flatten(
    model: Any,
    include: Include = "trainable",
    order: Order = "C",
    dtype: str | np.dtype | None = None,
) -> tuple[np.ndarray, Layout]:
    """Copy all of a model's weights into one 1-D NumPy vector, and describe where each went.

    ``include="trainable"`` takes what an optimiser updates; ``"all"`` adds the rest
    (batch-norm statistics, frozen weights). ``order="F"`` walks each tensor column by
    column, as R's ``as.vector`` does. The vector's dtype is ``dtype`` if given (float16,
    float32 or float64), else the widest floating dtype among the tensors. Integer
    tensors (such as batch-norm's ``num_batches_tracked``) are stored as floats too; a
    :class:`PrecisionWarning` says so if one holds a value the vector's dtype cannot
    represent exactly (above 2**24 for float32, 2**53 for float64).

    >>> vector, layout = flatten({"kernel": np.ones((2, 3)), "bias": np.zeros(3)})
    >>> vector.shape, layout.names
    ((9,), ['kernel', 'bias'])
    """
    _check_choice("include", include, get_args(Include))
    _check_choice("order", order, get_args(Order))
    tensors = model_tensors(model, include)
    layout = _model_layout(tensors, include, order, dtype)
    if order == "C" and tensors.gather is not None and _one_dtype(layout):
        return tensors.gather(), layout  # nothing to cast: one copy, in one call
    vector = np.empty(layout.size, dtype=layout.dtype)
    arrays = [handle.read() for handle in tensors.handles]
    if order == "C" and all(array.dtype == vector.dtype for array in arrays):
        # Nothing to cast, so nothing to warn about: one pass, each tensor copied once.
        np.concatenate([array.reshape(-1) for array in arrays], out=vector)
        return vector, layout
    for array, entry in zip(arrays, layout, strict=True):
        # One copy per tensor, straight into its slot (the slot is a view of the vector).
        slot = _slot(vector, entry, order)
        with np.errstate(over="ignore", invalid="ignore"):  # reported below, by name
            np.copyto(slot, array, casting="unsafe")
        _warn_if_the_vector_changed(entry, slot, array)
    return vector, layout


def unflatten(vector: np.ndarray, layout: Layout) -> dict[str, np.ndarray]:
    """Cut a vector back into named arrays of their original shapes and dtypes.

    The arrays are copies: changing them leaves the vector alone. The values are
    checked as :func:`restore` checks them (whole numbers for integer tensors; a
    :class:`PrecisionWarning` where a narrower float rounds). A bfloat16 tensor comes
    back as float32 holding the bfloat16 values.

    >>> vector, layout = flatten({"kernel": np.arange(6.0).reshape(2, 3)})
    >>> unflatten(vector, layout)["kernel"].shape
    (2, 3)
    """
    vector = checked_vector(vector, layout)
    check_values(vector, layout)
    return _cut(vector, layout)


def restore(
    model: Any,
    vector: np.ndarray,
    layout: Layout,
    *,
    reject_nonfinite: bool = False,
    atomic: bool = True,
) -> None:
    """Write a vector back into a model, in place, after checking that it fits.

    Everything is validated before anything is written: the vector's length and dtype,
    the layout's fingerprint against the model (every tensor's shape, dtype and
    trainability, in order; names are labels and may differ), every tensor's
    writability, and every value against its tensor's dtype (integer tensors take whole
    numbers in range). Any mismatch raises :class:`LayoutError` naming the tensor and
    leaves the model exactly as it was. ``reject_nonfinite=True`` also refuses NaN and
    infinity, including a finite value that overflows a narrower tensor dtype.

    What is guaranteed if a write fails anyway (``atomic=True``, the default): the model
    is left exactly as it was. A write that can still fail after validation (a Keras
    ``assign``, a copy to a GPU or into a tensor subclass, a sharded tensor) is backed up
    just before it is made, and those go first, so a failure puts back every tensor
    touched. Writes that cannot fail (a NumPy array; a plain torch tensor in host memory)
    take no backup and go last (a Ctrl-C among them is raised once all are made). So restoring a
    CPU torch model costs no extra memory and about one copy of its bytes; a Keras or
    GPU model holds a copy of its old values while it is written. ``atomic=False`` takes
    no backups at all: a failure part-way leaves the tensors before it written. The
    vector is read in place (no copy) unless it shares memory with the model.

    >>> weights = {"kernel": np.ones((2, 3))}
    >>> vector, layout = flatten(weights)
    >>> restore(weights, vector * 0, layout)
    >>> float(weights["kernel"].sum())
    0.0
    """
    tensors = _fitting_tensors(model, layout)
    vector = checked_vector(vector, layout)
    if _shares_memory(vector, tensors.handles):
        vector = vector.copy()  # writing one tensor would change what the next one reads
    sources = _sources(vector, layout, reject_nonfinite)
    plan = list(zip(tensors.handles, sources, strict=True))
    write_all(plan, atomic=atomic, scatter=tensors.scatter)


def check_fits(model: Any, layout: Layout) -> list[TensorHandle]:
    """Raise :class:`LayoutError` unless ``layout`` describes ``model``; return its tensors."""
    return _fitting_tensors(model, layout).handles


def _fitting_tensors(model: Any, layout: Layout) -> ModelTensors:
    _check_is_layout(layout)
    tensors = model_tensors(model, layout.include)
    expected = _model_layout(tensors, layout.include, layout.order, layout.dtype)
    if expected.fingerprint != layout.fingerprint:
        raise LayoutError(_explain_mismatch(expected, layout))
    return tensors


def _model_layout(
    tensors: ModelTensors, include: Include, order: Order, dtype: str | np.dtype | None
) -> Layout:
    """The layout of the model's tensors, made once per structure (kept in their memo)."""
    memo_key = ("layout", include, order, None if dtype is None else str(dtype))
    layout = tensors.memo.get(memo_key)
    if layout is None:
        layout = _layout_of(tensors.handles, tensors.framework, include, order, dtype)
        tensors.memo[memo_key] = layout
    return layout


def _shares_memory(vector: np.ndarray, handles: list[TensorHandle]) -> bool:
    if vector.size == 0:
        return False
    low = vector.__array_interface__["data"][0]
    span = (vector.size - 1) * vector.strides[0]
    low, high = min(low, low + span), max(low, low + span) + vector.itemsize
    return any(
        handle.host_bytes is not None and handle.host_bytes[0] < high and low < handle.host_bytes[1]
        for handle in handles
    )


def _sources(vector: np.ndarray, layout: Layout, reject_nonfinite: bool) -> list[np.ndarray]:
    """What to write into each tensor, shaped like it, after checking every value.

    A slice that casts into its tensor without loss is a view of the vector (no copy);
    an integer or narrower float tensor's values are converted as it will hold them.
    """
    spans = layout.memo.get("spans")
    if spans is None:
        spans = layout.memo["spans"] = [
            (entry, entry.offset, entry.offset + entry.size, entry.shape) for entry in layout
        ]
    order = layout.order
    if not reject_nonfinite and _all_exact(layout):  # no value to check, no cast to make
        return [vector[start:stop].reshape(shape, order=order) for _, start, stop, shape in spans]
    return [
        _checked_slice(entry, vector[start:stop], reject_nonfinite).reshape(shape, order=order)
        for entry, start, stop, shape in spans
    ]


def _one_dtype(layout: Layout) -> bool:
    """Whether every tensor has the vector's dtype."""
    same = layout.memo.get("one dtype")
    if same is None:
        same = layout.memo["one dtype"] = all(entry.dtype == layout.dtype for entry in layout)
    return same


def _all_exact(layout: Layout) -> bool:
    exact = layout.memo.get("all exact")
    if exact is None:
        vector_dtype = np.dtype(layout.dtype)
        exact = layout.memo["all exact"] = all(
            _cast_mode(vector_dtype, entry.dtype) == "exact" for entry in layout
        )
    return exact


def checked_vector(vector: Any, layout: Layout) -> np.ndarray:
    """``vector`` as a 1-D array of the layout's length and dtype, or :class:`LayoutError`."""
    _check_is_layout(layout)
    vector = np.asarray(vector)
    if vector.ndim != 1:
        raise LayoutError(f"vector: expected a 1-D array, got shape {vector.shape}")
    if vector.size != layout.size:
        raise LayoutError(
            f"vector: expected {layout.size:,} values for this layout, got {vector.size:,}"
        )
    if vector.dtype != _layout_numpy_dtype(layout):  # str(dtype) would cost 2 us
        raise LayoutError(
            f"vector: expected dtype {layout.dtype}, got {vector.dtype} "
            f"(cast it with vector.astype({layout.dtype!r}) if that is what you mean)"
        )
    return vector


def _layout_numpy_dtype(layout: Layout) -> np.dtype:
    dtype = layout.memo.get("numpy dtype")
    if dtype is None:
        dtype = layout.memo["numpy dtype"] = np.dtype(layout.dtype)
    return dtype


def check_values(vector: np.ndarray, layout: Layout, *, reject_nonfinite: bool = False) -> None:
    """Check every slice of a :func:`checked_vector` against its tensor's dtype.

    Integer and bool tensors must get whole numbers in range (else :class:`LayoutError`).
    Where a float tensor is narrower than the vector, the cast may round (a
    :class:`PrecisionWarning`) or overflow to inf. With ``reject_nonfinite``, NaN, inf and
    such overflows raise :class:`LayoutError`. Only narrowing tensors cost a temporary copy.
    """
    for entry in layout:
        values = vector[entry.offset : entry.offset + entry.size]  # a view
        _checked_slice(entry, values, reject_nonfinite)


def _checked_slice(entry: TensorEntry, values: np.ndarray, reject_nonfinite: bool) -> np.ndarray:
    """Check one tensor's slice; return it as the tensor will hold it (the slice itself,
    not a copy, where the tensor's dtype holds every value of the vector's)."""
    mode = _cast_mode(values.dtype, entry.dtype)
    if mode == "exact":
        if reject_nonfinite:
            _check_finite(entry, values, values)
        return values
    if mode == "integral":
        target = _numpy_dtype(entry.dtype)
        _check_integral(entry, values, target)
        return values.astype(target)
    stored = _as_stored(values, entry.dtype)
    if reject_nonfinite:
        _check_finite(entry, stored, values)
    _warn_if_rounded(entry, values, stored)
    return stored


_CAST_MODES: dict[tuple[np.dtype, str], str] = {}


def _cast_mode(vector_dtype: np.dtype, tensor_dtype: str) -> str:
    """ "integral" (whole numbers in range), "narrowing" (a float that may round) or "exact"."""
    mode = _CAST_MODES.get((vector_dtype, tensor_dtype))
    if mode is None:
        if _numpy_dtype(tensor_dtype).kind in "biu":
            mode = "integral"
        elif _narrows(vector_dtype, tensor_dtype):
            mode = "narrowing"
        else:
            mode = "exact"
        _CAST_MODES[(vector_dtype, tensor_dtype)] = mode
    return mode


def _check_is_layout(layout: Any) -> None:
    if not isinstance(layout, Layout):
        raise TypeError(f"layout: expected a helpers.Layout, got {type(layout).__name__}")


def _check_choice(argument: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{argument} must be one of {allowed}, got {value!r}")


def _numpy_dtype(name: str) -> np.dtype:
    return np.dtype(_WIDENED.get(name, name))


def _vector_dtype(handles: list[TensorHandle], dtype: str | np.dtype | None) -> str:
    if dtype is None:
        floats = [_numpy_dtype(h.dtype) for h in handles if _numpy_dtype(h.dtype).kind == "f"]
        return str(np.result_type(*floats)) if floats else "float64"
    try:
        name = str(np.dtype(dtype))
    except TypeError:
        name = str(dtype)
    if name not in VECTOR_DTYPES:
        hint = " (NumPy has no bfloat16: bfloat16 tensors travel in a float32 vector)"
        raise ValueError(
            f"dtype: the vector must be floating point, one of {VECTOR_DTYPES}, got {dtype!r}"
            + (hint if name == "bfloat16" else "")
        )
    return name


def _layout_of(
    handles: list[TensorHandle],
    framework: str,
    include: Include,
    order: Order,
    dtype: str | np.dtype | None,
) -> Layout:
    vector_dtype = _vector_dtype(handles, dtype)
    specs = [(h.name, tuple(h.shape), h.dtype, h.trainable, h.kind) for h in handles]
    return Layout.from_specs(
        specs, framework=framework, include=include, order=order, dtype=vector_dtype
    )


def _slot(vector: np.ndarray, entry: TensorEntry, order: Order) -> np.ndarray:
    """The entry's part of the vector, as a view shaped like the tensor."""
    return vector[entry.offset : entry.offset + entry.size].reshape(entry.shape, order=order)


def _cut(vector: np.ndarray, layout: Layout) -> dict[str, np.ndarray]:
    """Each tensor's values as it will hold them, in its shape (copies of checked values)."""
    return {
        entry.name: _as_stored(_slot(vector, entry, layout.order), entry.dtype) for entry in layout
    }


def _narrows(vector_dtype: np.dtype, tensor_dtype: str) -> bool:
    """Whether casting the vector's values into the tensor can round or overflow."""
    if tensor_dtype == "bfloat16":  # 8 bits of precision, fewer than any vector dtype
        return True
    return np.dtype(tensor_dtype).itemsize < vector_dtype.itemsize


def _as_stored(values: np.ndarray, tensor_dtype: str) -> np.ndarray:
    """A copy of ``values`` as the tensor will hold them (bfloat16 emulated in float32)."""
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by name
        stored = values.astype(_numpy_dtype(tensor_dtype))
    return _round_to_bfloat16(stored) if tensor_dtype == "bfloat16" else stored


def _round_to_bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to bfloat16 (nearest, ties to even), as torch casts them."""
    bits = values.view(np.uint32)
    # Adding 0x7FFF plus the lowest kept bit, then dropping 16 bits, rounds to even;
    # a carry out of the mantissa moves the exponent, and past the largest one gives inf.
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return np.where(np.isnan(values), values, rounded.view(np.float32))


def _integer_range(target: np.dtype, float_dtype: np.dtype) -> tuple[float, float]:
    """The half-open range [low, high) of floats that fit an integer dtype, exactly.

    Both ends are powers of two (or 0), so they are exact in every float dtype; the
    largest int64 itself is not (float64(2**63 - 1) == 2**63), hence the open top.
    """
    if target.kind == "b":
        low, high = 0, 2
    else:
        low, high = int(np.iinfo(target).min), int(np.iinfo(target).max) + 1
    biggest = float(np.finfo(float_dtype).max)
    return (float(low) if -low <= biggest else -np.inf, float(high) if high <= biggest else np.inf)


def _check_integral(entry: TensorEntry, values: np.ndarray, target: np.dtype) -> None:
    low, high = _integer_range(target, values.dtype)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values != np.trunc(values)) | (values < low)
        bad |= values >= high
    if bad.any():
        position = int(np.argmax(bad))
        raise LayoutError(
            f"tensor {entry.name!r}: expected whole numbers that fit {entry.dtype}, "
            f"got {values[position]} (at position {position} of the tensor)"
        )


def _check_finite(entry: TensorEntry, stored: np.ndarray, values: np.ndarray) -> None:
    bad = ~np.isfinite(stored)
    if bad.any():
        overflowed = int(np.count_nonzero(bad & np.isfinite(values)))
        raise LayoutError(
            f"tensor {entry.name!r}: expected finite values, got {int(bad.sum())} NaN/inf"
            + (f" ({overflowed} finite values overflow {entry.dtype})" if overflowed else "")
        )


def _warn_if_rounded(entry: TensorEntry, values: np.ndarray, stored: np.ndarray) -> None:
    lost = (stored != values) & ~(np.isnan(stored) & np.isnan(values))
    if lost.any():
        overflowed = int(np.count_nonzero(lost & np.isinf(stored)))
        warnings.warn(
            f"tensor {entry.name!r}: {int(lost.sum())} values rounded when cast "
            f"from {values.dtype} to {entry.dtype}"
            + (f", {overflowed} of them to inf" if overflowed else ""),
            PrecisionWarning,
            stacklevel=4,
        )


def _warn_if_the_vector_changed(entry: TensorEntry, slot: np.ndarray, values: np.ndarray) -> None:
    """After flatten's copy: did the vector keep every value of the tensor?

    Integers must survive exactly. A float tensor wider than a ``dtype`` asked for
    rounds by request; only a finite value turned into inf is reported.
    """
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        low, high = _integer_range(values.dtype, slot.dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            lost = (slot < low) | (slot >= high)
            lost |= slot.astype(values.dtype) != values  # exact, in the integers
        problem = "do not fit a {vector} vector exactly ({count} changed); " + (
            "a float64 vector holds whole numbers exactly only up to 2**53"
            if slot.dtype == np.float64
            else "pass dtype='float64' to keep them"
        )
    elif values.dtype.kind == "f" and values.dtype.itemsize > slot.dtype.itemsize:
        lost = np.isinf(slot) & np.isfinite(values)
        problem = "overflow a {vector} vector ({count} became inf); pass a wider dtype"
    else:  # bool, or a float no wider than the vector: always exact
        return
    if lost.any():
        message = problem.format(vector=slot.dtype, count=int(np.count_nonzero(lost)))
        warnings.warn(
            f"tensor {entry.name!r}: {entry.dtype} values {message}",
            PrecisionWarning,
            stacklevel=3,
        )


def _explain_mismatch(expected: Layout, got: Layout) -> str:
    """Say, for the first tensor that differs, what the model has and what the layout has."""
    intro = "the layout does not fit this model"
    if expected.framework != got.framework:
        return f"{intro}: it is for a {got.framework} model, this is a {expected.framework} model"
    for index, (model_entry, layout_entry) in enumerate(zip(expected, got, strict=False)):
        for field in ("shape", "dtype", "trainable"):
            want, have = getattr(model_entry, field), getattr(layout_entry, field)
            if want != have:
                return (
                    f"{intro}: tensor #{index} {model_entry.name!r}: "
                    f"expected {field} {want}, got {have} in the layout"
                )
    return (
        f"{intro}: expected {len(expected)} tensors ({expected.size:,} values), "
        f"got {len(got)} ({got.size:,} values) in the layout"
    )
