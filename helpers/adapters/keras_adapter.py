"""Keras 3: ``model.weights`` order, which is also ``model.get_weights()`` order."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from helpers._layout import Include, LayoutError
from helpers.adapters import TensorHandle


def handles(model: Any, include: Include) -> list[TensorHandle]:
    """Every Keras variable of the model (trainable ones only, or all), as handles."""
    if not getattr(model, "built", False) or not model.weights:
        raise LayoutError(
            f"Keras model {model.name!r} has no weights yet: build it first "
            "(model.build(input_shape), or call it on a batch)"
        )
    variables = [v for v in model.weights if include == "all" or v.trainable]
    return [_handle(variable) for variable in variables]


def _handle(variable: keras.Variable) -> TensorHandle:
    def write(values: np.ndarray) -> None:
        variable.assign(values)

    return TensorHandle(
        name=variable.path,
        shape=tuple(variable.shape),
        dtype=str(variable.dtype),
        trainable=bool(variable.trainable),
        read=lambda: keras.ops.convert_to_numpy(variable.value),
        write=write,
    )
