"""PyTorch: parameters (trainable) or the whole ``state_dict`` (parameters and buffers)."""

from __future__ import annotations

import numpy as np
import torch

from helpers._layout import Include
from helpers.adapters import TensorHandle


def handles(model: torch.nn.Module, include: Include) -> list[TensorHandle]:
    """Parameters that require grad, or every parameter and persistent buffer.

    Shared (tied) tensors appear once, under their first name, as in
    ``named_parameters()``; the order is ``state_dict`` order.
    """
    named = model.state_dict(keep_vars=True).items()
    seen: set[int] = set()
    result = []
    for name, tensor in named:
        if id(tensor) in seen or (include == "trainable" and not _is_trainable(tensor)):
            continue
        seen.add(id(tensor))
        result.append(_handle(name, tensor))
    return result


def _is_trainable(tensor: torch.Tensor) -> bool:
    return isinstance(tensor, torch.nn.Parameter) and tensor.requires_grad


def _read(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:  # NumPy has no bfloat16
        tensor = tensor.float()
    return tensor.cpu().numpy()


def _handle(name: str, tensor: torch.Tensor) -> TensorHandle:
    def write(values: np.ndarray) -> None:
        # copy_ keeps the tensor object, its device, dtype and memory format.
        with torch.no_grad():
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(values)))

    return TensorHandle(
        name=name,
        shape=tuple(tensor.shape),
        dtype=str(tensor.dtype).removeprefix("torch."),
        trainable=_is_trainable(tensor),
        read=lambda: _read(tensor),
        write=write,
    )
