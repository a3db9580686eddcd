"""A zero-copy flat view of a PyTorch model: one buffer that *is* the weights.

:func:`flat_view` copies every viewed tensor once into a single contiguous buffer and
re-points each tensor's ``.data`` at its slice, as FSDP's flat parameter and apex's flat
master weights do. From then on the buffer and the model share memory: reading the
vector copies nothing, and writing it changes the model. The ``nn.Parameter`` objects
stay the same objects, so optimisers, hooks and ``state_dict`` keep working. This is
aliasing on purpose, the opposite of :func:`helpers.restore`, which copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, get_args

import torch

from helpers._layout import Include, Layout, LayoutError
from helpers.adapters import framework_of, handles_for

# The vector dtype a flatten() of the same model would use (NumPy has no bfloat16).
_LAYOUT_DTYPES = {
    torch.float16: "float16",
    torch.bfloat16: "float32",
    torch.float32: "float32",
    torch.float64: "float64",
}


@dataclass(frozen=True)
class _Slot:
    """One viewed tensor: where it sits in the buffer, and what must stay true of it."""

    name: str
    tensor: torch.Tensor
    offset: int
    places: tuple[tuple[str, dict[str, Any], str], ...]  # (full name, the module's table, key)
    requires_grad: bool

    def view_of(self, buffer: torch.Tensor) -> torch.Tensor:
        return buffer[self.offset : self.offset + self.tensor.numel()].view(self.tensor.shape)


class FlatView:
    """A model's tensors as views into one buffer; made by :func:`flat_view`.

    ``vector`` is the buffer (a 1-D torch tensor on the model's device, in the model's
    dtype), ``layout`` the :class:`helpers.Layout` that ``helpers.flatten`` gives,
    ``grad`` the gradients as one vector, and ``undo()`` gives every tensor its own
    memory back (also on leaving a ``with`` block). Each access checks, per tensor, that
    the model still lives in the buffer, and refuses once it does not.
    """

    def __init__(self, buffer: torch.Tensor, layout: Layout, slots: list[_Slot]) -> None:
        self._buffer: torch.Tensor | None = buffer
        self._views = [slot.view_of(buffer) for slot in slots]  # made once: checks stay cheap
        self._grad: torch.Tensor | None = None
        self._grad_views: list[torch.Tensor] = []
        self._slots = slots
        self.layout = layout

    @property
    def vector(self) -> torch.Tensor:
        """The weights themselves, as one 1-D tensor: reading copies nothing; writing
        (``vector.mul_(0.5)``, ``vector[:] = ...``) changes the model at once.

        Write between training steps, never between a forward pass and its backward:
        autograd checks a saved weight's own version counter, which a write through the
        vector does not move, so the gradient would silently mix old and new weights.
        """
        return self._checked_buffer()

    @property
    def grad(self) -> torch.Tensor:
        """The gradients as one vector (same slots as ``vector``), zero where ``.grad`` is None.

        Reading it makes each parameter's ``.grad`` a view into it, so later ``backward()``
        calls add into it in place, as long as gradients are zeroed with
        ``optimizer.zero_grad(set_to_none=False)``. The default ``zero_grad()`` sets them
        to None: the next backward puts them in fresh tensors, and this property copies
        them back in (correct, at the cost of one copy). Read it again after each
        backward rather than holding an old result.
        """
        buffer = self._checked_buffer()
        if self._grad is None:
            self._grad = torch.zeros_like(buffer)
            self._grad_views = [slot.view_of(self._grad) for slot in self._slots]
        with torch.no_grad():
            for slot, grad_view in zip(self._slots, self._grad_views, strict=True):
                _gather_grad(slot, grad_view)
        return self._grad

    def undo(self) -> None:
        """Give every tensor (and gradient) still in the buffer its own memory, values kept.

        Safe to call twice; ``vector`` and ``grad`` refuse afterwards.
        """
        if self._buffer is None:
            return
        with torch.no_grad():
            for slot in self._slots:
                tensor = slot.tensor
                if _lives_in(tensor, self._buffer):
                    tensor.data = tensor.data.clone()
                grad = tensor.grad
                if grad is not None and self._grad is not None and _lives_in(grad, self._grad):
                    tensor.grad = grad.clone()
        self._buffer = self._grad = None
        self._views, self._grad_views = [], []

    def __enter__(self) -> FlatView:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.undo()

    def __repr__(self) -> str:
        if self._buffer is None:
            return f"FlatView(undone, {len(self._slots)} tensors)"
        return (
            f"FlatView({self._buffer.numel():,} {str(self._buffer.dtype).removeprefix('torch.')} "
            f"values on {self._buffer.device}, {len(self._slots)} tensors)"
        )

    def _checked_buffer(self) -> torch.Tensor:
        if self._buffer is None:
            raise LayoutError("this flat view was undone; make a new one with helpers.flat_view")
        for slot, view in zip(self._slots, self._views, strict=True):
            _check_in_place(slot, view)
        return self._buffer


def flat_view(model: torch.nn.Module, include: Include = "trainable") -> FlatView:
    """Make a torch model's tensors views into one contiguous buffer, and return it.

    ``include="trainable"`` views the parameters an optimiser updates; ``"all"`` adds
    frozen parameters and persistent buffers (only when they all share one floating
    dtype). ``view.vector`` equals ``helpers.flatten(model, include)[0]`` and shares its
    memory with the model; ``view.layout`` is the same layout. Parameters keep their
    identity (only ``.data`` is re-pointed), so optimisers made before or after work
    unchanged. Tied weights take one slot. Refused with a clear error, the model left as
    it was: mixed dtypes or devices, non-floating tensors, non-contiguous tensors
    (transposed, channels-last), tensors sharing memory, sparse, meta, inference and
    sharded (DTensor) tensors.

    >>> model = torch.nn.Linear(3, 2)
    >>> with flat_view(model) as view:
    ...     _ = view.vector.zero_()  # no copy: the model's weights are now all zero
    ...     float(model.weight.detach().abs().sum())
    0.0
    """
    if not isinstance(include, str) or include not in get_args(Include):
        raise ValueError(f"include must be one of {get_args(Include)}, got {include!r}")
    if framework_of(model) != "torch":
        raise TypeError(f"flat_view: expected a torch.nn.Module, got {type(model).__name__}")
    # Refuses what flatten refuses (a model with no tensors too), and takes tied ones once.
    _, handles = handles_for(model, include)
    state = model.state_dict(keep_vars=True)
    tensors = [state[handle.name] for handle in handles]
    for handle, tensor in zip(handles, tensors, strict=True):
        _check_viewable(handle.name, tensor, tensors[0], handles[0].name)
    layout = _layout(handles, include, tensors[0].dtype)
    slots = _slots(model, handles, tensors, layout)
    buffer = torch.empty(layout.size, dtype=tensors[0].dtype, device=tensors[0].device)
    with torch.no_grad():
        for slot in slots:  # copy everything first: a failure here leaves the model alone
            slot.view_of(buffer).copy_(slot.tensor)
        for slot in slots:
            slot.tensor.data = slot.view_of(buffer)
    return FlatView(buffer, layout, slots)


def _check_viewable(name: str, tensor: torch.Tensor, first: torch.Tensor, first_name: str) -> None:
    where = f"flat_view: tensor {name!r}"
    if type(tensor.data) is not torch.Tensor:  # DTensor and other wrapper subclasses
        raise TypeError(
            f"{where} is a {type(tensor.data).__name__}, not a plain tensor; a sharded "
            "(FSDP2/DTensor) model cannot be viewed flat: use helpers.flatten for its vector"
        )
    if tensor.dtype not in _LAYOUT_DTYPES:
        raise TypeError(
            f"{where}: dtype {tensor.dtype}, expected floating point (one buffer, one dtype)"
            + ("; use include='trainable'" if tensor.dtype in (torch.int64, torch.int32) else "")
        )
    if tensor.dtype != first.dtype:
        raise TypeError(
            f"{where}: dtype {tensor.dtype}, but {first_name!r} is {first.dtype}; one buffer "
            f"holds one dtype: convert the model first (e.g. model.to({first.dtype}))"
        )
    if tensor.device != first.device:
        raise TypeError(
            f"{where} is on {tensor.device}, but {first_name!r} is on {first.device}; one "
            f"buffer lives on one device: move the model first (model.to({str(first.device)!r}))"
        )
    if tensor.is_inference():
        raise LayoutError(f"{where} is an inference tensor (made under torch.inference_mode())")
    if not tensor.is_contiguous():
        raise LayoutError(
            f"{where} is not C-contiguous (strides {tensor.stride()}, e.g. transposed or "
            "channels-last); the vector holds each tensor in C order: make it contiguous "
            "first (model.to(memory_format=torch.contiguous_format))"
        )


def _layout(handles: list[Any], include: Include, dtype: torch.dtype) -> Layout:
    specs = [(h.name, tuple(h.shape), h.dtype, h.trainable, h.kind) for h in handles]
    return Layout.from_specs(
        specs, framework="torch", include=include, order="C", dtype=_LAYOUT_DTYPES[dtype]
    )


def _slots(
    model: torch.nn.Module, handles: list[Any], tensors: list[torch.Tensor], layout: Layout
) -> list[_Slot]:
    """Each tensor with every (module, name) that holds it: tied weights are held twice."""
    places: dict[int, list[tuple[str, dict[str, Any], str]]] = {id(t): [] for t in tensors}
    for prefix, module in model.named_modules(remove_duplicate=False):
        for table in (module._parameters, module._buffers):
            for key, value in table.items():
                if value is not None and id(value) in places:
                    places[id(value)].append((f"{prefix}.{key}".lstrip("."), table, key))
    return [
        _Slot(h.name, t, entry.offset, tuple(places[id(t)]), t.requires_grad)
        for h, t, entry in zip(handles, tensors, layout, strict=True)
    ]


def _lives_in(tensor: torch.Tensor, buffer: torch.Tensor) -> bool:
    start = buffer.data_ptr()
    return start <= tensor.data_ptr() < start + buffer.numel() * buffer.element_size()


def _check_in_place(slot: _Slot, view: torch.Tensor) -> None:
    """Refuse once the model no longer holds this tensor in its slot (``view``) of the buffer."""
    tensor = slot.tensor
    replaced = [name for name, table, key in slot.places if table.get(key) is not tensor]
    moved = tensor.data_ptr() != view.data_ptr() or tensor.dtype != view.dtype
    if replaced or moved or tensor.shape != view.shape:
        how = f"'{replaced[0]}' was replaced" if replaced else "its .data was re-pointed"
        raise LayoutError(
            f"flat view: tensor {slot.name!r} no longer lives in the vector ({how}, e.g. by "
            "model.to(), .half(), load_state_dict(assign=True) or another flat_view); "
            "call undo() and make a new view"
        )
    if tensor.requires_grad != slot.requires_grad:
        raise LayoutError(
            f"flat view: tensor {slot.name!r} was {'un' if tensor.requires_grad else ''}frozen "
            "since the view was made, so the layout's trainable flags are stale: make a new view"
        )


def _gather_grad(slot: _Slot, grad_view: torch.Tensor) -> None:
    """Bring one parameter's gradient into its slot, and make ``.grad`` that slot."""
    grad = slot.tensor.grad
    if grad is None:
        grad_view.zero_()
        return
    if grad.data_ptr() == grad_view.data_ptr() and grad.stride() == grad_view.stride():
        return  # already the view: backward() added into it in place
    if grad.layout != torch.strided:
        raise LayoutError(
            f"flat view: the gradient of {slot.name!r} is {grad.layout} (a sparse embedding?); "
            "a flat gradient is dense: build the module with sparse=False"
        )
    if grad.requires_grad:
        raise LayoutError(
            f"flat view: the gradient of {slot.name!r} is part of an autograd graph "
            "(backward(create_graph=True)); a flat copy would cut it: use torch.autograd.grad"
        )
    grad_view.copy_(grad)
    slot.tensor.grad = grad_view
