"""PyTorch: parameters (trainable) or the whole ``state_dict`` (parameters and buffers).

Reading goes through NumPy in the tensor's logical (shape) order, whatever its strides:
a transposed parameter or a channels-last convolution kernel reads exactly as
``tensor.reshape(-1)`` would. Writing uses ``Tensor.copy_`` under ``torch.no_grad()``,
so every tensor keeps its identity (``id()`` and ``data_ptr()``), dtype, device, memory
format and ``requires_grad``.

Each tensor's kind comes from the module that owns it: weights and biases of the layers
below, a normalisation layer's scale and shift (its ``weight`` and ``bias``) and running
statistics; anything else, a custom module's parameters included, is ``"unknown"``.
"""

from __future__ import annotations

import sys
import warnings
import weakref
from collections.abc import Callable, Hashable
from dataclasses import replace

import numpy as np
import torch

from helpers._layout import Include, LayoutError
from helpers.adapters import (
    TensorHandle,
    arrays_share_memory,
    check_no_shared_memory,
    live_reference,
    may_overlap_itself,
)

_MODULE = torch.nn.Module
_DTENSOR_MODULE = "torch.distributed.tensor"
_BATCH_BYTES = 2**20  # up to here, one torch call for all tensors beats one per tensor
_EXTRA_STATE_SUFFIX = "_extra_state"  # torch's state_dict key for get_extra_state()

# Modules whose parameters named weight* / *_weight are weights and bias* / *_bias biases
# (LSTM's weight_ih_l0, attention's in_proj_weight and bias_k); subclasses count too.
_WEIGHTED_MODULES = (
    torch.nn.Linear,
    torch.nn.Bilinear,
    torch.nn.modules.conv._ConvNd,  # every Conv and ConvTranspose, lazy ones included
    torch.nn.RNNBase,
    torch.nn.RNNCellBase,
    torch.nn.Embedding,
    torch.nn.EmbeddingBag,
    torch.nn.MultiheadAttention,
)
# Normalisation layers: weight is a scale (gamma), bias a shift (beta).
_NORMALISATION_MODULES = (
    torch.nn.modules.batchnorm._NormBase,  # BatchNorm, SyncBatchNorm, InstanceNorm, lazy ones
    torch.nn.LayerNorm,
    torch.nn.GroupNorm,
    torch.nn.RMSNorm,
)
_NORMALISATION_KINDS = {
    "weight": "scale",
    "bias": "shift",
    "running_mean": "statistic",
    "running_var": "statistic",
    "num_batches_tracked": "statistic",
}

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


def probe(model: torch.nn.Module, include: Include) -> tuple[list[Hashable], list[object]] | None:
    """What the handles depend on, cheaply: each selected tensor's name, class, memory,
    shape, strides, dtype, device and trainability, and the modules (their classes give
    the kinds). None for a sharded model, whose state_dict() re-registers its DTensors."""
    plain = _plain_state_dict(model)
    named, modules = plain if plain is not None else (model.state_dict(keep_vars=True), None)
    tensors = [
        tensor
        for tensor in named.values()
        if include == "all" or (isinstance(tensor, torch.nn.Parameter) and tensor.requires_grad)
    ]
    if _DTENSOR_MODULE in sys.modules and _holds_dtensors(
        [("", tensor) for tensor in tensors if isinstance(tensor, torch.Tensor)]
    ):
        return None
    try:
        key = [
            (
                type(tensor),
                tensor.data_ptr(),
                tensor.shape,
                tensor.stride(),
                tensor.dtype,
                tensor.device,
                tensor.requires_grad,
            )
            for tensor in tensors
        ]
    except Exception:  # not a tensor, or one without storage (lazy, meta): handles() says
        return None
    if modules is None:
        modules = list(model.modules())
    key.append(tuple(named))
    return key, [*tensors, *modules]


def _plain_state_dict(
    model: torch.nn.Module,
) -> tuple[dict[str, torch.Tensor], list[torch.nn.Module]] | None:
    """``model.state_dict(keep_vars=True)`` and the modules it visited, worked out the way
    ``Module.state_dict`` does but in half its time; None where any module could make
    ``state_dict`` do something else (a hook, an overriding class or instance, extra
    state), and only ``state_dict`` itself can say what it gives."""
    named: dict[str, torch.Tensor] = {}
    modules: list[torch.nn.Module] = []
    try:
        plain = _visit(model, "", named, modules)
    except AttributeError:  # a module missing Module's own attributes: let state_dict say
        return None
    return (named, modules) if plain else None


def _visit(
    module: torch.nn.Module, prefix: str, named: dict[str, torch.Tensor], modules: list
) -> bool:
    cls = type(module)
    if (
        module._state_dict_pre_hooks
        or module._state_dict_hooks
        or cls.state_dict is not _MODULE.state_dict
        or cls._save_to_state_dict is not _MODULE._save_to_state_dict
        or getattr(cls, "get_extra_state", _MODULE.get_extra_state) is not _MODULE.get_extra_state
        or "state_dict" in module.__dict__
        or "_save_to_state_dict" in module.__dict__
    ):
        return False
    modules.append(module)
    for name, parameter in module._parameters.items():  # as Module._save_to_state_dict
        if parameter is not None:
            named[prefix + name] = parameter
    if module._buffers:
        non_persistent = module._non_persistent_buffers_set
        for name, buffer in module._buffers.items():
            if buffer is not None and name not in non_persistent:
                named[prefix + name] = buffer
    for name, child in module._modules.items():  # as Module.state_dict
        if child is not None and not _visit(child, prefix + name + ".", named, modules):
            return False
    return True


def handles(model: torch.nn.Module, include: Include) -> list[TensorHandle]:
    """Parameters that require grad, or every parameter and persistent buffer.

    The order is ``state_dict`` order (for ``"trainable"`` that is also the order of
    ``model.parameters()``). A tensor shared by several modules (tied weights) appears
    once, under its first name, as in ``named_parameters()``; two *different* tensors
    that share memory (views of one another) are refused. Non-persistent buffers are
    not part of the ``state_dict`` and are left out; so, under ``"trainable"``, is a
    module's extra state (``get_extra_state``), which ``"all"`` refuses: it is not a tensor
    the vector can hold.
    """
    # For an FSDP2 model, state_dict() also reshards first: its hooks register the DTensors.
    named = model.state_dict(keep_vars=True).items()
    seen: set[int] = set()
    selected: list[tuple[str, torch.Tensor]] = []
    for name, tensor in named:
        if include == "trainable" and not _is_trainable(tensor):
            continue
        _check_supported(model, name, tensor)
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        selected.append((name, tensor))
    if _holds_dtensors(selected):
        return _with_kinds(model, selected, _sharded_handles(selected))
    check_no_shared_memory(
        [(name, *_byte_range(tensor), tensor) for name, tensor in selected],
        _tensors_share_memory,
    )
    return _with_kinds(model, selected, [_handle(name, tensor) for name, tensor in selected])


def gatherer(
    model: torch.nn.Module, handles: list[TensorHandle]
) -> Callable[[], np.ndarray] | None:
    """One call that copies the handles' tensors, in order, into a new 1-D array, where
    they are plain CPU tensors of one dtype NumPy holds and together small: torch then
    concatenates them in C++, cheaper than reading each through NumPy. (A big model's
    copy, not the per-tensor cost, dominates; NumPy's huge-page allocations copy faster.)
    None where that does not hold, or torch lacks the function."""
    flatten_dense = getattr(torch._utils, "_flatten_dense_tensors", None)
    tensors = _plain_cpu_tensors(model, handles)
    if (
        flatten_dense is None
        or not tensors
        or sum(tensor.nbytes for tensor in tensors) > _BATCH_BYTES
        or tensors[0].dtype == torch.bfloat16
        or any(tensor.dtype != tensors[0].dtype for tensor in tensors)
    ):
        return None
    live = _live_tensors(handles, [weakref.ref(tensor) for tensor in tensors])

    def gather() -> np.ndarray:
        with torch.no_grad():
            return flatten_dense(live()).numpy()

    return gather


def scatterer(
    model: torch.nn.Module, handles: list[TensorHandle]
) -> Callable[[list[np.ndarray]], None] | None:
    """One call that writes each array into its handle's tensor (as each handle's
    ``write`` would, after ``check_writable``), where all are plain CPU tensors and
    together small; None otherwise, or where torch lacks ``_foreach_copy_``."""
    foreach_copy = getattr(torch, "_foreach_copy_", None)
    tensors = _plain_cpu_tensors(model, handles)
    if (
        foreach_copy is None
        or not tensors
        or sum(tensor.nbytes for tensor in tensors) > _BATCH_BYTES
    ):
        return None
    live = _live_tensors(handles, [weakref.ref(tensor) for tensor in tensors])

    def scatter(arrays: list[np.ndarray]) -> None:
        sources = [_as_source(array) for array in arrays]
        with torch.no_grad():  # copy_ into a leaf that requires grad, as no_grad allows
            foreach_copy(live(), sources)

    return scatter


def _plain_cpu_tensors(
    model: torch.nn.Module, handles: list[TensorHandle]
) -> list[torch.Tensor] | None:
    """The handles' tensors, if every one is a plain tensor or parameter in host memory
    (and no module customises its state_dict: FSDP's hooks, say)."""
    plain = _plain_state_dict(model)
    if plain is None:
        return None
    tensors = [plain[0].get(handle.name) for handle in handles]
    if any(
        type(tensor) not in (torch.Tensor, torch.nn.Parameter) or tensor.device.type != "cpu"
        for tensor in tensors
    ):
        return None
    return tensors


def _live_tensors(
    handles: list[TensorHandle], references: list[weakref.ref]
) -> Callable[[], list[torch.Tensor]]:
    def live() -> list[torch.Tensor]:
        tensors = [reference() for reference in references]
        for handle, tensor in zip(handles, tensors, strict=True):
            if tensor is None:
                raise LayoutError(
                    f"tensor {handle.name!r} no longer exists: the model let go of it"
                )
        return tensors

    return live


def _with_kinds(
    model: torch.nn.Module, selected: list[tuple[str, torch.Tensor]], handles: list[TensorHandle]
) -> list[TensorHandle]:
    return [
        replace(handle, kind=_kind(model, name, tensor))
        for handle, (name, tensor) in zip(handles, selected, strict=True)
    ]


def _holds_dtensors(selected: list[tuple[str, torch.Tensor]]) -> bool:
    # A DTensor can exist only once torch.distributed.tensor has been imported.
    if _DTENSOR_MODULE not in sys.modules:
        return False
    from helpers.adapters import torch_dtensor

    return torch_dtensor.holds_dtensors([tensor for _, tensor in selected])


def _sharded_handles(selected: list[tuple[str, torch.Tensor]]) -> list[TensorHandle]:
    """A sharded model (FSDP2, DTensor): collective reads and writes, in their own module."""
    from helpers.adapters import torch_dtensor

    return torch_dtensor.handles(selected)


def _kind(model: torch.nn.Module, name: str, tensor: torch.Tensor) -> str:
    """What the tensor is for, from the class of the module that owns it."""
    owner_name, _, attribute = name.rpartition(".")
    try:
        owner = model.get_submodule(owner_name)
    except AttributeError:
        return "unknown"
    # torch.nn.utils.prune keeps the dense tensor as weight_orig (and a weight_mask buffer).
    attribute = attribute.removesuffix("_orig")
    if isinstance(owner, _NORMALISATION_MODULES):
        return _NORMALISATION_KINDS.get(attribute, "unknown")
    if isinstance(owner, _WEIGHTED_MODULES) and isinstance(tensor, torch.nn.Parameter):
        for kind in ("weight", "bias"):
            if (
                attribute == kind
                or attribute.startswith(f"{kind}_")
                or attribute.endswith(f"_{kind}")
            ):
                return kind
    return "unknown"


def _is_trainable(tensor: torch.Tensor) -> bool:
    return isinstance(tensor, torch.nn.Parameter) and tensor.requires_grad


def _check_supported(model: torch.nn.Module, name: str, tensor: object) -> None:
    if name.endswith(_EXTRA_STATE_SUFFIX) and _has_extra_state(model, name):
        raise TypeError(
            f"{name!r}: extra state from get_extra_state() ({type(tensor).__name__}) is not "
            "a weight and cannot travel in a vector; use include='trainable', or save it "
            "with model.state_dict()"
        )
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(
            f"{name!r}: expected a tensor in the state_dict, got {type(tensor).__name__}"
        )
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
    if tensor.is_meta:
        raise LayoutError(
            f"tensor {name!r} is on the meta device and holds no values: materialise the "
            "model first (model.to_empty(device='cpu'), then initialise or load its weights)"
        )


def _has_extra_state(model: torch.nn.Module, name: str) -> bool:
    owner_name = name.removesuffix(_EXTRA_STATE_SUFFIX).removesuffix(".")
    try:
        owner = model.get_submodule(owner_name)
    except AttributeError:
        return False
    return type(owner).get_extra_state is not torch.nn.Module.get_extra_state


def _check_writable(name: str, tensor: torch.Tensor, overlapping: bool | None = None) -> None:
    """Refuse, naming the tensor, one that ``copy_`` cannot write in place.

    ``overlapping``: whether its elements overlap, if already known (it depends only on
    the shape and strides).
    """
    if tensor.is_inference() and not torch.is_inference_mode_enabled():
        raise LayoutError(
            f"tensor {name!r} is an inference tensor (made under torch.inference_mode()) and "
            "cannot be written in place: build or clone the model outside inference mode"
        )
    if overlapping is None:
        overlapping = may_overlap_itself(tuple(tensor.shape), tensor.stride(), 1)
    if overlapping:
        raise LayoutError(
            f"tensor {name!r}: several elements share one memory location (strides "
            f"{tensor.stride()}, e.g. an expand()ed tensor); give it its own memory with "
            ".clone()"
        )


def _byte_range(tensor: torch.Tensor) -> tuple[int, int]:
    """First byte and one past the last byte the tensor's elements occupy."""
    if tensor.numel() == 0:
        return 0, 0
    span = sum(
        (size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride(), strict=True)
    )
    return tensor.data_ptr(), tensor.data_ptr() + (span + 1) * tensor.element_size()


def _tensors_share_memory(first: torch.Tensor, second: torch.Tensor) -> bool:
    """Exact on the CPU; elsewhere overlapping byte ranges on one device count as shared."""
    if first.device != second.device:
        return False
    if first.device.type != "cpu":
        return True  # no exact test off the CPU: refuse rather than risk an overwrite
    try:
        views = _as_numpy_view(first), _as_numpy_view(second)
    except (RuntimeError, TypeError):  # a tensor subclass NumPy cannot see into
        return True
    return arrays_share_memory(*views)


def _as_numpy_view(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:  # NumPy has no bfloat16; same bytes as int16
        tensor = tensor.view(torch.int16)
    return tensor.numpy()


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
    live = live_reference(name, tensor)

    overlapping = may_overlap_itself(shape, tensor.stride(), 1)
    plain_cpu = type(tensor) in (torch.Tensor, torch.nn.Parameter) and tensor.device.type == "cpu"

    def write(values: np.ndarray | torch.Tensor) -> None:
        target = live()
        _check_writable(name, target, overlapping)
        if tuple(values.shape) != shape:  # copy_ would broadcast; never let it
            raise LayoutError(f"tensor {name!r}: expected shape {shape}, got {values.shape}")
        source = values if isinstance(values, torch.Tensor) else _as_source(np.asarray(values))
        # copy_ writes in logical order into the existing storage: the tensor keeps its
        # id, data_ptr, dtype (it casts), device, strides and requires_grad.
        if plain_cpu:  # a detached alias: same storage and version counter, no autograd
            target.detach().copy_(source)
        else:  # a subclass sees its own copy_
            with torch.no_grad():
                target.copy_(source)

    if plain_cpu and tensor.dtype != torch.bfloat16:

        def read() -> np.ndarray:  # _read's shortest way: a view of the tensor's memory
            return live().detach().numpy()
    else:

        def read() -> np.ndarray:
            return _read(live())

    return TensorHandle(
        name=name,
        shape=shape,
        dtype=_dtype_name(tensor),
        trainable=_is_trainable(tensor),
        read=read,
        write=write,
        # A checked copy_ within host memory cannot fail; one to a device, or into a
        # subclass that may do anything, can.
        fallible=not plain_cpu,
        check_writable=lambda: _check_writable(name, live(), overlapping),
        snapshot=lambda: live().detach().clone(),
        host_bytes=_byte_range(tensor) if tensor.device.type == "cpu" else None,
    )


def _as_source(values: np.ndarray) -> torch.Tensor:
    """The array as a tensor, without a copy where torch can view it."""
    if not values.flags.writeable:
        with warnings.catch_warnings():  # read-only (a memory-mapped vector): copy_ only reads
            warnings.simplefilter("ignore", UserWarning)
            return _as_source_writable(values)
    return _as_source_writable(values)


def _as_source_writable(values: np.ndarray) -> torch.Tensor:
    try:
        return torch.from_numpy(values)
    except (ValueError, TypeError):  # negative strides or a foreign byte order: copy
        return torch.from_numpy(np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("=")))
