"""Copy weights between a Keras model (or an nnet fit) and its PyTorch twin: one table of pairs.

The two frameworks store the same numbers differently: a Dense kernel is (in, out) where a
Linear weight is (out, in); a Keras convolution kernel is (*spatial, in, out) where torch's
is (out, in, *spatial); GRU gates come in another order. :func:`transfer` pairs the layers
that hold weights one to one, in the order each framework lists them, follows both models'
real graphs to learn what every layer's weights are indexed by (:mod:`_transfer_graphs`),
compares every setting that changes predictions, converts, checks, and only then writes.

Adding a layer pair is one row: append a :class:`Pair` to ``PAIRS`` (at the bottom) with
the Keras and torch class names it joins; its ``role``, how the layer changes its input's
axes (one of the roles ``_transfer_graphs`` knows: dense, convolution, normalisation,
embedding, recurrent); every setting that changes predictions, as ``name: (Keras getter,
torch getter)``, each an attribute name or a function of the layer and its call
:class:`Site` (all compared, None included); and its two converters, Keras arrays to torch
arrays and back. Then add the pair to the random twins in ``tests/test_transfer.py``.

Conventions a lesson should know about:

- LSTM bias: Keras has one, torch two that it adds (``bias_ih + bias_hh``). Going to Keras
  they are summed; going to torch the bias goes into ``bias_ih`` and ``bias_hh`` is zeros.
- BatchNorm: ``epsilon`` changes predictions, so it must agree; momentum only changes
  training (Keras' ``momentum`` is torch's ``1 - momentum``), so a difference warns.
  ``num_batches_tracked`` is torch's own count of training batches: it is left as it is.
- Flatten: Keras flattens a feature map in (height, width, channels) order, torch in
  (channels, height, width) order: the rows of the Dense that reads it are reordered. The
  same holds wherever the two models hold features in different orders (a Reshape, a
  permute, a Dense on a feature map's channels): the graph walk works the order out.
- Inputs: an image (an input the Keras model reads first with a convolution or pooling)
  goes channels-last to Keras and channels-first to torch; any other input is the same
  array for both, whatever the torch model does with it.
- Activation functions are not compared: transfer moves weights, it does not check that
  the two models apply the same function to them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from helpers._core import PrecisionWarning
from helpers._layout import LayoutError
from helpers._transfer_axes import Axis, Unknown, described, permutation
from helpers._transfer_graphs import Site, keras_walk, nnet_walk, torch_walk
from helpers.adapters import TensorHandle, framework_of, handles_for, write_all

Arrays = dict[str, np.ndarray]

_ROUTES = {("keras", "torch"), ("torch", "keras"), ("nnet", "torch"), ("torch", "nnet")}
_LABELS = {"keras": "Keras", "torch": "torch", "nnet": "nnet"}
_LEFT_ALONE = {"num_batches_tracked"}


@dataclass(frozen=True)
class Conversion:
    """What a converter may need besides the arrays."""

    keras: Any  # the Keras layer (or the nnet layer) of the pair
    torch: Any  # the torch module
    order: np.ndarray | None  # target position -> Keras position of each input feature


Converter = Callable[[Arrays, Conversion], Arrays]
Getter = str | Callable[[Any, Site], Any]  # an attribute name, or a function of (layer, site)


@dataclass(frozen=True)
class Pair:
    """One row of the table: a Keras (or nnet) layer kind and the torch modules it maps to."""

    kind: str
    keras: tuple[str, ...]  # class names in keras.layers ("nnet" rows: the nnet layer)
    torch: tuple[str, ...]  # class names in torch.nn
    role: str  # how the layer changes its input's axes (see _transfer_graphs)
    settings: dict[str, tuple[Getter, Getter]]  # must agree: (Keras side, torch side)
    to_torch: Converter
    from_torch: Converter
    reorders: bool = False  # the input features may come in another order (Flatten)
    warn: Callable[[Any, Any], str | None] = field(default=lambda keras, torch: None)
    other: str = "keras"  # "nnet" for the nnet rows


def transfer(source_model: Any, target_model: Any) -> None:
    """Copy every weight of ``source_model`` into ``target_model``, converting layouts.

    One model is Keras and the other its PyTorch twin, with the same layers holding
    weights in the same order; or a ``helpers.nnet`` fit and ``nn.Sequential(nn.Linear(p,
    size), nn.Sigmoid(), nn.Linear(size, q), ...)``, either way. Layer pairs:
    Dense/Linear, Conv1D-3D/Conv1d-3d (groups too), Conv1D-3DTranspose/ConvTranspose1d-3d,
    DepthwiseConv1D-2D/Conv(groups=in), BatchNormalization/BatchNorm1d-3d,
    LayerNormalization/LayerNorm, Embedding, LSTM and GRU (Keras ``reset_after=True``).
    Both models' graphs are followed (Keras functional, Sequential or subclassed; torch
    through ``torch.fx``), so features that reach a layer in another order (after a
    Flatten of a feature map, a Reshape, a permute) are reordered to match; the module
    docstring lists the conventions.

    Everything is converted and checked before anything is written. Layers that do not
    correspond, settings or input features that differ, a value the target's dtype cannot
    hold, or target tensors that share memory raise :class:`LayoutError` naming the layers;
    a layer or a graph transfer cannot follow raises ``TypeError``. Either way the target
    stays exactly as it was, also when a write fails part-way. Values that round in the
    target's dtype warn (:class:`PrecisionWarning`). After torch -> nnet, ``predict`` uses
    the new weights, while ``fitted_values`` and ``value`` still describe the fit.

    >>> import keras, torch
    >>> keras_model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> torch_model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    >>> transfer(keras_model, torch_model)
    >>> kernel = keras_model.layers[0].kernel.numpy()
    >>> bool((torch_model[0].weight.detach().numpy() == kernel.T).all())
    True
    """
    route = (framework_of(source_model), framework_of(target_model))
    if route not in _ROUTES:
        raise TypeError(_explain_route(*route))
    sources = _LAYER_READERS[route[0]](source_model)
    targets = _LAYER_READERS[route[1]](target_model)
    if not sources:
        raise LayoutError(f"the {_LABELS[route[0]]} model has no layers with weights to copy")
    if len(sources) != len(targets):
        raise LayoutError(
            f"the models do not correspond: the source has {len(sources)} layers with "
            f"weights ({_listed(sources)}), the target {len(targets)} ({_listed(targets)})"
        )
    models = {route[0]: source_model, route[1]: target_model}
    plan, notes = _checked_plan(models, sources, targets)
    for message, category in notes:
        warnings.warn(message, category, stacklevel=2)
    write_all(plan)


def _checked_plan(
    models: dict[str, Any], sources: list[_Layer], targets: list[_Layer]
) -> tuple[list[tuple[TensorHandle, np.ndarray]], list[tuple[str, type]]]:
    """Every target tensor with the array to write into it, all checked; and the warnings."""
    rows = [_row_of(k, s, t) for k, (s, t) in enumerate(zip(sources, targets, strict=True))]
    torch_layers, other_layers = (
        (sources, targets) if sources[0].framework == "torch" else (targets, sources)
    )
    other = other_layers[0].framework
    other_sites, inputs = _walk_other(models[other], other_layers, rows)
    roles = {id(layer.obj): (k, rows[k].role) for k, layer in enumerate(torch_layers)}
    torch_sites = torch_walk(models["torch"], roles, inputs, _LABELS[other])
    plan, notes = [], []
    for k, (source, target) in enumerate(zip(sources, targets, strict=True)):
        entries, note = _converted(k, rows[k], source, target, other_sites, torch_sites)
        plan += entries
        notes += [note] if note else []
    if targets[0].framework == "torch":
        _check_no_shared_memory(targets)
    return plan, notes + _cast_notes(plan)


def _explain_route(source: str, target: str) -> str:
    hint = ""
    if source == target:
        hint = "; between two models of one framework use helpers.flatten and helpers.restore"
    return f"transfer copies Keras <-> torch and nnet <-> torch, got {source} -> {target}{hint}"


# ---------------------------------------------------------------- layers of each framework


@dataclass(frozen=True)
class _Layer:
    """One layer that holds weights."""

    framework: str
    name: str
    type_name: str
    obj: Any  # the Keras layer, torch module or _NNetLayer
    handles: dict[str, TensorHandle]  # by the layer's own tensor names: "kernel", "weight"...
    row: Pair | None = None  # Keras and nnet layers: their row of the table (torch: None)

    def __str__(self) -> str:
        return f"{_LABELS[self.framework]} {self.name!r} ({self.type_name})"

    def read(self) -> Arrays:
        return {name: handle.read() for name, handle in self.handles.items()}


def _listed(layers: list[_Layer]) -> str:
    return ", ".join(f"{layer.name!r}" for layer in layers)


def _matching(obj: Any, module: Any, names: tuple[str, ...], method: str) -> bool:
    """``obj`` is one of the classes ``names`` in ``module``, its ``method`` not overridden."""
    for name in names:
        cls = getattr(module, name)
        if isinstance(obj, cls) and getattr(type(obj), method) is getattr(cls, method):
            return True
    return False


def _keras_layers(model: Any) -> list[_Layer]:
    """Keras layers with weights, in order, each with its row of the table."""
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"transfer takes a Keras model, got a {type(model).__name__} layer")
    if not model.built:
        raise LayoutError(
            f"Keras model {model.name!r} is not built yet: build it first "
            "(start it with keras.Input, call model.build(input_shape), or call it on a batch)"
        )
    layers = [layer for layer in _keras_leaves(model) if layer.weights]
    owned = {id(variable) for layer in layers for variable in layer.weights}
    stray = [variable.path for variable in model.weights if id(variable) not in owned]
    if stray:
        raise TypeError(
            f"Keras model {model.name!r} holds weights of its own, in no layer: {stray}; "
            "transfer pairs layers, so put them in a layer"
        )
    result = []
    for layer in layers:
        row = _keras_row(layer)
        _, handles = handles_for(layer, "all")
        result.append(
            _Layer(
                framework="keras",
                name=layer.name,
                type_name=type(layer).__name__,
                obj=layer,
                handles={handle.name.rsplit("/", 1)[-1]: handle for handle in handles},
                row=row,
            )
        )
    return result


def _keras_leaves(model: Any) -> Any:
    """Every layer in order, looking inside nested models."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _keras_leaves(layer)
        else:
            yield layer


def _keras_row(layer: Any) -> Pair:
    from keras import layers

    for row in PAIRS:
        if row.other == "keras" and _matching(layer, layers, row.keras, "call"):
            return row
    supported = ", ".join(name for row in PAIRS if row.other == "keras" for name in row.keras)
    raise TypeError(
        f"Keras {layer.name!r} ({type(layer).__name__}) holds weights, but transfer has no "
        f"conversion for it; supported: {supported}"
    )


def _torch_layers(model: Any) -> list[_Layer]:
    """Torch modules that hold parameters or buffers themselves, in ``named_modules`` order."""
    from torch import nn

    result = []
    for name, module in model.named_modules():
        if not [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
            continue
        label = name or "(the model itself)"
        if not any(_matching(module, nn, row.torch, "forward") for row in PAIRS):
            supported = ", ".join(dict.fromkeys(n for row in PAIRS for n in row.torch))
            raise TypeError(
                f"torch {label!r} ({type(module).__name__}) holds weights, but transfer has "
                f"no conversion for it; supported: {supported}"
            )
        _, handles = handles_for(module, "all")
        prefix = f"{name}." if name else ""
        result.append(
            _Layer(
                framework="torch",
                name=label,
                type_name=type(module).__name__,
                obj=module,
                handles={h.name: replace(h, name=prefix + h.name) for h in handles},
            )
        )
    return result


@dataclass(frozen=True)
class _NNetLayer:
    """The hidden or the output layer of an nnet fit."""

    units: tuple[str, ...]  # the units' names, as the adapter names them: "h1", "o1"...


def _nnet_layers(fit: Any) -> list[_Layer]:
    """An nnet fit as two dense layers, laid out by its adapter: each unit's bias, sources."""
    from helpers.adapters.nnet_adapter import unit_layers

    if fit.skip:
        raise TypeError(
            "the nnet fit has skip-layer connections (inputs straight to outputs), which "
            "nn.Sequential(Linear, Sigmoid, Linear) has no place for: fit it with skip=False"
        )
    row = next(row for row in PAIRS if row.other == "nnet")
    return [
        _Layer(
            framework="nnet",
            name=name,
            type_name="NNet",
            obj=_NNetLayer(tuple(handle.name for handle in units)),
            handles={handle.name: handle for handle in units},
            row=row,
        )
        for name, units in zip(("hidden", "output"), unit_layers(fit), strict=True)
    ]


_LAYER_READERS: dict[str, Callable[[Any], list[_Layer]]] = {
    "keras": _keras_layers,
    "torch": _torch_layers,
    "nnet": _nnet_layers,
}


def _walk_other(model: Any, layers: list[_Layer], rows: list[Pair]) -> tuple:
    """The Keras (or nnet) side's call sites and the inputs torch is to be fed."""
    if layers[0].framework == "nnet":
        return nnet_walk(model.n[0], model.n[1])
    roles = {id(layer.obj): (k, rows[k].role) for k, layer in enumerate(layers)}
    return keras_walk(model, roles)


# ---------------------------------------------------------------- pairing and checking


def _row_of(k: int, source: _Layer, target: _Layer) -> Pair:
    """The row of the table for layer pair #k, if the torch module fits it."""
    from torch import nn

    torch_layer, other = (target, source) if target.framework == "torch" else (source, target)
    row = other.row
    if not _matching(torch_layer.obj, nn, row.torch, "forward"):
        raise LayoutError(
            f"layer #{k}: {target} cannot take weights from {source} (a {other.type_name} "
            f"pairs with torch {' or '.join(row.torch)})"
        )
    return row


def _converted(
    k: int, row: Pair, source: _Layer, target: _Layer, other_sites: dict, torch_sites: dict
) -> tuple[list[tuple[TensorHandle, np.ndarray]], tuple[str, type] | None]:
    """The target's handles with the arrays to write into them, all checked; writes nothing."""
    torch_layer, other = (target, source) if target.framework == "torch" else (source, target)
    other_site = _site(k, other, other_sites)
    torch_site = _site(k, torch_layer, torch_sites)
    _check_settings(k, row, other, torch_layer, other_site, torch_site)
    order = _feature_order(k, row, other, torch_layer, other_site, torch_site)
    convert = row.to_torch if target is torch_layer else row.from_torch
    conversion = Conversion(other.obj, torch_layer.obj, order)
    try:
        arrays = convert(source.read(), conversion)
    except ValueError as error:  # a reshape or split that the source's shapes do not allow
        raise LayoutError(f"layer #{k}: {source}'s weights do not fit {target}: {error}") from None
    expected = sorted(set(target.handles) - _LEFT_ALONE)
    if sorted(arrays) != expected:
        raise LayoutError(
            f"layer #{k}: {target} has tensors {expected}, but {source} gives {sorted(arrays)}"
        )
    message = row.warn(other.obj, torch_layer.obj)
    note = (f"layer #{k}: {message}", UserWarning) if message else None
    return [(target.handles[name], array) for name, array in arrays.items()], note


def _site(k: int, layer: _Layer, sites: dict) -> Site:
    """The one way ``layer`` is called (the same at every call), or a clear refusal."""
    calls = sites.get(k, [])
    if not calls:
        raise TypeError(
            f"layer #{k}: {layer} is never called in its model's forward pass, so transfer "
            "cannot tell what its input holds"
        )
    for call in calls:
        if isinstance(call, Unknown):
            raise TypeError(f"layer #{k}: transfer cannot tell what {layer} reads: {call.reason}")
    if any(call != calls[0] for call in calls):
        raise TypeError(f"layer #{k}: {layer} is called on inputs that hold different things")
    return calls[0]


def _check_settings(
    k: int, row: Pair, other: _Layer, torch_layer: _Layer, other_site: Site, torch_site: Site
) -> None:
    """Every setting of the row must agree; None is a value like any other."""
    for name, (other_getter, torch_getter) in row.settings.items():
        mine = _setting(other_getter, other.obj, other_site)
        theirs = _setting(torch_getter, torch_layer.obj, torch_site)
        if not _same(mine, theirs):
            raise LayoutError(
                f"layer #{k}: {other} has {name}={mine!r} but {torch_layer} has "
                f"{name}={theirs!r}; predictions would differ: make them equal"
            )


def _setting(getter: Getter, obj: Any, site: Site) -> Any:
    value = getattr(obj, getter) if isinstance(getter, str) else getter(obj, site)
    return tuple(value) if isinstance(value, list) else value


def _same(mine: Any, theirs: Any) -> bool:
    """Numbers agree to float32 precision; True, False and None only with themselves."""
    exact = (bool, type(None))
    if isinstance(mine, exact) or isinstance(theirs, exact):
        return type(mine) is type(theirs) and mine == theirs
    if isinstance(mine, int | float) and isinstance(theirs, int | float):
        return math.isclose(mine, theirs, rel_tol=1e-6)
    return mine == theirs


def _feature_order(
    k: int, row: Pair, other: _Layer, torch_layer: _Layer, other_site: Site, torch_site: Site
) -> np.ndarray | None:
    """Where each input feature of the torch layer sits in the Keras layer's input."""
    order = None
    for number, ((what, mine), (_, theirs)) in enumerate(
        zip(other_site.reads, torch_site.reads, strict=True)
    ):
        found = permutation(mine, theirs)
        reorderable = number == 0 and row.reorders
        if found is None or not (reorderable or np.array_equal(found, np.arange(found.size))):
            why = _why_not_alike(mine, theirs, found, other.type_name)
            raise LayoutError(
                f"layer #{k}: {other} reads {what}: {described(mine)}, but {torch_layer} "
                f"reads {described(theirs)}: they {why}"
            )
        if number == 0:
            order = found
    return order


def _why_not_alike(mine: Axis, theirs: Axis, found: np.ndarray | None, type_name: str) -> str:
    if mine.size != theirs.size:
        return "differ in size"
    if found is None:
        return "do not hold the same values"
    return f"hold them in another order, which a {type_name} cannot be converted for"


def _check_no_shared_memory(layers: list[_Layer]) -> None:
    """Refuse target tensors that overlap in memory: one write would undo another."""
    spans = []
    for layer in layers:
        for name, handle in layer.handles.items():
            if name in _LEFT_ALONE:
                continue
            tensor = getattr(layer.obj, name)
            if tensor.numel() == 0:
                continue
            steps = zip(tensor.shape, tensor.stride(), strict=True)
            extent = sum((size - 1) * abs(step) for size, step in steps)
            if _overlaps_itself(tensor):
                raise LayoutError(
                    f"torch tensor {handle.name!r} has elements that share memory (an "
                    "expanded tensor?): transfer cannot write different values into them"
                )
            start = tensor.data_ptr()
            spans.append((start, start + (extent + 1) * tensor.element_size(), handle.name))
    spans.sort()
    for (_, end, name), (start, _, other) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise LayoutError(
                f"torch tensors {name!r} and {other!r} share memory (tied weights?): "
                "transfer would write both and the second would overwrite the first; untie "
                "them in the target (or leave one out of its model) first"
            )


def _overlaps_itself(tensor: Any) -> bool:
    """Whether two positions of ``tensor`` are the same memory (a stride-0 dimension...)."""
    steps = zip(tensor.shape, tensor.stride(), strict=True)
    dims = sorted((abs(step), size) for size, step in steps if size > 1)
    reach = 1  # elements spanned by the dimensions with smaller strides
    for step, size in dims:
        if step < reach:
            return True
        reach = step * (size - 1) + reach
    return False


def _cast_notes(plan: list[tuple[TensorHandle, np.ndarray]]) -> list[tuple[str, type]]:
    """Refuse a value the target's dtype cannot hold; note values it rounds."""
    notes = []
    for handle, array in plan:
        if handle.dtype not in ("float16", "bfloat16", "float32", "float64"):
            continue
        array = np.asarray(array)
        cast = _cast(array, handle.dtype)
        finite = np.isfinite(array)
        overflow = finite & ~np.isfinite(cast)
        if overflow.any():
            value = array[overflow].flat[0]
            raise LayoutError(
                f"tensor {handle.name!r}: {value:g} does not fit {handle.dtype} (it would "
                f"become inf; {int(overflow.sum())} values overflow): nothing was written"
            )
        rounded = finite & (cast != array)
        if rounded.any():
            notes.append(
                (
                    f"tensor {handle.name!r}: {int(rounded.sum())} values rounded when cast "
                    f"from {array.dtype} to {handle.dtype}",
                    PrecisionWarning,
                )
            )
    return notes


def _cast(array: np.ndarray, dtype: str) -> np.ndarray:
    """``array`` as the target dtype would hold it (bfloat16: float32's top 16 bits)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype != "bfloat16":
            return array.astype(dtype)
        bits = array.astype(np.float32).view(np.uint32)
        rounded = (bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) & np.uint32(0xFFFF0000)
        return rounded.view(np.float32)


# ---------------------------------------------------------------- settings


def _constant(value: Any) -> Callable[[Any, Site], Any]:
    return lambda obj, site: value


def _has_bias(module: Any, site: Site) -> bool:
    return module.bias is not None


def _made(obj: Any, site: Site) -> tuple[int, ...]:
    return site.made


def _spatial_inputs(site: Site) -> list[tuple[int, bool]]:
    """(size, fixed) of each spatial axis a convolution reads."""
    return [
        (axis.size, all(factor.fixed for part in axis.parts for factor in part))
        for what, axis in site.reads
        if what.startswith("spatial")
    ]


def _spans(kernel_size: tuple[int, ...], dilation: tuple[int, ...]) -> list[int]:
    """How many input positions each kernel covers along each axis."""
    return [(k - 1) * d + 1 for k, d in zip(kernel_size, dilation, strict=True)]


def _keras_padding(layer: Any, site: Site) -> tuple[int, ...] | str:
    """Zeros a Keras convolution pads before each spatial axis (Keras 'same' is TF's)."""
    if layer.padding == "valid":
        return (0,) * len(layer.kernel_size)
    spans = _spans(layer.kernel_size, layer.dilation_rate)
    if layer.padding == "causal":
        return tuple(span - 1 for span in spans)
    before = []
    for (size, fixed), span, stride in zip(
        _spatial_inputs(site), spans, layer.strides, strict=True
    ):
        if stride > 1 and not fixed:
            return f"'same' with strides {tuple(layer.strides)} on an input of no fixed size"
        total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
        before.append(total // 2)
    return tuple(before)


def _torch_padding(module: Any, site: Site) -> tuple[int, ...] | str:
    if module.padding_mode != "zeros":
        return f"{module.padding_mode} padding"
    if module.padding == "valid":
        return (0,) * len(module.kernel_size)
    if module.padding == "same":
        return tuple((span - 1) // 2 for span in _spans(module.kernel_size, module.dilation))
    return tuple(module.padding)


def _keras_cropping(layer: Any, site: Site) -> tuple[int, ...]:
    """What a Keras transposed convolution crops from the start of its full output."""
    if layer.padding == "valid":
        return (0,) * len(layer.kernel_size)
    spans = _spans(layer.kernel_size, layer.dilation_rate)
    return tuple(
        max(span - stride, 0) // 2 for span, stride in zip(spans, layer.strides, strict=True)
    )


def _torch_cropping(module: Any, site: Site) -> tuple[int, ...] | str:
    if module.padding_mode != "zeros":
        return f"{module.padding_mode} padding"
    return tuple(module.padding)


def _depthwise_groups(layer: Any, site: Site) -> int:
    return layer.kernel.shape[-2]  # (*spatial, in, multiplier): one group per input channel


def _activation(name: str) -> Callable[[Any, Site], str]:
    return lambda layer, site: getattr(layer, name).__name__


_GEOMETRY: dict[str, tuple[Getter, Getter]] = {
    "kernel_size": ("kernel_size", "kernel_size"),
    "strides": ("strides", "stride"),
    "dilation": ("dilation_rate", "dilation"),
    "use_bias": ("use_bias", _has_bias),
    "output size": (_made, _made),
}

_RECURRENT: dict[str, tuple[Getter, Getter]] = {
    "units": ("units", "hidden_size"),
    "use_bias": ("use_bias", "bias"),
    "activation": (_activation("activation"), _constant("tanh")),
    "recurrent_activation": (_activation("recurrent_activation"), _constant("sigmoid")),
    "go_backwards": ("go_backwards", _constant(False)),
    "stateful": ("stateful", _constant(False)),
    "num_layers": (_constant(1), "num_layers"),
    "bidirectional": (_constant(False), "bidirectional"),
    "proj_size": (_constant(0), "proj_size"),
}


def _batchnorm_momentum(layer: Any, module: Any) -> str | None:
    # Keras keeps `momentum` of the old statistics per batch, torch takes `momentum` of the new.
    if module.momentum is not None and math.isclose(1 - layer.momentum, module.momentum):
        return None
    return (
        f"Keras {layer.name!r} (BatchNormalization) has momentum={layer.momentum}, torch's "
        f"momentum={1 - layer.momentum:g}, but torch {type(module).__name__} has "
        f"momentum={module.momentum}: predictions agree, but training on would update the "
        "moving statistics differently"
    )


# ---------------------------------------------------------------- conversions


def _bias(arrays: Arrays) -> Arrays:
    return {"bias": arrays["bias"]} if "bias" in arrays else {}


def _inverse(order: np.ndarray) -> np.ndarray:
    return np.argsort(order)


def _dense_to_torch(keras_arrays: Arrays, conversion: Conversion) -> Arrays:
    kernel = keras_arrays["kernel"][conversion.order]  # (in, out), rows in torch's order
    return {"weight": kernel.T, **_bias(keras_arrays)}


def _dense_from_torch(torch_arrays: Arrays, conversion: Conversion) -> Arrays:
    kernel = torch_arrays["weight"].T[_inverse(conversion.order)]
    return {"kernel": kernel, **_bias(torch_arrays)}


def _conv_to_torch(keras_arrays: Arrays, _: Conversion) -> Arrays:
    # (*spatial, in / groups, out) -> (out, in / groups, *spatial); a transposed
    # convolution's (*spatial, out, in) -> (in, out / groups, *spatial) is the same move.
    kernel = keras_arrays["kernel"]
    rank = kernel.ndim
    return {"weight": kernel.transpose(rank - 1, rank - 2, *range(rank - 2)), **_bias(keras_arrays)}


def _conv_from_torch(torch_arrays: Arrays, _: Conversion) -> Arrays:
    weight = torch_arrays["weight"]
    return {"kernel": weight.transpose(*range(2, weight.ndim), 1, 0), **_bias(torch_arrays)}


def _depthwise_to_torch(keras_arrays: Arrays, _: Conversion) -> Arrays:
    # Keras (*spatial, in, multiplier): output channel c * multiplier + m, as torch's groups.
    kernel = keras_arrays["kernel"]
    weight = np.moveaxis(kernel.reshape(*kernel.shape[:-2], -1), -1, 0)
    return {"weight": weight[:, None], **_bias(keras_arrays)}  # one input channel per group


def _depthwise_from_torch(torch_arrays: Arrays, conversion: Conversion) -> Arrays:
    weight = torch_arrays["weight"]  # (in * multiplier, 1, *spatial)
    kernel = np.moveaxis(weight.reshape(weight.shape[0], *weight.shape[2:]), 0, -1)
    return {"kernel": kernel.reshape(conversion.keras.kernel.shape), **_bias(torch_arrays)}


def _lstm_to_torch(keras_arrays: Arrays, conversion: Conversion) -> Arrays:
    # Same gate order: Keras (i, f, c, o) is torch's (i, f, g, o).
    converted = {
        "weight_ih_l0": keras_arrays["kernel"][conversion.order].T,
        "weight_hh_l0": keras_arrays["recurrent_kernel"].T,
    }
    if "bias" in keras_arrays:  # torch adds two biases; one carries it all
        bias = keras_arrays["bias"]
        converted |= {"bias_ih_l0": bias, "bias_hh_l0": np.zeros_like(bias)}
    return converted


def _lstm_from_torch(torch_arrays: Arrays, conversion: Conversion) -> Arrays:
    converted = {
        "kernel": torch_arrays["weight_ih_l0"].T[_inverse(conversion.order)],
        "recurrent_kernel": torch_arrays["weight_hh_l0"].T,
    }
    if "bias_ih_l0" in torch_arrays:
        converted["bias"] = torch_arrays["bias_ih_l0"] + torch_arrays["bias_hh_l0"]
    return converted


def _swap_z_r(array: np.ndarray) -> np.ndarray:
    """Keras' GRU gate blocks (z, r, h) <-> torch's (r, z, n) on the last axis; self-inverse."""
    z, r, h = np.split(array, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1)


def _gru_to_torch(keras_arrays: Arrays, conversion: Conversion) -> Arrays:
    converted = {
        "weight_ih_l0": _swap_z_r(keras_arrays["kernel"][conversion.order]).T,
        "weight_hh_l0": _swap_z_r(keras_arrays["recurrent_kernel"]).T,
    }
    if "bias" in keras_arrays:  # (2, 3 * units): the input bias, then the recurrent bias
        input_bias, recurrent_bias = _swap_z_r(keras_arrays["bias"])
        converted |= {"bias_ih_l0": input_bias, "bias_hh_l0": recurrent_bias}
    return converted


def _gru_from_torch(torch_arrays: Arrays, conversion: Conversion) -> Arrays:
    converted = {
        "kernel": _swap_z_r(torch_arrays["weight_ih_l0"].T)[_inverse(conversion.order)],
        "recurrent_kernel": _swap_z_r(torch_arrays["weight_hh_l0"].T),
    }
    if "bias_ih_l0" in torch_arrays:
        biases = np.stack([torch_arrays["bias_ih_l0"], torch_arrays["bias_hh_l0"]])
        converted["bias"] = _swap_z_r(biases)
    return converted


def _renaming(names: dict[str, str]) -> tuple[Converter, Converter]:
    """Converters for arrays that only change names (Keras name -> torch name).

    The arrays' first axis follows the input features, reordered as the pair needs.
    """
    back = {torch_name: keras_name for keras_name, torch_name in names.items()}

    def to_torch(arrays: Arrays, conversion: Conversion) -> Arrays:
        order = conversion.order
        return {names[k]: v if order is None else v[order] for k, v in arrays.items()}

    def from_torch(arrays: Arrays, conversion: Conversion) -> Arrays:
        order = None if conversion.order is None else _inverse(conversion.order)
        return {back[k]: v if order is None else v[order] for k, v in arrays.items() if k in back}

    return to_torch, from_torch


def _nnet_to_torch(nnet_arrays: Arrays, conversion: Conversion) -> Arrays:
    units = np.stack([nnet_arrays[name] for name in conversion.keras.units])
    return {"weight": units[:, 1:][:, conversion.order], "bias": units[:, 0]}


def _nnet_from_torch(torch_arrays: Arrays, conversion: Conversion) -> Arrays:
    weight = torch_arrays["weight"][:, _inverse(conversion.order)]
    units = np.column_stack([torch_arrays["bias"], weight])  # per unit: its bias, its sources
    return dict(zip(conversion.keras.units, units, strict=True))


_BATCHNORM_NAMES = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}

# ---------------------------------------------------------------- the table

PAIRS: list[Pair] = [
    Pair(
        kind="dense",
        keras=("Dense",),
        torch=("Linear",),
        role="dense",
        settings={"units": ("units", "out_features"), "use_bias": ("use_bias", _has_bias)},
        to_torch=_dense_to_torch,
        from_torch=_dense_from_torch,
        reorders=True,
    ),
    Pair(
        kind="convolution",
        keras=("Conv1D", "Conv2D", "Conv3D"),
        torch=("Conv1d", "Conv2d", "Conv3d"),
        role="convolution",
        settings={
            "filters": ("filters", "out_channels"),
            "groups": ("groups", "groups"),
            "padding before": (_keras_padding, _torch_padding),
            **_GEOMETRY,
        },
        to_torch=_conv_to_torch,
        from_torch=_conv_from_torch,
    ),
    Pair(
        kind="depthwise convolution",
        keras=("DepthwiseConv1D", "DepthwiseConv2D"),
        torch=("Conv1d", "Conv2d"),
        role="convolution",
        settings={
            "depth_multiplier": (
                "depth_multiplier",
                lambda module, site: module.out_channels // module.in_channels,
            ),
            "groups": (_depthwise_groups, "groups"),
            "padding before": (_keras_padding, _torch_padding),
            **_GEOMETRY,
        },
        to_torch=_depthwise_to_torch,
        from_torch=_depthwise_from_torch,
    ),
    Pair(
        kind="transposed convolution",
        keras=("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"),
        torch=("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
        role="convolution",
        settings={
            "filters": ("filters", "out_channels"),
            "groups": (_constant(1), "groups"),
            "cropping before": (_keras_cropping, _torch_cropping),
            **_GEOMETRY,
        },
        to_torch=_conv_to_torch,
        from_torch=_conv_from_torch,
    ),
    Pair(
        kind="batch normalisation",
        keras=("BatchNormalization",),
        torch=("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"),
        role="normalisation",
        settings={
            "epsilon": ("epsilon", "eps"),
            "center": ("center", "affine"),
            "scale": ("scale", "affine"),
            "moving statistics": (_constant(True), "track_running_stats"),
        },
        to_torch=_renaming(_BATCHNORM_NAMES)[0],
        from_torch=_renaming(_BATCHNORM_NAMES)[1],
        reorders=True,
        warn=_batchnorm_momentum,
    ),
    Pair(
        kind="layer normalisation",
        keras=("LayerNormalization",),
        torch=("LayerNorm",),
        role="normalisation",
        settings={
            "epsilon": ("epsilon", "eps"),
            "center": ("center", _has_bias),
            "scale": ("scale", "elementwise_affine"),
            "rms_scaling": ("rms_scaling", _constant(False)),
        },
        to_torch=_renaming({"gamma": "weight", "beta": "bias"})[0],
        from_torch=_renaming({"gamma": "weight", "beta": "bias"})[1],
        reorders=True,
    ),
    Pair(
        kind="embedding",
        keras=("Embedding",),
        torch=("Embedding",),
        role="embedding",
        settings={
            "input_dim": ("input_dim", "num_embeddings"),
            "output_dim": ("output_dim", "embedding_dim"),
            "max_norm": (_constant(None), "max_norm"),  # torch renormalises rows as it reads
            "mask_zero": ("mask_zero", _constant(False)),
        },
        to_torch=_renaming({"embeddings": "weight"})[0],
        from_torch=_renaming({"embeddings": "weight"})[1],
    ),
    Pair(
        kind="LSTM",
        keras=("LSTM",),
        torch=("LSTM",),
        role="recurrent",
        settings=_RECURRENT,
        to_torch=_lstm_to_torch,
        from_torch=_lstm_from_torch,
        reorders=True,
    ),
    Pair(
        kind="GRU",
        keras=("GRU",),
        torch=("GRU",),
        role="recurrent",
        settings={**_RECURRENT, "reset_after": ("reset_after", _constant(True))},
        to_torch=_gru_to_torch,
        from_torch=_gru_from_torch,
        reorders=True,
    ),
    Pair(
        kind="nnet layer",
        keras=("_NNetLayer",),
        torch=("Linear",),
        role="dense",
        settings={
            "units": (lambda layer, site: len(layer.units), "out_features"),
            "use_bias": (_constant(True), _has_bias),
        },
        to_torch=_nnet_to_torch,
        from_torch=_nnet_from_torch,
        reorders=True,
        other="nnet",
    ),
]
