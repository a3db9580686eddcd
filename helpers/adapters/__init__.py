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

from helpers._layout import Include


@dataclass(frozen=True)
class TensorHandle:
    """A framework tensor seen through NumPy: read it, or write an array into it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool
    read: Callable[[], np.ndarray]
    write: Callable[[np.ndarray], None]


def write_all(plan: list[tuple[TensorHandle, np.ndarray]]) -> None:
    """Write each array through its handle; if a write fails, put back all that were touched.

    >>> weights = {"bias": np.zeros(2)}
    >>> write_all([(handles_for(weights, "all")[1][0], np.ones(2))])
    >>> weights["bias"].tolist()
    [1.0, 1.0]
    """
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
    """A dict of NumPy arrays is the simplest model: every array is trainable."""
    handles = []
    for name, array in arrays.items():
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name!r}: expected a numpy.ndarray, got {type(array).__name__}")
        handles.append(
            TensorHandle(
                name=name,
                shape=array.shape,
                dtype=str(array.dtype),
                trainable=True,
                read=lambda array=array: array,
                write=lambda values, array=array: np.copyto(array, values),
            )
        )
    return handles
