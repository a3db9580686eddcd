"""Weights as a vector: get all of a model's weights as one vector, and put a vector back.

>>> import numpy as np, helpers
>>> vector, layout = helpers.flatten({"kernel": np.ones((2, 3)), "bias": np.zeros(3)})
>>> vector.size
9

The public API fits on one screen:

- ``flatten(model, include="trainable", order="C")`` → ``(vector, layout)``
- ``unflatten(vector, layout)`` → ``{name: array}`` with the original shapes
- ``restore(model, vector, layout)`` writes the vector back into the model, in place
- ``save(path, vector, layout)`` / ``load(path, model=None)``: ``.npz`` or ``.safetensors``
- ``transfer(source_model, target_model)`` copies weights Keras <-> PyTorch, nnet <-> PyTorch
- ``Layout`` (with ``to_json`` / ``from_json`` and ``fingerprint``), ``LayoutError``
- ``helpers.data.load_mnist()`` and ``helpers.nnet`` (R's nnet, ported)

Keras, PyTorch and scikit-learn are imported only when a model of theirs is passed in.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from helpers._core import PrecisionWarning, flatten, restore, unflatten
from helpers._io import load, save
from helpers._layout import Layout, LayoutError, TensorEntry
from helpers._transfer import transfer

__all__ = [
    "Layout",
    "LayoutError",
    "PrecisionWarning",
    "TensorEntry",
    "data",
    "flatten",
    "load",
    "nnet",
    "restore",
    "save",
    "transfer",
    "unflatten",
]


def __getattr__(name: str) -> ModuleType:
    # helpers.data and helpers.nnet load on first use, like the framework adapters.
    if name in ("data", "nnet"):
        return importlib.import_module(f"helpers.{name}")
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")
