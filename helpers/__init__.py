"""Weights as a vector: get all of a model's weights as one vector, and put a vector back.

>>> import numpy as np, helpers
>>> vector, layout = helpers.flatten({"kernel": np.ones((2, 3)), "bias": np.zeros(3)})
>>> vector.size
9

The public API fits on one screen:

- ``flatten(model, include="trainable", order="C")`` → ``(vector, layout)``
- ``unflatten(vector, layout)`` → ``{name: array}`` with the original shapes
- ``restore(model, vector, layout, atomic=True)`` writes the vector back into the model,
  in place, all or nothing (about one copy of the model's bytes; see its docstring)
- ``save(path, vector, layout)`` or ``save(path, model=model)`` (streamed, tensor by tensor)
  / ``load(path, model=None, mmap=False)`` (``mmap=True`` maps the vector read-only from
  the file): ``.npz`` or ``.safetensors``
- ``transfer(source_model, target_model)`` copies weights Keras <-> PyTorch, nnet <-> PyTorch
- ``functional(model, layout)`` → ``f(vector, inputs)``: the model evaluated at a vector (or a
  population of vectors, one per row) without writing into it; differentiable in PyTorch
- ``flat_view(torch_model)`` → a :class:`FlatView` whose ``.vector`` *is* the weights
  (zero-copy: parameters become views into one buffer), with ``.layout``, ``.grad``, ``undo()``
- ``Layout`` (with ``to_json`` / ``from_json`` and ``fingerprint``), ``LayoutError``;
  each ``TensorEntry`` has a ``kind``: weight, bias, scale, shift, statistic, ...;
  ``PrecisionWarning`` says which tensor a cast rounded
- ``select(layout, kind=..., name=..., trainable=...)`` → a boolean mask over the vector
- ``views(vector, layout)`` → ``{name: view}`` shaped like the tensors (writes go through)
- ``norms(vector, layout, mask=None)`` → ``{name: norm}``
- ``hold_mask(model, mask, layout, optimizer)`` keeps a torch model's masked weights at zero
- ``helpers.data.load_mnist()`` (the bundled digits, or a file) and ``download_mnist(dir)``
  (Keras' full set, checked by sha256)
- ``helpers.nnet`` (R's nnet, ported; ``fit.criterion(x, y)`` and ``vmmin``, R's BFGS, for
  optimising its weight vector by other means)
- ``helpers.plots``: the lessons' figures (weight images, order walks, networks, gate blocks,
  layout strips, histograms, curves, landscapes, tables, shard rows); matplotlib loads when
  one draws
- ``python -m helpers inspect FILE`` / ``diff A B``: the tensors of a weight file
  (.safetensors, .pt, .keras, .npz), or where two differ, without running code from them

Keras, PyTorch and scikit-learn are imported only when a model of theirs is passed in.
"""

from __future__ import annotations

import importlib
from typing import Any

from helpers._core import PrecisionWarning, flatten, restore, unflatten
from helpers._functional import functional
from helpers._io import load, save
from helpers._layout import Layout, LayoutError, TensorEntry
from helpers._masks import hold_mask, norms, select, views
from helpers._transfer import transfer

__all__ = [
    "FlatView",
    "Layout",
    "LayoutError",
    "PrecisionWarning",
    "TensorEntry",
    "data",
    "flat_view",
    "flatten",
    "functional",
    "hold_mask",
    "load",
    "nnet",
    "norms",
    "plots",
    "restore",
    "save",
    "select",
    "transfer",
    "unflatten",
    "views",
]


def __getattr__(name: str) -> Any:
    # helpers.data, .nnet and .plots load on first use, like the framework adapters;
    # so does flat_view, which needs torch.
    if name in ("data", "nnet", "plots"):
        return importlib.import_module(f"helpers.{name}")
    if name in ("flat_view", "FlatView"):
        return getattr(importlib.import_module("helpers._flat_view"), name)
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")
