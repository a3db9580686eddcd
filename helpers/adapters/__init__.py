"""One adapter per framework, each imported only when a model of its kind turns up.

An adapter turns a model into a list of :class:`TensorHandle` objects: a name, the
tensor's shape and dtype, and two callables that read it as a NumPy array and write a
NumPy array back in place. The core in ``helpers._core`` does everything else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.array_utils import byte_bounds

from helpers._layout import TENSOR_DTYPES, Include, LayoutError


@dataclass(frozen=True)
class TensorHandle:
    """A framework tensor seen through NumPy: read it, or write an array into it.

    ``kind`` is what the tensor is for (one of ``helpers._layout.KINDS``), as far as the
    adapter can tell; ``"unknown"`` when it cannot.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool
    read: Callable[[], np.ndarray]
    write: Callable[[np.ndarray], None]
    kind: str = "unknown"


def write_all(plan: list[tuple[TensorHandle, np.ndarray]]) -> None:
    """Write each array through its handle; if a write fails, put back all that were touched.

    Every array's shape is checked against its handle before anything is written (a write
    must never broadcast or reshape): this is the one shape check of every writer.

    >>> weights = {"bias": np.zeros(2)}
    >>> write_all([(handles_for(weights, "all")[1][0], np.ones(2))])
    >>> weights["bias"].tolist()
    [1.0, 1.0]
    """
    for handle, array in plan:
        if np.shape(array) != tuple(handle.shape):
            raise LayoutError(
                f"tensor {handle.name!r}: expected shape {tuple(handle.shape)}, "
                f"got {np.shape(array)}"
            )
    backups = [np.array(handle.read(), copy=True) for handle, _ in plan]
    touched = 0
    try:
        for handle, array in plan:
            touched += 1
            handle.write(array)
    except BaseException:
        for (handle, _), backup in zip(plan[:touched], backups, strict=False):
            handle.write(backup)
        raise


# (framework name, module prefix of a base class, adapter module)
_ADAPTERS = [
    ("keras", "keras", "helpers.adapters.keras_adapter"),
    ("torch", "torch.nn", "helpers.adapters.torch_adapter"),
    ("sklearn", "sklearn.neural_network", "helpers.adapters.sklearn_adapter"),
    ("nnet", "helpers.nnet", "helpers.adapters.nnet_adapter"),
]


def framework_of(model: Any) -> str:
    """Name the framework a model belongs to, without importing any framework.

    >>> framework_of({"kernel": np.zeros((2, 3))})
    'numpy'
    """
    if isinstance(model, Mapping):
        return "numpy"
    modules = [cls.__module__ for cls in type(model).__mro__]
    for framework, prefix, _ in _ADAPTERS:
        if any(module == prefix or module.startswith(prefix + ".") for module in modules):
            return framework
    raise TypeError(
        f"no adapter for {type(model).__module__}.{type(model).__qualname__}; expected a Keras "
        "model, a torch.nn.Module, a scikit-learn MLP, a helpers.nnet fit, or a dict of arrays"
    )


def handles_for(model: Any, include: Include) -> tuple[str, list[TensorHandle]]:
    """Return the model's framework name and its tensors as handles, in vector order."""
    framework = framework_of(model)
    if framework == "numpy":
        return framework, _array_handles(model)
    module_name = next(module for name, _, module in _ADAPTERS if name == framework)
    adapter = importlib.import_module(module_name)
    return framework, adapter.handles(model, include)


def _array_handles(arrays: Mapping[str, np.ndarray]) -> list[TensorHandle]:
    """A dict of NumPy arrays is the simplest model: every array is trainable.

    Their kinds are ``"unknown"``: a name is the caller's choice, and guessing from it
    ("kernel", "w", "beta"?) could be wrong in silence; select a dict's tensors by name.

    The same array under two names is one tensor, kept under its first name (like tied
    weights in torch); two different arrays that share memory (overlapping views) are
    refused, since writing one would change the other.
    """
    handles, seen = [], set()
    for name, array in arrays.items():
        if not isinstance(name, str):
            raise TypeError(
                f"{name!r}: expected str names for the arrays, got {type(name).__name__}"
            )
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name!r}: expected a numpy.ndarray, got {type(array).__name__}")
        if str(array.dtype) not in TENSOR_DTYPES:
            raise TypeError(
                f"tensor {name!r}: dtype {array.dtype} cannot travel in a real-valued vector "
                "(expected a float, integer or bool dtype)"
            )
        if id(array) in seen:
            continue
        seen.add(id(array))
        handles.append(
            TensorHandle(
                name=name,
                shape=array.shape,
                dtype=str(array.dtype),
                trainable=True,
                read=lambda array=array: array,
                write=lambda values, name=name, array=array: _write_array(name, array, values),
            )
        )
    regions = [(h.name, *byte_bounds(arrays[h.name]), arrays[h.name]) for h in handles]
    check_no_shared_memory(regions, arrays_share_memory)
    return handles


def _write_array(name: str, array: np.ndarray, values: np.ndarray) -> None:
    check_writable_array(name, array)
    np.copyto(array, values)


def check_writable_array(name: str, array: np.ndarray) -> None:
    """Refuse, naming the tensor, a NumPy array that cannot take values in place."""
    if not array.flags.writeable:
        raise LayoutError(
            f"tensor {name!r}: the array is read-only (flags.writeable is False), "
            "so it cannot be restored in place"
        )
    if may_overlap_itself(array.shape, array.strides, array.itemsize):
        raise LayoutError(
            f"tensor {name!r}: several elements share one memory location (strides "
            f"{array.strides}, e.g. a broadcast view); give it its own memory with .copy()"
        )


def may_overlap_itself(shape: tuple[int, ...], strides: tuple[int, ...], itemsize: int) -> bool:
    """Whether two elements of a strided tensor may sit at one address (stride 0, say).

    ``strides`` and ``itemsize`` in one unit (bytes for NumPy, elements for torch with
    ``itemsize=1``). Each stride, smallest first, must step past all that the smaller
    dimensions span; that is sufficient for no overlap, and true of every ordinary tensor.

    >>> may_overlap_itself((2, 3), (24, 8), 8), may_overlap_itself((2, 3), (0, 8), 8)
    (False, True)
    """
    if 0 in shape:
        return False
    reach = itemsize
    for stride, size in sorted(
        (abs(st), size) for size, st in zip(shape, strides, strict=True) if size > 1
    ):
        if stride < reach:
            return True
        reach += stride * (size - 1)
    return False


def check_no_shared_memory(
    regions: list[tuple[str, int, int, Any]], share: Callable[[Any, Any], bool]
) -> None:
    """Refuse two distinct tensors whose memory overlaps: writing one would change the other.

    ``regions`` holds ``(name, first byte, byte past the end, tensor)``; only pairs whose
    byte ranges overlap are passed to ``share`` for an exact answer, so the cost is a
    sort, not a comparison of every pair.
    """
    open_regions: list[tuple[int, int, Any]] = []  # (end, index, tensor) of earlier ranges
    by_start = sorted(range(len(regions)), key=lambda index: regions[index][1])
    for index in by_start:
        _, start, stop, tensor = regions[index]
        if stop <= start:
            continue  # no elements, no memory
        open_regions = [region for region in open_regions if region[0] > start]
        for _, other_index, other in open_regions:
            if share(other, tensor):
                first, second = sorted((index, other_index))
                raise LayoutError(
                    f"tensors {regions[first][0]!r} and {regions[second][0]!r} share memory but "
                    "are different tensors (overlapping views), so one vector cannot hold both: "
                    "give each its own memory (.copy() / .clone()), or use one tensor for both"
                )
        open_regions.append((stop, index, tensor))


def arrays_share_memory(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two arrays have an element in common (exact, within a bounded effort)."""
    try:
        return bool(np.shares_memory(first, second, max_work=10_000))
    except np.exceptions.TooHardError:
        return True  # cannot rule it out: refuse rather than risk a silent overwrite
