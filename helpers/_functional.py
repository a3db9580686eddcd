"""functional: a model as a function of its weight vector, never written into the model.

``f = functional(model, layout)`` checks once that the layout describes the model, as
:func:`~helpers.restore` does (:func:`~helpers._core.check_fits`). ``f(vector, inputs)``
then evaluates the model as if the vector had been restored into it, and leaves the model
and the vector as they were. A 2-D ``vector`` is a population, one member per row.

Each framework evaluates in its own way: PyTorch through ``torch.func.functional_call`` on
views of the vector (a population through ``torch.func.vmap``, in one call); Keras through
``model.stateless_call``; scikit-learn's MLP, ``nnet`` and a dict of arrays through a NumPy
forward pass. Keras and the NumPy models evaluate a population member by member.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from helpers._core import _numpy_dtype, _slot, check_fits, check_values, checked_vector
from helpers._layout import Layout, LayoutError
from helpers.adapters import TensorHandle

Forward = Callable[[dict[str, np.ndarray], Any], Any]


def functional(model: Any, layout: Layout, *, forward: Forward | None = None) -> VectorFunction:
    """The model as a function ``f(vector, inputs) -> outputs`` that never changes the model.

    ``f`` computes what the model would compute after ``restore(model, vector, layout)``,
    without writing anything. The layout is checked against the model here, once (length,
    dtype, fingerprint: as :func:`restore` checks it); each call checks only the vector's
    shape and dtype, and the values of integer tensors (whole numbers) and of tensors
    narrower than the vector (a :class:`PrecisionWarning` where they round).

    ``vector`` is one vector of ``layout.size`` values, or a population of shape
    ``(population, layout.size)``, one member per row: outputs then gain a leading
    population axis. What the layout does not cover (buffers under ``include="trainable"``,
    frozen weights) comes from the model, as it is at the time of the call.

    - **PyTorch** (``torch.func.functional_call``): the tensors are views of the vector, cut
      without copying (cast only where a tensor's dtype differs from the vector's). A NumPy
      vector gives NumPy outputs, computed without autograd; a torch tensor gives torch
      outputs, differentiable with respect to the vector: ``torch.func.grad`` of a loss, or
      ``.backward()``, gives the gradient as a vector in the layout's order. A population is
      evaluated in one call with ``torch.func.vmap`` (a forward pass whose Python control
      flow depends on tensor values cannot be vmapped: evaluate its members one by one).
      The module's training mode is used as it is: in training mode each member draws its
      own random numbers (dropout), as separate calls would (``randomness="different"``); a
      batch-norm (or instance-norm) layer that tracks running statistics is refused in
      training mode, since its forward pass would write them in place (into the model, or
      into the vector): call ``model.eval()`` first, and it uses its running statistics. A
      custom forward pass that writes into a tensor in place (``self.count += 1``) is
      reported by a ``ValueError`` naming the tensor; the write has happened by then.
      Integer buffers such as ``num_batches_tracked`` (``include="all"``) come from the
      vector, cast to their dtype; no forward pass in eval mode reads them. Inside a
      ``torch.func`` transform of your own the values cannot be inspected, so there the
      integer and narrowing casts go unchecked. Torch cannot differentiate batch norm with
      respect to its running statistics, so a vector that holds them and requires a gradient
      is refused (``ValueError``): differentiate a layout of ``include="trainable"``. Sharded
      (FSDP2, DTensor) models are refused (``TypeError``).
    - **Keras** (``model.stateless_call``, on any backend): always in inference mode
      (``training=False``: dropout off, batch norm on its moving statistics); NumPy in and
      out.
    - **scikit-learn** ``MLPClassifier`` / ``MLPRegressor``: the output layer's activations,
      shape ``(rows, n_outputs_)``: ``predict_proba`` of a multi-class classifier (its
      second column for a binary one), ``predict`` of a regressor.
    - **nnet**: what ``fit.predict`` returns for the vector's weights.
    - **a dict of arrays** has no architecture, so it needs ``forward(arrays, inputs)``:
      ``arrays`` maps the dict's names to read-only views of the vector, shaped like the
      dict's arrays. ``forward`` is refused for every other kind of model.

    Errors: :class:`LayoutError` for a layout that does not fit the model, and for a vector
    of the wrong shape, dtype or values (``"vector: expected 9 values per member ..."``);
    ``ValueError`` for what cannot be evaluated without changing the model; ``TypeError``
    for a missing or stray ``forward``, or a vector that is not an array.

    >>> import numpy as np, helpers
    >>> weights = {"kernel": np.ones((2, 3)), "bias": np.zeros(3)}
    >>> vector, layout = helpers.flatten(weights)
    >>> f = helpers.functional(weights, layout, forward=lambda w, x: x @ w["kernel"] + w["bias"])
    >>> f(2 * vector, np.ones((1, 2)))
    array([[4., 4., 4.]])
    >>> f(np.stack([vector, -vector, 0 * vector]), np.ones((1, 2))).shape
    (3, 1, 3)
    """
    handles = check_fits(model, layout)
    if layout.framework == "numpy":
        if forward is None or not callable(forward):
            raise TypeError(
                "forward: a dict of arrays has no architecture; pass "
                f"forward=callable(arrays, inputs) that computes the outputs, got {forward!r}"
            )
        return VectorFunction(layout, _DictForward(model, layout, handles, forward))
    if forward is not None:
        raise TypeError(
            f"forward: only a dict of arrays takes a forward function; a {layout.framework} "
            "model is evaluated by its own forward pass"
        )
    evaluator = _EVALUATORS[layout.framework](model, layout, handles)
    return VectorFunction(layout, evaluator)


class VectorFunction:
    """What :func:`functional` returns: call it as ``f(vector, inputs)``.

    ``f.layout`` is the layout it was made for.
    """

    def __init__(self, layout: Layout, evaluator: Any) -> None:
        self.layout = layout
        self._evaluator = evaluator
        # Tensors whose dtype differs from the vector's: their values are checked per call.
        special = [entry for entry in layout if entry.dtype != layout.dtype]
        self._special_layout = Layout.from_specs(
            [(e.name, e.shape, e.dtype, e.trainable) for e in special],
            framework=layout.framework,
            include=layout.include,
            order=layout.order,
            dtype=layout.dtype,
        )
        self._special_positions = np.concatenate(
            [np.arange(e.offset, e.offset + e.size) for e in special] or [np.zeros(0, int)]
        )

    def __call__(self, vector: Any, inputs: Any) -> Any:
        vector = self._evaluator.as_vector(vector)
        population = self._checked_shape(vector)
        self._check_values(self._evaluator.readable(vector, self._special_positions))
        return self._evaluator(vector, inputs, population)

    def __repr__(self) -> str:
        return (
            f"<helpers.functional of a {self.layout.framework} model: {self.layout.size:,} "
            f"values (include={self.layout.include!r}, order={self.layout.order!r}, "
            f"dtype={self.layout.dtype})>"
        )

    def _checked_shape(self, vector: Any) -> bool:
        """Check the shape and dtype; return whether ``vector`` is a population (2-D)."""
        shape, size = tuple(vector.shape), self.layout.size
        if len(shape) == 2:
            if shape[1] != size:
                raise LayoutError(
                    f"vector: expected {size:,} values per member of the population (an array "
                    f"of shape (population, {size})), got shape {shape}"
                )
            if shape[0] == 0:
                raise LayoutError(
                    f"vector: expected at least one member, got an empty population {shape}"
                )
        elif len(shape) != 1:
            raise LayoutError(
                "vector: expected one vector (1-D) or a population (2-D, one member per "
                f"row), got shape {shape}"
            )
        # restore's check of length and dtype, on one member (a view, or a stand-in).
        checked_vector(self._evaluator.dtype_stand_in(vector, shape[-1]), self.layout)
        return len(shape) == 2

    def _check_values(self, special: np.ndarray | None) -> None:
        """restore's check of integer and narrowing tensors, member by member."""
        if special is None or special.shape[-1] == 0:
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for member, values in enumerate(np.atleast_2d(special)):
                try:
                    check_values(values, self._special_layout)
                except LayoutError as error:
                    where = f"member {member}: " if special.ndim == 2 else ""
                    raise LayoutError(f"vector: {where}{error}") from None
        for warning in caught:  # again, pointing at the caller's line rather than at ours
            warnings.warn(warning.message, warning.category, stacklevel=3)


# ---------------------------------------------------------------- NumPy vectors


class _NumpyEvaluator:
    """Shared by the frameworks that take NumPy vectors: a population is a loop of members."""

    def as_vector(self, vector: Any) -> np.ndarray:
        if type(vector).__module__.startswith("torch"):
            raise TypeError(
                "vector: expected a NumPy array for this model, got a torch tensor "
                "(only a torch model takes torch tensors)"
            )
        return np.asarray(vector)

    def dtype_stand_in(self, vector: np.ndarray, size: int) -> np.ndarray:
        return vector[0] if vector.ndim == 2 else vector

    def readable(self, vector: np.ndarray, positions: np.ndarray) -> np.ndarray | None:
        return vector[..., positions]

    def __call__(self, vector: np.ndarray, inputs: Any, population: bool) -> Any:
        inputs = self.prepared(inputs)
        if not population:
            return self.evaluate(vector, inputs)
        return _stack([self.evaluate(member, inputs) for member in vector])

    def prepared(self, inputs: Any) -> Any:
        """The inputs as the forward pass takes them, once for all members."""
        return inputs

    def evaluate(self, vector: np.ndarray, inputs: Any) -> Any:
        raise NotImplementedError


def _stack(outputs: list[Any]) -> Any:
    """Stack each member's outputs along a new first axis, keeping their structure."""
    first = outputs[0]
    if isinstance(first, Mapping):
        return {key: _stack([output[key] for output in outputs]) for key in first}
    if isinstance(first, tuple | list):
        return type(first)(_stack(list(parts)) for parts in zip(*outputs, strict=True))
    return np.stack([np.asarray(output) for output in outputs])


def _arrays(vector: np.ndarray, layout: Layout) -> list[np.ndarray]:
    """Each tensor's values in its shape and dtype, read-only: views where the dtype matches.

    A bfloat16 tensor's values stay float32 here (NumPy has no bfloat16): Keras casts them.
    """
    arrays = []
    for entry in layout:
        array = _slot(vector, entry, layout.order).astype(_numpy_dtype(entry.dtype), copy=False)
        array.flags.writeable = False  # a view of the caller's vector: nothing may write to it
        arrays.append(array)
    return arrays


class _DictForward(_NumpyEvaluator):
    def __init__(
        self, model: Mapping[str, np.ndarray], layout: Layout, handles: list[TensorHandle], forward
    ) -> None:
        self.layout, self.forward = layout, forward
        # Every name of the dict, the same array under two names (tied) included.
        position = {id(handle.read()): index for index, handle in enumerate(handles)}
        self.names = [(name, position[id(array)]) for name, array in model.items()]

    def evaluate(self, vector: np.ndarray, inputs: Any) -> Any:
        arrays = _arrays(vector, self.layout)
        return self.forward({name: arrays[index] for name, index in self.names}, inputs)


class _SklearnForward(_NumpyEvaluator):
    """scikit-learn's ``_forward_pass_fast``, with the vector's kernels and biases."""

    def __init__(self, model: Any, layout: Layout, handles: list[TensorHandle]) -> None:
        self.model, self.layout = model, layout

    def prepared(self, inputs: Any) -> np.ndarray:
        from sklearn.utils import check_array

        return check_array(inputs, dtype=(np.float64, np.float32))  # as predict does

    def evaluate(self, vector: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        from sklearn.neural_network._base import ACTIVATIONS

        activation = inputs
        arrays = _arrays(vector, self.layout)
        kernels, biases = arrays[0::2], arrays[1::2]
        for layer, (kernel, bias) in enumerate(zip(kernels, biases, strict=True)):
            activation = activation @ kernel
            activation += bias
            last = layer == len(kernels) - 1
            ACTIVATIONS[self.model.out_activation_ if last else self.model.activation](activation)
        return activation


class _NnetForward(_NumpyEvaluator):
    """``fit.predict`` of a copy of the fit that holds the vector as its weights."""

    def __init__(self, model: Any, layout: Layout, handles: list[TensorHandle]) -> None:
        self.model = model

    def evaluate(self, vector: np.ndarray, inputs: Any) -> np.ndarray:
        # nnet's entries are 1-D and back to back: the vector is the fit's wts, in R's order.
        wts = vector.astype(self.model.wts.dtype, copy=False)
        return dataclasses.replace(self.model, wts=wts).predict(inputs)


class _KerasForward(_NumpyEvaluator):
    """``model.stateless_call`` with the vector's values in place of the variables'."""

    def __init__(self, model: Any, layout: Layout, handles: list[TensorHandle]) -> None:
        self.model, self.layout = model, layout
        # The adapter's selection and order (model.weights; trainable ones, or all), by
        # identity, so that each of stateless_call's lists takes its values from the right slot.
        covered = [v for v in model.weights if layout.include == "all" or v.trainable]
        slot = {id(variable): index for index, variable in enumerate(covered)}
        self.trainable = [(v, slot.get(id(v))) for v in model.trainable_variables]
        self.non_trainable = [(v, slot.get(id(v))) for v in model.non_trainable_variables]
        self.keywords = (
            {"training": False} if "training" in inspect.signature(model.call).parameters else {}
        )

    def evaluate(self, vector: np.ndarray, inputs: Any) -> Any:
        import keras

        arrays = _arrays(vector, self.layout)

        def values(pairs: list[tuple[Any, int | None]]) -> list[Any]:
            return [
                variable.value if index is None else keras.ops.cast(arrays[index], variable.dtype)
                for variable, index in pairs
            ]

        outputs, _ = self.model.stateless_call(
            values(self.trainable), values(self.non_trainable), inputs, **self.keywords
        )
        return keras.tree.map_structure(_keras_numpy, outputs)


def _keras_numpy(tensor: Any) -> np.ndarray:
    """A backend tensor as NumPy, without ``np.array(tensor)`` (NumPy 2 warns about it)."""
    if hasattr(tensor, "detach"):  # torch
        return tensor.detach().cpu().numpy()
    if hasattr(tensor, "numpy"):  # TensorFlow
        return tensor.numpy()
    return np.asarray(tensor)  # JAX and NumPy


# ---------------------------------------------------------------- PyTorch


class _TorchForward:
    """``torch.func.functional_call`` on views of the vector; ``vmap`` for a population."""

    def __init__(self, model: Any, layout: Layout, handles: list[TensorHandle]) -> None:
        import torch

        self.torch, self.model, self.layout = torch, model, layout
        tensors = model.state_dict(keep_vars=True)
        _refuse_sharded(tensors)
        # The model's own names (check_fits matched the layout by structure; names are labels).
        self.targets = [
            (handle.name, entry, tensors[handle.name].dtype, tensors[handle.name].device)
            for handle, entry in zip(handles, layout, strict=True)
        ]
        self.device = self.targets[0][3] if self.targets else torch.device("cpu")
        self.norms = [
            (name, module)
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.modules.batchnorm._NormBase)
        ]
        self.model_tensors = list(tensors.items())
        # Running statistics that come from the vector (include="all"): torch's batch norm
        # cannot differentiate with respect to them.
        statistics = {
            f"{name}{'.' if name else ''}{kind}"
            for name, _ in self.norms
            for kind in ("running_mean", "running_var")
        }
        self.statistics_from_vector = [name for name, *_ in self.targets if name in statistics]

    def as_vector(self, vector: Any) -> Any:
        if isinstance(vector, self.torch.Tensor):
            return vector
        return np.asarray(vector)

    def dtype_stand_in(self, vector: Any, size: int) -> np.ndarray:
        if isinstance(vector, np.ndarray):
            return vector[0] if vector.ndim == 2 else vector
        # A zero-cost NumPy array with the tensor's length and dtype name, for restore's check.
        name = str(vector.dtype).removeprefix("torch.")
        try:
            dtype = np.dtype(name)
        except TypeError:  # bfloat16, complex32...: no NumPy dtype, and no vector dtype either
            raise LayoutError(
                f"vector: expected dtype {self.layout.dtype}, got {vector.dtype}"
            ) from None
        return np.broadcast_to(np.zeros((), dtype), (size,))

    def readable(self, vector: Any, positions: np.ndarray) -> np.ndarray | None:
        if positions.size == 0:
            return None
        if isinstance(vector, np.ndarray):
            return vector[..., positions]
        try:
            return vector.detach()[..., self.torch.from_numpy(positions)].cpu().numpy()
        except RuntimeError:  # inside a torch.func transform: the values cannot be read
            return None

    def __call__(self, vector: Any, inputs: Any, population: bool) -> Any:
        torch = self.torch
        self._refuse_running_statistics_updates()
        if not isinstance(vector, np.ndarray) and vector.requires_grad:
            self._refuse_gradient_of_statistics()
        from_numpy = isinstance(vector, np.ndarray)
        if from_numpy:
            # from_numpy shares memory (a read-only or reversed array is copied first); one
            # copy to the model's device, if it is not the CPU.
            vector = torch.from_numpy(_plain(vector)).to(self.device)
        inputs = _inputs_to_torch(inputs, self.device, torch)
        versions = self._versions(vector)
        evaluate = self._evaluate
        if population:
            evaluate = torch.func.vmap(evaluate, in_dims=(0, None), randomness="different")
        with torch.no_grad() if from_numpy else contextlib.nullcontext():
            outputs = evaluate(vector, inputs)
        self._check_unchanged(vector, versions)
        return _torch_to_numpy(outputs, torch) if from_numpy else outputs

    def _evaluate(self, vector: Any, inputs: Any) -> Any:
        return self.torch.func.functional_call(self.model, self._tensors(vector), (inputs,))

    def _tensors(self, vector: Any) -> dict[str, Any]:
        """Each tensor as a view of the vector (a copy only where the dtype or device differs)."""
        tensors = {}
        for name, entry, dtype, device in self.targets:
            values = vector[entry.offset : entry.offset + entry.size]
            if self.layout.order == "C":
                values = values.view(entry.shape)
            else:  # column-major: the reversed shape, read with its axes reversed
                axes = tuple(reversed(range(len(entry.shape))))
                values = values.view(entry.shape[::-1]).permute(axes)
            tensors[name] = values.to(device=device, dtype=dtype)
        return tensors

    def _refuse_running_statistics_updates(self) -> None:
        for name, module in self.norms:
            if module.training and module.track_running_stats:
                raise ValueError(
                    f"module {name!r} ({type(module).__name__}) is in training mode, where its "
                    "forward pass updates its running statistics in place (in the model, or in "
                    "the vector under include='all'); functional never changes either: call "
                    "model.eval() to evaluate with the running statistics"
                )

    def _refuse_gradient_of_statistics(self) -> None:
        if self.statistics_from_vector:
            raise ValueError(
                f"the vector holds batch-norm running statistics {self.statistics_from_vector}, "
                "and torch cannot differentiate batch norm with respect to them: differentiate "
                "with a layout of include='trainable' (the statistics then come from the model)"
            )

    def _versions(self, vector: Any) -> list[int]:
        """Version counters: any in-place write to a tensor (or to a view of it) bumps its own."""
        return [tensor._version for _, tensor in self.model_tensors] + [vector._version]

    def _check_unchanged(self, vector: Any, before: list[int]) -> None:
        after = self._versions(vector)
        if after != before:
            names = [name for name, _ in self.model_tensors] + ["the vector"]
            changed = [
                name for name, old, new in zip(names, before, after, strict=True) if old != new
            ]
            raise ValueError(
                f"the forward pass wrote into {changed} in place, so it has changed them: "
                "functional can only evaluate a model whose forward pass leaves its tensors "
                "alone (put the module in eval mode, or evaluate it with restore)"
            )


def _refuse_sharded(tensors: Mapping[str, Any]) -> None:
    """A sharded model (FSDP2, DTensor) runs collectives in its forward pass: not here."""
    distributed = sys.modules.get("torch.distributed.tensor")  # DTensors exist only after this
    if distributed is None:
        return
    for name, tensor in tensors.items():
        if isinstance(tensor, distributed.DTensor):
            raise TypeError(
                f"tensor {name!r} is a DTensor: functional evaluates unsharded models only; "
                "build the model unsharded and restore helpers.flatten(model)'s vector into it"
            )


def _plain(vector: np.ndarray) -> np.ndarray:
    """An array torch.from_numpy takes: writeable, with non-negative strides."""
    if vector.flags.writeable and all(stride >= 0 for stride in vector.strides):
        return vector
    return vector.copy()


def _inputs_to_torch(inputs: Any, device: Any, torch: Any) -> Any:
    if isinstance(inputs, np.ndarray):
        return torch.as_tensor(_plain(inputs), device=device)
    if isinstance(inputs, tuple | list):
        return type(inputs)(_inputs_to_torch(part, device, torch) for part in inputs)
    if isinstance(inputs, Mapping):
        return {key: _inputs_to_torch(value, device, torch) for key, value in inputs.items()}
    return inputs


def _torch_to_numpy(outputs: Any, torch: Any) -> Any:
    if isinstance(outputs, torch.Tensor):
        return outputs.detach().cpu().numpy()
    if isinstance(outputs, tuple | list):
        return type(outputs)(_torch_to_numpy(part, torch) for part in outputs)
    if isinstance(outputs, Mapping):
        return {key: _torch_to_numpy(value, torch) for key, value in outputs.items()}
    return outputs


_EVALUATORS = {
    "torch": _TorchForward,
    "keras": _KerasForward,
    "sklearn": _SklearnForward,
    "nnet": _NnetForward,
}
