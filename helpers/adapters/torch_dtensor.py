"""Sharded PyTorch models (FSDP2's ``fully_shard``, DTensor): the full vector on every rank.

A model whose ``state_dict`` holds DTensors is read and written through the same
``flatten``/``restore`` as any other, with the collectives that takes:

- reading a sharded tensor all-gathers it (``DTensor.full_tensor()``), so every rank gets
  the whole vector, equal to the unsharded model's;
- writing takes the full values on every rank and copies in each rank's own piece; before
  a tensor is written, the ranks compare a hash of its values and all refuse together if
  they differ (so a rank-dependent vector never leaves the model a patchwork);
- a plain tensor beside them (a buffer FSDP leaves unsharded, or an unsharded parameter)
  must hold the same values on every rank, checked the same way, when read and written.

Every rank must make the same calls in the same order, as with any collective. The
functions here are the narrow interface a faster ``restore`` can call directly:
:func:`read_full`, :func:`write_from_full`, :func:`check_same_on_every_rank`.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor, Replicate, Shard
from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

from helpers._layout import LayoutError
from helpers.adapters import TensorHandle, check_no_shared_memory
from helpers.adapters.torch_adapter import (
    _byte_range,
    _check_writable,
    _dtype_name,
    _is_trainable,
    _read,
    _tensors_share_memory,
)

Group = dist.ProcessGroup | None  # None: the default (world) group


def holds_dtensors(tensors: list[torch.Tensor]) -> bool:
    """Whether any of the tensors is a DTensor (then all reads and writes are collective)."""
    return any(isinstance(tensor, DTensor) for tensor in tensors)


def handles(named: list[tuple[str, torch.Tensor]]) -> list[TensorHandle]:
    """Handles for a model holding DTensors: full values in, full values out, on every rank."""
    group = _group_of(named)
    locals_ = [(name, _local(tensor)) for name, tensor in named]
    check_no_shared_memory(
        [(name, *_byte_range(local), local) for name, local in locals_], _tensors_share_memory
    )
    return [_handle(name, tensor, group) for name, tensor in named]


def read_full(name: str, tensor: torch.Tensor, group: Group) -> np.ndarray:
    """The whole tensor on every rank: all-gathered if sharded, else checked equal across ranks."""
    if isinstance(tensor, DTensor):
        _check_placements(name, tensor)
        return _read(tensor.detach().full_tensor())
    values = _read(tensor)
    check_same_on_every_rank(
        name,
        values,
        group,
        hint="it is not sharded, and FSDP does not keep buffers in step across ranks "
        "(batch-norm statistics, say): use include='trainable', or make them equal first",
    )
    return values


def write_from_full(name: str, tensor: torch.Tensor, values: np.ndarray, group: Group) -> None:
    """Write this rank's part of ``values`` (the whole tensor, the same on every rank)."""
    _check_writable(name, tensor)
    values = np.asarray(values)
    shape = tuple(tensor.shape)
    if values.shape != shape:  # copy_ would broadcast; never let it
        raise LayoutError(f"tensor {name!r}: expected shape {shape}, got {values.shape}")
    check_same_on_every_rank(
        name, values, group, hint="every rank must pass the same vector to restore"
    )
    source = torch.from_numpy(np.array(values, order="C", copy=True))
    with torch.no_grad():
        if isinstance(tensor, DTensor):
            local = tensor.to_local()  # under no_grad: the local tensor itself, not a copy
            local.copy_(source[_local_box(name, tensor)])
        else:
            tensor.copy_(source)


def check_same_on_every_rank(name: str, values: np.ndarray, group: Group, hint: str) -> None:
    """Raise :class:`LayoutError` on every rank unless all ranks hold the same ``values``.

    One small all-reduce of a 62-bit hash of the bytes: every rank learns the largest and
    the smallest hash, and they are equal exactly when all hashes are.
    """
    digest = hashlib.blake2b(np.ascontiguousarray(values), digest_size=8).digest()
    value = int.from_bytes(digest, "little") >> 2
    extremes = torch.tensor([value, -value], dtype=torch.int64, device=_device_of(group))
    dist.all_reduce(extremes, op=dist.ReduceOp.MAX, group=group)
    if int(extremes[0]) != -int(extremes[1]):
        raise LayoutError(f"tensor {name!r}: the ranks hold different values ({hint})")


def _handle(name: str, tensor: torch.Tensor, group: Group) -> TensorHandle:
    return TensorHandle(
        name=name,
        shape=tuple(tensor.shape),
        dtype=_dtype_name(tensor),
        trainable=_is_trainable(tensor),
        read=lambda: read_full(name, tensor, group),
        write=lambda values: write_from_full(name, tensor, values, group),
    )


def _local(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def _check_placements(name: str, tensor: DTensor) -> None:
    """Only whole boxes per rank (Shard, Replicate); never a pending sum (Partial)."""
    for placement in tensor.placements:
        if type(placement) not in (Shard, Replicate):
            raise TypeError(
                f"tensor {name!r}: placement {placement} is not supported (expected Shard "
                "or Replicate, as fully_shard makes them)"
            )


def _local_box(name: str, tensor: DTensor) -> tuple[slice, ...]:
    """The slices of the full tensor that this rank holds."""
    _check_placements(name, tensor)
    shape, offset = compute_local_shape_and_global_offset(
        tensor.shape, tensor.device_mesh, tensor.placements
    )
    if tuple(shape) != tuple(tensor.to_local().shape):
        raise LayoutError(
            f"tensor {name!r}: this rank holds shape {tuple(tensor.to_local().shape)}, "
            f"but its placements give {tuple(shape)} (a sharding this adapter cannot follow)"
        )
    return tuple(slice(start, start + size) for start, size in zip(offset, shape, strict=True))


def _group_of(named: list[tuple[str, torch.Tensor]]) -> Group:
    """The process group spanning the ranks that hold the model; refuse a model spread unevenly."""
    meshes = [(name, t.device_mesh) for name, t in named if isinstance(t, DTensor)]
    first_name, mesh = meshes[0]
    ranks = sorted(mesh.mesh.flatten().tolist())
    for name, other in meshes[1:]:
        if sorted(other.mesh.flatten().tolist()) != ranks:
            raise TypeError(
                f"tensors {first_name!r} and {name!r} are spread over different ranks "
                f"({ranks} and {sorted(other.mesh.flatten().tolist())}); expected one set"
            )
    if mesh.ndim == 1:
        return mesh.get_group()
    if len(ranks) == dist.get_world_size():
        return None
    raise TypeError(
        f"tensor {first_name!r}: a {mesh.ndim}-D device mesh over some of the ranks "
        "is not supported (expected a 1-D mesh, or a mesh over every rank)"
    )


def _device_of(group: Group) -> torch.device:
    """Where the backend takes a tensor to all-reduce: gloo the CPU, NCCL the GPU."""
    backend = str(dist.get_backend(group))
    if "nccl" in backend and "gloo" not in backend:
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
