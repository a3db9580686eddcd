"""scikit-learn's MLPClassifier / MLPRegressor: ``coefs_[i]`` then ``intercepts_[i]``."""

from __future__ import annotations

from typing import Any

import numpy as np

from helpers._layout import Include, LayoutError
from helpers.adapters import TensorHandle


def handles(model: Any, include: Include) -> list[TensorHandle]:
    """Each layer's kernel (``coefs_[i]``, inputs × units) then its bias (``intercepts_[i]``).

    All of them are trainable, so ``include`` makes no difference here.
    """
    if not hasattr(model, "coefs_"):
        raise LayoutError(f"{type(model).__name__} has no weights yet: call fit() first")
    result = []
    for layer, (kernel, bias) in enumerate(zip(model.coefs_, model.intercepts_, strict=True)):
        result.append(_handle(f"coefs_[{layer}]", kernel))
        result.append(_handle(f"intercepts_[{layer}]", bias))
    return result


def _handle(name: str, array: np.ndarray) -> TensorHandle:
    return TensorHandle(
        name=name,
        shape=array.shape,
        dtype=str(array.dtype),
        trainable=True,
        read=lambda: array,
        write=lambda values: np.copyto(array, values),
    )
