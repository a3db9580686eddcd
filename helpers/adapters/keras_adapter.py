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
backends and keeps the variable object. On TensorFlow, a plain (not distributed)
variable outside a stateless scope is written and backed up with the ops ``assign`` ends
in (``AssignVariableOp``, ``ReadVariableOp``), skipping Keras's per-call conversions:
``set_weights`` pays those, ``restore`` need not.

Each tensor's kind comes from the variable's own name, the one Keras's layers give it
(and its ``kernel_regularizer`` relies on): ``kernel``, ``recurrent_kernel``,
``depthwise_kernel``, ``pointwise_kernel`` and ``embeddings`` are weights, ``bias`` a bias,
a normalisation layer's ``gamma`` and ``beta`` its scale and shift, ``moving_mean`` and
``moving_variance`` statistics; any other name is ``"unknown"``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import keras
import numpy as np

from helpers._layout import TENSOR_DTYPES, Include, LayoutError
from helpers.adapters import TensorHandle, live_reference

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


def probe(model: Any, include: Include) -> tuple[Hashable, list[Any]] | None:
    """What the handles depend on, cheaply: the variables, their paths, shapes, dtypes and
    trainability (and, on the torch backend, their memory)."""
    if not getattr(model, "built", False):
        return None
    variables = [v for v in model.weights if include == "all" or v.trainable]
    on_torch = keras.backend.backend() == "torch"
    key = tuple(
        (
            variable.path,
            tuple(variable.shape),
            str(variable.dtype),
            bool(variable.trainable),
            variable.value.data_ptr() if on_torch else None,
        )
        for variable in variables
    )
    return key, variables


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
    live = live_reference(name, variable)

    def write(values: Any) -> None:
        if tuple(values.shape) != shape:  # never let a write broadcast or reshape
            raise LayoutError(f"tensor {name!r}: expected shape {shape}, got {values.shape}")
        target = live()
        direct = _tensorflow_variable(target)
        if direct is not None and values.dtype.name == direct.dtype.name:
            _assign_directly(direct, values)
        else:
            target.assign(values)  # casts to the variable's dtype (e.g. float32 -> bfloat16)

    def snapshot() -> Any:
        direct = _tensorflow_variable(live())
        if direct is None:
            return np.array(_read(live()), copy=True)
        # A read is a tensor that later assigns never change (TensorFlow copies on write).
        return _tf().raw_ops.ReadVariableOp(resource=direct.handle, dtype=direct.dtype)

    return TensorHandle(
        name=name,
        shape=shape,
        dtype=str(variable.dtype),
        trainable=bool(variable.trainable),
        read=lambda: _read(live()),
        write=write,
        kind=_KINDS.get(variable.name, "unknown"),
        snapshot=snapshot,
        host_bytes=_host_bytes(variable),
    )


def _tf() -> Any:
    import tensorflow

    return tensorflow


def _tensorflow_variable(variable: keras.Variable) -> Any:
    """The plain tf.Variable under a Keras variable, where assigning to it directly is
    what Keras's own assign would do in the end; else None."""
    if keras.backend.backend() != "tensorflow" or _in_stateless_scope():
        return None
    from tensorflow.python.ops.resource_variable_ops import ResourceVariable

    value = variable.value
    return value if type(value) is ResourceVariable else None


def _in_stateless_scope() -> bool:
    try:
        from keras.src.backend.common.stateless_scope import in_stateless_scope
    except ImportError:  # cannot tell: let Keras's assign decide
        return True
    return bool(in_stateless_scope())


def _assign_directly(variable: Any, values: Any) -> None:
    tf = _tf()
    if isinstance(values, np.ndarray):
        # TensorFlow may adopt a NumPy buffer as the variable's own memory: hand it a
        # private copy (aligned, so that it is adopted rather than copied again), never
        # a view of the caller's vector.
        values = _aligned_copy(values)
    tf.raw_ops.AssignVariableOp(resource=variable.handle, value=values)


def _aligned_copy(values: np.ndarray, alignment: int = 64) -> np.ndarray:
    raw = np.empty(values.nbytes + alignment, dtype=np.uint8)
    start = -raw.ctypes.data % alignment
    copy = raw[start : start + values.nbytes].view(values.dtype).reshape(values.shape)
    np.copyto(copy, values)
    return copy


def _host_bytes(variable: keras.Variable) -> tuple[int, int] | None:
    """Where a torch-backend variable's values sit in host memory (a vector may alias
    them); TensorFlow's and JAX's are never shared with a NumPy array that writes."""
    if keras.backend.backend() != "torch":
        return None
    value = variable.value
    if value.device.type != "cpu" or value.numel() == 0:
        return None
    return value.data_ptr(), value.data_ptr() + value.numel() * value.element_size()


def _read(variable: keras.Variable) -> np.ndarray:
    # Straight to NumPy where the backend allows: keras.ops.convert_to_numpy goes through
    # np.array(tensor), which NumPy 2 answers with a DeprecationWarning about __array__.
    direct = _tensorflow_variable(variable)
    if direct is not None:
        # A read is a snapshot (later assigns copy on write) that NumPy can view in
        # place; Tensor.numpy() would copy it once more. Read-only: it is TF's memory.
        read = _tf().raw_ops.ReadVariableOp(resource=direct.handle, dtype=direct.dtype)
        array = np.asarray(read)
        array.flags.writeable = False
        return array
    value = variable.value
    backend = keras.backend.backend()
    if backend == "tensorflow" and hasattr(value, "numpy"):
        return value.numpy()
    if backend == "torch" and hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(value)
