"""PyTorch: parameters (trainable) or the whole ``state_dict`` (parameters and buffers).

Reading goes through NumPy in the tensor's logical (shape) order, whatever its strides:
a transposed parameter or a channels-last convolution kernel reads exactly as
``tensor.reshape(-1)`` would. Writing uses ``Tensor.copy_`` under ``torch.no_grad()``,
so every tensor keeps its identity (``id()`` and ``data_ptr()``), dtype, device, memory
format and ``requires_grad``.
"""

from __future__ import annotations

import numpy as np
import torch

from helpers._layout import Include, LayoutError
from helpers.adapters import TensorHandle

# Tensor dtypes that travel through NumPy (bfloat16 is widened to float32 on the way).
_SUPPORTED = {
    torch.float64,
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
}


def handles(model: torch.nn.Module, include: Include) -> list[TensorHandle]:
    """Parameters that require grad, or every parameter and persistent buffer.

    The order is ``state_dict`` order (for ``"trainable"`` that is also the order of
    ``model.parameters()``). A tensor shared by several modules (tied weights) appears
    once, under its first name, as in ``named_parameters()``. Non-persistent buffers are
    not part of the ``state_dict`` and are left out.
    """
    named = model.state_dict(keep_vars=True).items()
    seen: set[int] = set()
    result = []
    for name, tensor in named:
        if id(tensor) in seen or (include == "trainable" and not _is_trainable(tensor)):
            continue
        seen.add(id(tensor))
        _check_supported(name, tensor)
        result.append(_handle(name, tensor))
    return result


def _is_trainable(tensor: torch.Tensor) -> bool:
    return isinstance(tensor, torch.nn.Parameter) and tensor.requires_grad


def _check_supported(name: str, tensor: torch.Tensor) -> None:
    if isinstance(tensor, torch.nn.parameter.UninitializedTensorMixin):
        raise LayoutError(
            f"tensor {name!r} is not initialised yet (a lazy module): "
            "run one forward pass before flattening"
        )
    if tensor.dtype not in _SUPPORTED:
        raise TypeError(
            f"tensor {name!r}: dtype {tensor.dtype} cannot travel in a real-valued vector"
        )
    if tensor.layout != torch.strided:
        raise TypeError(f"tensor {name!r}: expected a dense tensor, got layout {tensor.layout}")


def _dtype_name(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _read(tensor: torch.Tensor) -> np.ndarray:
    """The tensor as a NumPy array of the same shape (a view when it lives on the CPU)."""
    tensor = tensor.detach()  # out of the autograd graph; NumPy cannot hold a grad_fn
    if tensor.dtype == torch.bfloat16:  # NumPy has no bfloat16; float32 holds it exactly
        tensor = tensor.float()
    return tensor.cpu().numpy()


def _handle(name: str, tensor: torch.Tensor) -> TensorHandle:
    shape = tuple(tensor.shape)

    def write(values: np.ndarray) -> None:
        values = np.asarray(values)
        if values.shape != shape:  # copy_ would broadcast; never let it
            raise LayoutError(f"tensor {name!r}: expected shape {shape}, got {values.shape}")
        # reshape keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d).
        source = torch.from_numpy(np.array(values, order="C", copy=True).reshape(shape))
        # copy_ writes in logical order into the existing storage: the tensor keeps its
        # id, data_ptr, dtype (it casts), device, strides and requires_grad.
        with torch.no_grad():
            tensor.copy_(source)

    return TensorHandle(
        name=name,
        shape=shape,
        dtype=_dtype_name(tensor),
        trainable=_is_trainable(tensor),
        read=lambda: _read(tensor),
        write=write,
    )
