"""Keras 3: ``model.weights`` order, which is also ``model.get_weights()`` order.

Each layer lists its trainable variables first, then its non-trainable ones (for
``BatchNormalization``: ``gamma``, ``beta``, then ``moving_mean``, ``moving_variance``);
layers follow in the order they were added. ``include="trainable"`` keeps the variables
whose ``trainable`` flag is set, in that same relative order; a layer frozen with
``layer.trainable = False`` clears the flag on its variables. Random-seed state
(``Dropout``'s seed generator) and metric state are not weights and never appear.

Variables keep their own dtype: a ``mixed_float16`` layer holds float32 variables (it
only computes in float16); a ``dtype="float16"`` layer holds float16 ones. Writing goes
through ``Variable.assign``, which works the same on the TensorFlow, JAX and PyTorch
backends and keeps the variable object.

Each tensor's kind comes from the variable's own name, the one Keras's layers give it
(and its ``kernel_regularizer`` relies on): ``kernel``, ``recurrent_kernel``,
``depthwise_kernel``, ``pointwise_kernel`` and ``embeddings`` are weights, ``bias`` a bias,
a normalisation layer's ``gamma`` and ``beta`` its scale and shift, ``moving_mean`` and
``moving_variance`` statistics; any other name is ``"unknown"``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from helpers._layout import TENSOR_DTYPES, Include, LayoutError
from helpers.adapters import TensorHandle

_KINDS = {
    "kernel": "weight",
    "recurrent_kernel": "weight",
    "depthwise_kernel": "weight",
    "pointwise_kernel": "weight",
    "embeddings": "weight",
    "bias": "bias",
    "gamma": "scale",
    "beta": "shift",
    "moving_mean": "statistic",
    "moving_variance": "statistic",
}


def handles(model: Any, include: Include) -> list[TensorHandle]:
    """Every Keras variable of the model (trainable ones only, or all), as handles."""
    if not getattr(model, "built", False):
        raise LayoutError(
            f"Keras model {model.name!r} is not built, so it has no weights yet: build it "
            "first (keras.Input(shape) as its first layer, model.build(input_shape), or "
            "call it on a batch)"
        )
    if not model.weights:
        raise LayoutError(f"Keras model {model.name!r} is built but has no weights to flatten")
    variables = [v for v in model.weights if include == "all" or v.trainable]
    for variable in variables:
        if str(variable.dtype) not in TENSOR_DTYPES:
            raise TypeError(
                f"tensor {variable.path!r}: dtype {variable.dtype} cannot travel in a "
                "real-valued vector (expected a float, integer or bool dtype)"
            )
    return [
        _handle(name, variable)
        for name, variable in zip(_unique_names(variables), variables, strict=True)
    ]


def _unique_names(variables: list[keras.Variable]) -> list[str]:
    """Variable paths, with ``#2``, ``#3``... added to repeats.

    Paths come from layer names, which need not be unique in a subclassed model
    (two layers both named ``"dense"`` give two ``.../dense/kernel``).
    """
    seen: dict[str, int] = {}
    names = []
    for variable in variables:
        path = variable.path
        seen[path] = seen.get(path, 0) + 1
        names.append(path if seen[path] == 1 else f"{path}#{seen[path]}")
    return names


def _handle(name: str, variable: keras.Variable) -> TensorHandle:
    shape = tuple(variable.shape)

    def write(values: np.ndarray) -> None:
        values = np.asarray(values)
        if values.shape != shape:  # never let a write broadcast or reshape
            raise LayoutError(f"tensor {name!r}: expected shape {shape}, got {values.shape}")
        variable.assign(values)  # casts to the variable's dtype (e.g. float32 -> bfloat16)

    return TensorHandle(
        name=name,
        shape=shape,
        dtype=str(variable.dtype),
        trainable=bool(variable.trainable),
        read=lambda: _read(variable),
        write=write,
        kind=_KINDS.get(variable.name, "unknown"),
    )


def _read(variable: keras.Variable) -> np.ndarray:
    # Straight to NumPy where the backend allows: keras.ops.convert_to_numpy goes through
    # np.array(tensor), which NumPy 2 answers with a DeprecationWarning about __array__.
    value = variable.value
    backend = keras.backend.backend()
    if backend == "tensorflow" and hasattr(value, "numpy"):
        return value.numpy()
    if backend == "torch" and hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(value)
