"""flatten, unflatten, restore: the whole idea, for any framework with an adapter."""

from __future__ import annotations

import warnings
from typing import Any, get_args

import numpy as np

from helpers._layout import Include, Layout, LayoutError, Order, TensorEntry
from helpers.adapters import TensorHandle, handles_for, write_all

# NumPy has no bfloat16; a bfloat16 tensor travels in the vector as float32.
_WIDENED = {"bfloat16": "float32"}


class PrecisionWarning(UserWarning):
    """A value did not survive a cast between its tensor's dtype and the vector's exactly.

    ``restore`` warns when a slice is narrowed back to float16/bfloat16 and rounds;
    ``flatten`` when an integer tensor holds a value the float vector cannot represent.
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
    column, as R's ``as.vector`` does. The vector's dtype is ``dtype`` if given, else
    the widest floating dtype among the tensors. Integer tensors (such as batch-norm's
    ``num_batches_tracked``) are stored as floats too; a :class:`PrecisionWarning` says
    so if one holds a value the vector's dtype cannot represent exactly (above 2**24
    for float32): pass ``dtype="float64"`` then.

    >>> vector, layout = flatten({"kernel": np.ones((2, 3)), "bias": np.zeros(3)})
    >>> vector.shape, layout.names
    ((9,), ['kernel', 'bias'])
    """
    _check_choice("include", include, Include)
    _check_choice("order", order, Order)
    framework, handles = handles_for(model, include)
    layout = _layout_of(handles, framework, include, order, dtype)
    vector = np.empty(layout.size, dtype=layout.dtype)
    for handle, entry in zip(handles, layout, strict=True):
        # One copy per tensor, straight into its slot (the slot is a view of the vector).
        slot, values = _slot(vector, entry, order), handle.read()
        np.copyto(slot, values, casting="unsafe")
        if np.dtype(values.dtype).kind in "iu" and not np.array_equal(slot, values):
            warnings.warn(
                f"tensor {entry.name!r}: {entry.dtype} values do not fit a {vector.dtype} "
                "vector exactly; pass dtype='float64' to keep them",
                PrecisionWarning,
                stacklevel=2,
            )
    return vector, layout


def unflatten(vector: np.ndarray, layout: Layout) -> dict[str, np.ndarray]:
    """Cut a vector back into named arrays of their original shapes and dtypes.

    The arrays are copies: changing them leaves the vector alone.

    >>> vector, layout = flatten({"kernel": np.arange(6.0).reshape(2, 3)})
    >>> unflatten(vector, layout)["kernel"].shape
    (2, 3)
    """
    vector = _checked_vector(vector, layout)
    return {
        entry.name: _slot(vector, entry, layout.order).astype(_numpy_dtype(entry.dtype))
        for entry in layout
    }


def restore(
    model: Any, vector: np.ndarray, layout: Layout, *, reject_nonfinite: bool = False
) -> None:
    """Write a vector back into a model, in place, after checking that it fits.

    Everything is validated before anything is written: the vector's length and dtype,
    and the layout's fingerprint against the model (every tensor's shape, dtype and
    trainability, in order; names are labels and may differ). Any mismatch raises
    :class:`LayoutError` naming the tensor and leaves the model exactly as it was; so
    does a failure part-way through writing. ``reject_nonfinite=True`` also refuses
    NaN and infinity.

    >>> weights = {"kernel": np.ones((2, 3))}
    >>> vector, layout = flatten(weights)
    >>> restore(weights, vector * 0, layout)
    >>> float(weights["kernel"].sum())
    0.0
    """
    handles = check_fits(model, layout)
    vector = _checked_vector(vector, layout)
    if reject_nonfinite:
        _check_finite(vector, layout)
    _check_lossless(vector, layout)
    arrays = unflatten(vector, layout)
    _write_all(handles, arrays)


def check_fits(model: Any, layout: Layout) -> list[TensorHandle]:
    """Raise :class:`LayoutError` unless ``layout`` describes ``model``; return its tensors."""
    framework, handles = handles_for(model, layout.include)
    expected = _layout_of(handles, framework, layout.include, layout.order, layout.dtype)
    if expected.fingerprint != layout.fingerprint:
        raise LayoutError(_explain_mismatch(expected, layout))
    return handles


def _check_choice(argument: str, value: str, allowed: Any) -> None:
    if value not in get_args(allowed):
        raise ValueError(f"{argument} must be one of {get_args(allowed)}, got {value!r}")


def _numpy_dtype(name: str) -> np.dtype:
    return np.dtype(_WIDENED.get(name, name))


def _vector_dtype(handles: list[TensorHandle]) -> np.dtype:
    floats = [_numpy_dtype(h.dtype) for h in handles if _numpy_dtype(h.dtype).kind == "f"]
    return np.result_type(*floats) if floats else np.dtype("float64")


def _layout_of(
    handles: list[TensorHandle],
    framework: str,
    include: Include,
    order: Order,
    dtype: str | np.dtype | None,
) -> Layout:
    vector_dtype = np.dtype(dtype) if dtype is not None else _vector_dtype(handles)
    if vector_dtype.kind != "f":
        raise ValueError(f"dtype: the vector must be floating point, got {vector_dtype}")
    specs = [(h.name, tuple(h.shape), h.dtype, h.trainable) for h in handles]
    return Layout.from_specs(
        specs, framework=framework, include=include, order=order, dtype=str(vector_dtype)
    )


def _slot(vector: np.ndarray, entry: TensorEntry, order: Order) -> np.ndarray:
    """The entry's part of the vector, as a view shaped like the tensor."""
    return vector[entry.offset : entry.offset + entry.size].reshape(entry.shape, order=order)


def _checked_vector(vector: np.ndarray, layout: Layout) -> np.ndarray:
    vector = np.asarray(vector)
    if vector.ndim != 1:
        raise LayoutError(f"vector: expected a 1-D array, got shape {vector.shape}")
    if vector.size != layout.size:
        raise LayoutError(
            f"vector: expected {layout.size:,} values for this layout, got {vector.size:,}"
        )
    if str(vector.dtype) != layout.dtype:
        raise LayoutError(
            f"vector: expected dtype {layout.dtype}, got {vector.dtype} "
            f"(cast it with vector.astype({layout.dtype!r}) if that is what you mean)"
        )
    return vector


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


def _check_finite(vector: np.ndarray, layout: Layout) -> None:
    for entry in layout:
        bad = ~np.isfinite(vector[entry.offset : entry.offset + entry.size])
        if bad.any():
            raise LayoutError(
                f"tensor {entry.name!r}: expected finite values, got {int(bad.sum())} NaN/inf"
            )


def _check_lossless(vector: np.ndarray, layout: Layout) -> None:
    """Integer tensors must get integers back; narrower floats only warn."""
    for entry in layout:
        values = vector[entry.offset : entry.offset + entry.size]
        target = _numpy_dtype(entry.dtype)
        if target.kind in "iub":
            _check_integral(entry, values, target)
        elif target.itemsize < values.dtype.itemsize or entry.dtype == "bfloat16":
            back = values.astype(target).astype(values.dtype)
            lost = (back != values) & ~(np.isnan(back) & np.isnan(values))
            if entry.dtype == "bfloat16":  # float32 with only the top 16 bits kept
                lost |= (back.astype(np.float32).view(np.uint32) & 0xFFFF != 0) & ~np.isnan(back)
            if lost.any():
                warnings.warn(
                    f"tensor {entry.name!r}: {int(lost.sum())} values rounded when cast "
                    f"from {values.dtype} to {entry.dtype}",
                    PrecisionWarning,
                    stacklevel=3,
                )


def _check_integral(entry: TensorEntry, values: np.ndarray, target: np.dtype) -> None:
    low, high = (0, 1) if target.kind == "b" else (np.iinfo(target).min, np.iinfo(target).max)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values != np.round(values)) | (values < low) | (values > high)
    if bad.any():
        raise LayoutError(
            f"tensor {entry.name!r}: expected whole numbers that fit {entry.dtype}, "
            f"got {values[bad][0]} (at position {int(np.argmax(bad))} of the tensor)"
        )


def _write_all(handles: list[TensorHandle], arrays: dict[str, np.ndarray]) -> None:
    # By position, not by name: names are labels (a Keras twin has other layer names).
    write_all(list(zip(handles, arrays.values(), strict=True)))
