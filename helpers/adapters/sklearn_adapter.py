"""scikit-learn's MLPClassifier / MLPRegressor: ``coefs_[i]`` then ``intercepts_[i]``."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.neural_network._multilayer_perceptron import BaseMultilayerPerceptron

from helpers._layout import Include, LayoutError
from helpers.adapters import TensorHandle, check_writable_array


def handles(model: Any, include: Include) -> list[TensorHandle]:
    """Each layer's kernel (``coefs_[i]``, inputs × units) then its bias (``intercepts_[i]``).

    All of them are trainable, so ``include`` makes no difference here. The optimiser's
    state (Adam's moments, SGD's velocities) is not a weight and is left out.
    """
    if not isinstance(model, BaseMultilayerPerceptron):
        raise TypeError(
            f"{type(model).__name__}: expected an MLPClassifier or MLPRegressor "
            "(the only scikit-learn estimators with coefs_ and intercepts_)"
        )
    if not hasattr(model, "coefs_"):
        raise LayoutError(f"{type(model).__name__} has no weights yet: call fit() first")
    result = []
    for layer, (kernel, bias) in enumerate(zip(model.coefs_, model.intercepts_, strict=True)):
        result.append(_handle(f"coefs_[{layer}]", kernel, "weight"))
        result.append(_handle(f"intercepts_[{layer}]", bias, "bias"))
    return result


def _handle(name: str, array: np.ndarray, kind: str) -> TensorHandle:
    def write(values: np.ndarray) -> None:
        values = np.asarray(values)
        if values.shape != array.shape:  # np.copyto would broadcast; never let it
            raise LayoutError(f"{name}: expected shape {array.shape}, got {values.shape}")
        check_writable_array(name, array)
        np.copyto(array, values)  # in place: the model keeps the same array objects

    return TensorHandle(
        name=name,
        shape=array.shape,
        dtype=str(array.dtype),
        trainable=True,
        read=lambda: array,
        write=write,
        kind=kind,
    )
