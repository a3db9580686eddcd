"""Follow a Keras, torch or nnet model's real graph, saying what every tensor's axes hold.

Each walk records, for every call of a layer with weights, a :class:`Site`: the axes its
weights are indexed by (a Dense's input features, a convolution's channels and spatial
axes...), described with :mod:`helpers._transfer_axes` in names both walks share. What a
layer with weights does to the axes is its *role* (:data:`ROLES`); what layers without
weights do (Flatten, Reshape, pooling, permute, indexing, concatenation...) is in the rule
tables below. Anything else makes an :class:`~helpers._transfer_axes.Unknown`.

- Keras: the functional graph of a functional or Sequential model, with every layer's
  output shape from ``compute_output_spec``; a subclassed model is traced by calling its
  ``call`` on ``keras.Input`` tensors of the shapes it was built with.
- torch: ``torch.fx`` symbolic tracing (the real forward, whatever order modules were
  registered in), with every node's shape from a run on meta tensors: nothing of the
  model's own is touched, a copy of each module is made with empty meta tensors.
- Inputs: an input that the Keras model reads first (activations aside) with a
  channels-last convolution or pooling is an image: torch takes it channels-first. Any
  other input is the same array for both.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from helpers._layout import LayoutError
from helpers._transfer_axes import (
    BATCH,
    Axes,
    Axis,
    Factor,
    Unknown,
    Value,
    axis_of,
    broadcast,
    concatenated,
    indexed,
    permuted,
    reduced,
    resampled,
    reshaped,
    unknown_among,
)

# The batch size of the meta run: a prime no model dimension is likely to equal.
_BATCH_SIZE = 1009
# The size given to an input dimension of no fixed size (Keras' None).
_FREE_SIZE = 64


@dataclass(frozen=True)
class Site:
    """One call of a layer with weights: what its weights are indexed by, what it makes."""

    reads: tuple[tuple[str, Axis], ...]  # (what, axis): ("features", ...), ("channels", ...)
    made: tuple[int, ...] = ()  # the sizes of the spatial axes it makes (convolutions)


@dataclass(frozen=True)
class InputSpec:
    """One input of the Keras (or nnet) model, as the torch walk needs to know it."""

    axes: Axes
    image: bool  # Keras reads it first with a channels-last convolution or pooling
    tokens: bool = False  # integer ids (an Embedding reads it)


Sites = dict[int, list[Site | Unknown]]  # layer pair index -> one entry per call


# ---------------------------------------------------------------- roles


def _features(value: Value, size: int, k: int) -> tuple[Value, Site | Unknown]:
    """Dense/Linear: reads the last axis, makes a new one."""
    if isinstance(value, Unknown):
        return value, value
    site = Site((("features", value.axes[-1]),))
    return Axes(value.axes[:-1] + (axis_of(Factor(f"L{k}", size)),)), site


def _convolution(
    value: Value, channel: int, spatial: Sequence[int], shape: Sequence[int], k: int
) -> tuple[Value, Site | Unknown]:
    """Convolutions: read the channel and spatial axes, make new ones in their places."""
    if isinstance(value, Unknown):
        return value, value
    axes = list(value.axes)
    reads = [("channels", axes[channel])]
    axes[channel] = axis_of(Factor(f"L{k}", shape[channel]))
    for number, dim in enumerate(spatial):
        reads.append((f"spatial axis {number + 1}", axes[dim]))
        fixed = all(factor.fixed for part in axes[dim].parts for factor in part)
        axes[dim] = axis_of(Factor(f"L{k}.s{number}", shape[dim], fixed))
    made = tuple(shape[dim] for dim in spatial)
    return Axes(tuple(axes)), Site(tuple(reads), made)


def _normalisation(value: Value, dims: Sequence[int]) -> tuple[Value, Site | Unknown]:
    """Batch or layer normalisation: reads the axes its parameters follow, changes none."""
    if isinstance(value, Unknown):
        return value, value
    labels = ["features"] + [f"normalised axis {n + 2}" for n in range(len(dims) - 1)]
    return value, Site(tuple(zip(labels, (value.axes[dim] for dim in dims), strict=True)))


def _embedding(value: Value, size: int, k: int) -> tuple[Value, Site | Unknown]:
    """Embedding: reads token ids (no axis), adds a feature axis."""
    if isinstance(value, Unknown):
        return value, value
    return Axes(value.axes + (axis_of(Factor(f"L{k}", size)),)), Site(())


def _recurrent(value: Value, batch: int, time: int, k: int, size: int) -> tuple:
    """LSTM/GRU: reads features at each time step; gives (sequence axes, one step's axes)."""
    if isinstance(value, Unknown) or len(value) != 3:
        found = value if isinstance(value, Unknown) else Unknown("an unbatched sequence")
        return found, found, found
    axes = value.axes
    site = Site((("features", axes[2]), ("time steps", axes[time]), ("batch", axes[batch])))
    units = axis_of(Factor(f"L{k}", size))
    sequence = [None, None, units]
    sequence[batch], sequence[time] = axes[batch], axes[time]
    return Axes(tuple(sequence)), Axes((axes[batch], units)), site


# ---------------------------------------------------------------- Keras


def _keras_role(role: str, layer: Any, value: Value, shape: Any, k: int) -> tuple[Any, Any]:
    """(output value(s), Site) of one call of a Keras layer with weights."""
    if role == "dense":
        return _features(value, shape[-1], k)
    if role == "convolution":
        rank = len(shape)
        if layer.data_format == "channels_last":
            return _convolution(value, rank - 1, range(1, rank - 1), shape, k)
        return _convolution(value, 1, range(2, rank), shape, k)
    if role == "normalisation":
        axis = layer.axis if isinstance(layer.axis, list) else [layer.axis]
        return _normalisation(value, [dim % len(shape) for dim in axis])
    if role == "embedding":
        return _embedding(value, shape[-1], k)
    if role == "recurrent":
        outputs = shape if isinstance(shape, list) else [shape]
        sequence, last, site = _recurrent(value, 0, 1, k, outputs[0][-1])
        result = sequence if layer.return_sequences else last
        if layer.return_state:
            return [result] + [last] * (len(outputs) - 1), site
        return result, site
    raise ValueError(f"unknown role {role!r}")


def _keras_data_format(op: Any) -> str:
    return getattr(op, "data_format", "channels_last")


def _keras_spatial(op: Any, rank: int) -> range:
    return range(1, rank - 1) if _keras_data_format(op) == "channels_last" else range(2, rank)


def _keras_flatten(op: Any, value: Value, shape: Any, where: str) -> Value:
    channels_first = _keras_data_format(op) == "channels_first" and len(shape) > 1
    if channels_first and isinstance(value, Axes):  # Keras moves channels last, then flattens
        value = permuted(value, (0, *range(2, len(value)), 1))
    return reshaped(value, shape, where)


def _keras_resample(op: Any, value: Value, shape: Any, where: str) -> Value:
    dims = _keras_spatial(op, len(shape))
    return resampled(value, dims, [shape[dim] for dim in dims], where)


def _keras_global_pool(op: Any, value: Value, shape: Any, where: str) -> Value:
    if isinstance(value, Unknown):
        return value
    return reduced(value, _keras_spatial(op, len(value)), op.keepdims, where)


_KERAS_ELEMENTWISE = {
    "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
    "ActivityRegularization", "Identity", "Rescaling",
}  # fmt: skip
_KERAS_MERGE = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}
_KERAS_RESAMPLE = {
    f"{kind}{d}D"
    for kind in ("MaxPooling", "AveragePooling", "UpSampling", "ZeroPadding", "Cropping")
    for d in (1, 2, 3)
}
_KERAS_GLOBAL_POOL = {f"Global{kind}Pooling{d}D" for kind in ("Average", "Max") for d in (1, 2, 3)}

# Keras layers (and keras.ops operations) without weights: class name -> rule
_KERAS_RULES: dict[str, Callable[[Any, list, Any, str], Value]] = {
    "Flatten": lambda op, args, shape, where: _keras_flatten(op, args[0], shape, where),
    "Reshape": lambda op, args, shape, where: reshaped(args[0], shape, where),
    "ExpandDims": lambda op, args, shape, where: reshaped(args[0], shape, where),
    "Squeeze": lambda op, args, shape, where: reshaped(args[0], shape, where),
    "Permute": lambda op, args, shape, where: permuted(args[0], (0, *op.dims)),
    "Transpose": lambda op, args, shape, where: (
        permuted(args[0], op.axes if op.axes is not None else range(len(shape))[::-1])
    ),
    "Concatenate": lambda op, args, shape, where: concatenated(args[0], op.axis, where),
    **{name: lambda op, args, shape, where: args[0] for name in _KERAS_ELEMENTWISE},
    **{name: lambda op, args, shape, where: broadcast(args[0], where) for name in _KERAS_MERGE},
    **{name: lambda op, a, shape, where: _keras_resample(op, a[0], shape, where)
       for name in _KERAS_RESAMPLE},
    **{name: lambda op, a, shape, where: _keras_global_pool(op, a[0], shape, where)
       for name in _KERAS_GLOBAL_POOL},
}  # fmt: skip


def _keras_reads_channels(op: Any, role: str | None) -> bool | None:
    """True: reads an image channels-last (convolution, pooling); None: elementwise."""
    name = type(op).__name__
    if role is None and name in _KERAS_ELEMENTWISE:
        return None
    if role == "convolution" or (role is None and name in _KERAS_RESAMPLE | _KERAS_GLOBAL_POOL):
        return _keras_data_format(op) == "channels_last"
    return False


@dataclass
class _KerasGraph:
    inputs: list[Any]  # KerasTensor
    nodes: list[Any]  # keras Node, in an order that runs


def keras_walk(model: Any, roles: dict[int, tuple[int, str]]) -> tuple[Sites, list[InputSpec]]:
    """Every call site of the layers in ``roles`` (id(layer) -> (pair index, role))."""
    with _keras_graph(model, None) as graph:
        specs, values = [], []
        for number, tensor in enumerate(graph.inputs):
            shape = tuple(tensor.shape)
            factors = [
                Factor(f"x{number}.a{dim}", size or _FREE_SIZE, size is not None)
                for dim, size in enumerate(shape[1:])
            ]
            values.append(Axes((BATCH, *(axis_of(factor) for factor in factors))))
        sites: Sites = {}
        concrete = [_concrete(v, t) for v, t in zip(values, graph.inputs, strict=True)]
        _keras_run(graph, values, concrete, roles, sites)
        for tensor, value in zip(graph.inputs, values, strict=True):
            first = _first_readers(
                tensor,
                lambda t: _keras_readers(graph, t),
                partial(_keras_first_reader, roles=roles),
                lambda node: node.outputs,
            )
            image = len(value) >= 3 and bool(first) and all(kind == "image" for kind in first)
            tokens = "int" in str(tensor.dtype) or "tokens" in first
            specs.append(InputSpec(value, image, tokens))
    return sites, specs


def _keras_first_reader(node: Any, roles: dict) -> str | None:
    """How a Keras node reads an input: "image", "tokens", "other"; None: elementwise."""
    role = roles.get(id(node.operation), (0, None))[1]
    if role == "embedding":
        return "tokens"
    reads_channels = _keras_reads_channels(node.operation, role)
    return None if reads_channels is None else "image" if reads_channels else "other"


def _first_readers(
    start: Any,
    readers: Callable[[Any], list],
    kind: Callable[[Any], str | None],
    outputs: Callable[[Any], Iterable],
) -> list[str]:
    """The kinds of the first nodes reading ``start``, looking through elementwise ones."""
    found, seen, queue = [], set(), [start]
    while queue:
        for node in readers(queue.pop()):
            if id(node) in seen:
                continue
            seen.add(id(node))
            verdict = kind(node)
            if verdict is None:
                queue.extend(outputs(node))
            else:
                found.append(verdict)
    return found


def _keras_readers(graph: _KerasGraph, tensor: Any) -> list[Any]:
    return [node for node in graph.nodes if any(t is tensor for t in node.input_tensors)]


def _concrete(value: Value, tensor: Any) -> Any:
    """A KerasTensor shaped like ``value`` (None dimensions made concrete)."""
    import keras

    shape = value.shape if isinstance(value, Axes) else tuple(tensor.shape)
    return keras.KerasTensor(shape, dtype=tensor.dtype)


def _keras_run(
    graph: _KerasGraph, values: list, specs: list, roles: dict, sites: Sites
) -> tuple[list, list]:
    """Run the graph on descriptions (and concrete shapes): the outputs' values and shapes."""
    import keras

    known = {id(t): v for t, v in zip(graph.inputs, values, strict=True)}
    shapes = {id(t): s for t, s in zip(graph.inputs, specs, strict=True)}
    for node in graph.nodes:
        op = node.operation
        args, kwargs = node.arguments.fill_in(known)
        spec_args, spec_kwargs = node.arguments.fill_in(shapes)
        where = f"Keras {op.name!r} ({type(op).__name__})"
        if isinstance(op, keras.Model):
            flat = keras.tree.flatten((args, kwargs))
            inner_values = [v for v in flat if isinstance(v, Axes | Unknown)]
            flat_specs = keras.tree.flatten((spec_args, spec_kwargs))
            inner_specs = [s for s in flat_specs if isinstance(s, keras.KerasTensor)]
            with _keras_graph(op, [tuple(s.shape) for s in inner_specs]) as inner:
                outputs, out_specs = _keras_run(inner, inner_values, inner_specs, roles, sites)
        else:
            out_specs = op.compute_output_spec(*spec_args, **spec_kwargs)
            shape = keras.tree.map_structure(lambda s: tuple(s.shape), out_specs)
            if id(op) in roles:
                k, role = roles[id(op)]
                outputs, site = _keras_role(role, op, args[0], shape, k)
                sites.setdefault(k, []).append(site)
            elif type(op).__name__ in _KERAS_RULES and type(op).__module__.startswith("keras"):
                outputs = _KERAS_RULES[type(op).__name__](op, list(args), shape, where)
            else:
                outputs = unknown_among(*args) or Unknown(
                    f"{where}, which transfer does not follow"
                )
        flat_outputs = keras.tree.flatten(outputs) if isinstance(outputs, list | tuple) else []
        for number, tensor in enumerate(node.outputs):
            if isinstance(outputs, list | tuple):
                known[id(tensor)] = flat_outputs[number]
            else:
                known[id(tensor)] = outputs
        for tensor, spec in zip(node.outputs, keras.tree.flatten(out_specs), strict=True):
            shapes[id(tensor)] = spec
    outputs = [known[id(tensor)] for tensor in graph.outputs]
    return outputs, [shapes[id(tensor)] for tensor in graph.outputs]


class _keras_graph:  # noqa: N801 - used as a context manager, like a function
    """The graph of a functional or Sequential model; a subclassed one, traced for the walk.

    Tracing calls the model's ``call`` on ``keras.Input`` tensors, which adds nodes to its
    layers; they are removed again on exit.
    """

    def __init__(self, model: Any, shapes: list[tuple] | None) -> None:
        self.model, self.shapes, self.saved = model, shapes, []

    def __enter__(self) -> _KerasGraph:
        functional = getattr(self.model, "_functional", self.model)  # Sequential keeps one
        if hasattr(functional, "_nodes_by_depth"):
            return _graph_of(functional)
        return self._traced()

    def _traced(self) -> _KerasGraph:
        import keras

        model = self.model
        shapes = self.shapes or [
            (None, *shape[1:]) for shape in getattr(model, "_build_shapes_dict", {}).values()
        ]
        if not shapes:
            raise TypeError(
                f"Keras model {model.name!r} has no graph transfer can follow (a Sequential "
                "built without an input shape?): start it with keras.Input"
            )
        for layer in model._flatten_layers(include_self=True, recursive=True):
            self.saved.append((layer, list(layer._inbound_nodes), list(layer._outbound_nodes)))
        inputs = [keras.Input(batch_shape=(None, *shape[1:])) for shape in shapes]
        try:
            outputs = model.call(*inputs)
        except Exception as error:
            raise TypeError(
                f"Keras model {model.name!r} is subclassed and transfer cannot follow its "
                f"call() on symbolic inputs of shapes {shapes}: {error}; rebuild it with the "
                "functional API or Sequential"
            ) from None
        return _graph_of(keras.Model(inputs, outputs))

    def __exit__(self, *exc: object) -> None:
        for layer, inbound, outbound in self.saved:
            layer._inbound_nodes[:], layer._outbound_nodes[:] = inbound, outbound


def _graph_of(functional: Any) -> _KerasGraph:
    by_depth = functional._nodes_by_depth
    nodes = [
        node
        for depth in sorted(by_depth, reverse=True)
        for node in by_depth[depth]
        if node.operation is not None and not node.is_input
    ]
    graph = _KerasGraph(list(functional.inputs), nodes)
    graph.outputs = list(functional.outputs)  # type: ignore[attr-defined]
    return graph


# ---------------------------------------------------------------- nnet


def nnet_walk(n_inputs: int, size: int) -> tuple[Sites, list[InputSpec]]:
    """An nnet fit is fixed: inputs -> hidden units -> outputs, all plain features."""
    inputs = axis_of(Factor("x0.a0", n_inputs))
    hidden = axis_of(Factor("L0", size))
    sites: Sites = {0: [Site((("features", inputs),))], 1: [Site((("features", hidden),))]}
    return sites, [InputSpec(Axes((BATCH, inputs)), image=False)]


# ---------------------------------------------------------------- torch


def _torch_role(role: str, module: Any, value: Value, shape: Any, k: int) -> tuple[Any, Any]:
    """(output value(s), Site) of one call of a torch module with weights."""
    if role == "dense":
        return _features(value, shape[-1], k)
    if role == "convolution":
        rank, spatial = len(shape), module.weight.dim() - 2
        return _convolution(value, rank - spatial - 1, range(rank - spatial, rank), shape, k)
    if role == "normalisation":
        if isinstance(value, Unknown):
            return value, value
        if type(module).__name__.startswith("BatchNorm"):
            return _normalisation(value, [1])
        count = len(module.normalized_shape)
        return _normalisation(value, range(len(value) - count, len(value)))
    if role == "embedding":
        return _embedding(value, shape[-1], k)
    if role == "recurrent":
        batch, time = (0, 1) if module.batch_first else (1, 0)
        output_shape, state_shapes = shape
        sequence, last, site = _recurrent(value, batch, time, k, output_shape[-1])
        if isinstance(sequence, Unknown):
            return (sequence, sequence), site
        layers = axis_of(Factor(f"L{k}.layers", _first(state_shapes)[0]))
        state = Axes((layers, *last.axes))
        lstm = isinstance(state_shapes[0], tuple)  # (h, c) rather than h alone
        return (sequence, (state, state) if lstm else state), site
    raise ValueError(f"unknown role {role!r}")


def _first(shapes: Any) -> tuple:
    return shapes[0] if isinstance(shapes, tuple) and isinstance(shapes[0], tuple) else shapes


def torch_walk(
    model: Any, roles: dict[int, tuple[int, str]], inputs: list[InputSpec], other: str
) -> Sites:
    """Every call site of the modules in ``roles``, the model fed ``inputs``."""
    import torch

    graph_module = _traced(model, roles)
    placeholders = [n for n in graph_module.graph.nodes if n.op == "placeholder"]
    required = [node for node in placeholders if not node.args]
    if len(required) != len(inputs):
        raise LayoutError(
            f"the models do not correspond: the {other} model takes {len(inputs)} inputs, "
            f"the torch model's forward {len(required)} ({', '.join(n.name for n in required)})"
        )
    values, examples = {}, []
    for node, spec in zip(required, inputs, strict=True):
        value = spec.axes
        if spec.image:  # channels-last for Keras, so channels-first for torch
            value = permuted(value, (0, len(value) - 1, *range(1, len(value) - 1)))
        values[node] = value
        shape = [_BATCH_SIZE if size is None else size for size in value.shape]
        dtype = torch.int64 if spec.tokens else torch.float32
        examples.append(torch.empty(shape, dtype=dtype, device="meta"))
    for node in placeholders:
        if node.args:
            values[node] = node.args[0]
    shown = ", ".join(
        f"{tuple(example.shape[1:])}"
        + (f" (the {other} model's {spec.axes.shape[1:]} channels first)" if spec.image else "")
        for example, spec in zip(examples, inputs, strict=True)
    )
    results = _meta_run(
        graph_module, examples, f"one sample shaped like the {other} model's: {shown}"
    )
    sites: Sites = {}
    for node in graph_module.graph.nodes:
        if node.op in ("placeholder", "output"):
            continue
        values[node] = _torch_node(graph_module, node, values, results[node], roles, sites)
    return sites


def _traced(model: Any, roles: dict[int, tuple[int, str]]) -> Any:
    """The model's forward as a torch.fx graph, modules with weights kept whole."""
    import torch
    from torch import fx

    class Tracer(fx.Tracer):
        def is_leaf_module(self, module: torch.nn.Module, name: str) -> bool:
            return id(module) in roles or super().is_leaf_module(module, name)

    _check_no_hooks(model)
    root = torch.nn.Sequential(model) if id(model) in roles else model
    try:
        graph = Tracer().trace(root)
    except Exception as error:
        raise TypeError(
            f"transfer follows the torch model's forward with torch.fx to see what each "
            f"tensor holds, and tracing {type(model).__name__} failed: "
            f"{type(error).__name__}: {error}"
        ) from None
    return fx.GraphModule(root, graph)


def _check_no_hooks(model: Any) -> None:
    """Forward hooks run in ``Module.__call__``, which tracing never sees: refuse them."""
    from torch.nn.modules import module as torch_module

    hooked = [
        name or "(the model itself)"
        for name, module in model.named_modules()
        if module._forward_hooks or module._forward_pre_hooks
    ]
    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        hooked.append("(global hooks)")
    if hooked:
        raise TypeError(
            f"torch modules {hooked} have forward hooks, which can change what a tensor "
            "holds where torch.fx cannot see it: remove them for the transfer"
        )


def _meta_run(graph_module: Any, examples: list, inputs: str) -> dict:
    """Every node's result on meta tensors: shapes, without touching the model."""
    import torch
    from torch import fx

    copies: dict[int, torch.nn.Module] = {}

    class Shapes(fx.Interpreter):
        def run_node(self, node: fx.Node) -> Any:
            results[node] = super().run_node(node)
            return results[node]

        def call_module(self, target: str, args: tuple, kwargs: dict) -> Any:
            module = self.fetch_attr(target)
            if isinstance(module, torch.nn.RNNBase):  # run on meta, it loops step by step
                return _recurrent_result(module, args[0])
            if id(module) not in copies:
                copies[id(module)] = _meta_copy(module)
            return copies[id(module)](*args, **kwargs)

        def get_attr(self, target: str, args: tuple, kwargs: dict) -> Any:
            value = super().get_attr(target, args, kwargs)
            return _meta_tensor(value) if isinstance(value, torch.Tensor) else value

    results: dict = {}
    try:
        with torch.no_grad():
            Shapes(graph_module).run(*examples)
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise LayoutError(
            f"the models do not correspond: the torch model does not run on {inputs}: "
            f"{type(error).__name__}: {first_line}"
        ) from None
    return results


def _recurrent_result(module: Any, sequence: Any) -> tuple:
    """Empty tensors shaped as an LSTM/GRU/RNN returns them: (output, state or (h, c))."""
    import torch

    directions = 2 if module.bidirectional else 1
    size = module.proj_size or module.hidden_size
    if sequence.dim() not in (2, 3) or sequence.shape[-1] != module.input_size:
        raise ValueError(
            f"{type(module).__name__}({module.input_size}, ...) cannot read a tensor of "
            f"shape {tuple(sequence.shape)}"
        )
    batch = [] if sequence.dim() == 2 else [sequence.shape[0 if module.batch_first else 1]]
    output = torch.empty(*sequence.shape[:-1], directions * size, device="meta")
    hidden = torch.empty(directions * module.num_layers, *batch, size, device="meta")
    if isinstance(module, torch.nn.LSTM):
        cell = torch.empty(
            directions * module.num_layers, *batch, module.hidden_size, device="meta"
        )
        return output, (hidden, cell)
    return output, hidden


def _meta_tensor(tensor: Any) -> Any:
    import torch

    dtype = torch.float32 if tensor.is_floating_point() else tensor.dtype
    empty = torch.empty(tensor.shape, dtype=dtype, device="meta")
    if isinstance(tensor, torch.nn.Parameter):
        return torch.nn.Parameter(empty, tensor.requires_grad)
    return empty


def _meta_copy(module: Any) -> Any:
    """A copy of ``module`` whose tensors are empty meta tensors (no data is copied)."""
    memo = {id(t): _meta_tensor(t) for t in [*module.parameters(), *module.buffers()]}
    return copy.deepcopy(module, memo)


def _shape_of(result: Any) -> Any:
    """A meta result's shape (None for the batch), or a tuple of them; None if no tensor."""
    import torch

    if isinstance(result, torch.Tensor):
        return tuple(None if size == _BATCH_SIZE else size for size in result.shape)
    if isinstance(result, tuple | list):
        return tuple(_shape_of(item) for item in result)
    return None


def _torch_node(
    graph_module: Any, node: Any, values: dict, result: Any, roles: dict, sites: Sites
) -> Any:
    """The description of one fx node's result."""
    import torch
    from torch import fx

    args = fx.node.map_arg(node.args, lambda n: values[n])
    kwargs = fx.node.map_arg(node.kwargs, lambda n: values[n])
    shape = _shape_of(result)
    if isinstance(result, torch.Size) or not isinstance(result, torch.Tensor | tuple | list):
        return result  # a size, a dtype...: the concrete value, for rules that read it
    if node.op == "call_module":
        module = graph_module.get_submodule(node.target)
        where = f"torch {node.target!r} ({type(module).__name__})"
        if id(module) in roles:
            k, role = roles[id(module)]
            outputs, site = _torch_role(role, module, args[0], shape, k)
            sites.setdefault(k, []).append(site)
            return outputs
        rule = _TORCH_MODULE_RULES.get(type(module).__name__)
        if rule and type(module).__module__.startswith("torch.nn"):
            return rule(module, args, kwargs, shape, where)
        return unknown_among(*args) or Unknown(f"{where}, which transfer does not follow")
    where = f"torch {node.name!r} ({node.op} {_target_name(node)})"
    if node.op == "get_attr":
        return Unknown(f"{where}: a tensor of the model used directly in forward")
    rule = _torch_function_rule(node)
    if rule is None:
        return unknown_among(*args) or Unknown(f"{where}, which transfer does not follow")
    return rule(args, kwargs, shape, where)


def _target_name(node: Any) -> str:
    target = node.target
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


# torch rules: (args, kwargs, result shape, where) -> description


def _argument(args: tuple, kwargs: dict, position: int, name: str, default: Any) -> Any:
    return args[position] if len(args) > position else kwargs.get(name, default)


def _dims(args: tuple, kwargs: dict, position: int, name: str) -> list[int] | None:
    dims = _argument(args, kwargs, position, name, None)
    if dims is None:
        return None
    return [dims] if isinstance(dims, int) else list(dims)


def _permute(args: tuple, kwargs: dict, shape: Any, where: str) -> Value:
    if len(args) > 2:  # x.permute(0, 2, 1)
        return permuted(args[0], list(args[1:]))
    dims = _dims(args, kwargs, 1, "dims")
    if dims is None or not all(isinstance(dim, int) for dim in dims):
        return unknown_among(args[0]) or Unknown(f"{where}: dimensions not followed")
    return permuted(args[0], dims)


def _transpose(args: tuple, kwargs: dict, shape: Any, where: str) -> Value:
    value = args[0]
    if isinstance(value, Unknown):
        return value
    first = _argument(args, kwargs, 1, "dim0", None)
    second = _argument(args, kwargs, 2, "dim1", None)
    order = list(range(len(value)))
    order[first], order[second] = order[second], order[first]
    return permuted(value, order)


def _reduce(args: tuple, kwargs: dict, shape: Any, where: str) -> Value:
    dims = _dims(args[:2], kwargs, 1, "dim")
    keepdim = bool(_argument(args, kwargs, 2, "keepdim", False))
    if dims is None:
        return Unknown(f"{where} reduces over every dimension, the batch too")
    return reduced(args[0], dims, keepdim, where)


def _cat(args: tuple, kwargs: dict, shape: Any, where: str) -> Value:
    return concatenated(list(args[0]), _argument(args, kwargs, 1, "dim", 0), where)


def _getitem(args: tuple, kwargs: dict, shape: Any, where: str) -> Any:
    container, index = args
    if isinstance(container, tuple | list):
        return container[index]
    return indexed(container, index, where)


def _resample_last(count: Callable[[Any, tuple], int]) -> Callable:
    def rule(args: tuple, kwargs: dict, shape: Any, where: str) -> Value:
        dims = range(len(shape) - count(shape, args), len(shape))
        return resampled(args[0], dims, [shape[dim] for dim in dims], where)

    return rule


_TORCH_ELEMENTWISE_MODULES = {
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid",
    "Tanh", "Softplus", "Softsign", "Hardtanh", "Hardsigmoid", "Hardswish", "Hardshrink",
    "Softshrink", "Tanhshrink", "LogSigmoid", "Threshold", "Softmax", "LogSoftmax", "Softmin",
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
    "Identity",
}  # fmt: skip
_TORCH_ELEMENTWISE_FUNCTIONS = {
    "relu", "relu_", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish",
    "sigmoid", "tanh", "softplus", "softsign", "hardtanh", "hardsigmoid", "hardswish",
    "logsigmoid", "softmax", "log_softmax", "dropout", "dropout1d", "dropout2d", "dropout3d",
    "alpha_dropout", "exp", "log", "abs", "neg", "sqrt", "square", "clamp", "clip",
    "contiguous", "float", "double", "half", "clone", "detach", "pos",
}  # fmt: skip
_TORCH_BINARY = {"add", "sub", "mul", "truediv", "div", "pow", "maximum", "minimum"}
_TORCH_RESHAPES = {"flatten", "reshape", "view", "squeeze", "unsqueeze", "unflatten", "ravel"}
_TORCH_RESAMPLE_MODULES = {
    f"{kind}{d}d"
    for kind in ("MaxPool", "AvgPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "LPPool",
                 "ZeroPad", "ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad")
    for d in (1, 2, 3)
} | {"Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"}  # fmt: skip
_TORCH_RESAMPLE_FUNCTIONS = {
    f"{kind}{d}d"
    for kind in ("max_pool", "avg_pool", "adaptive_avg_pool", "adaptive_max_pool", "lp_pool")
    for d in (1, 2, 3)
} | {"interpolate", "pad"}


def _digit_or_spatial(name: str) -> Callable[[Any, tuple], int]:
    digit = name.rstrip("d")[-1:]
    if digit.isdigit():
        return lambda shape, args: int(digit)
    if name == "pad":
        return lambda shape, args: len(args[1]) // 2
    return lambda shape, args: len(shape) - 2


_TORCH_MODULE_RULES: dict[str, Callable] = {
    **{name: lambda module, args, kwargs, shape, where: args[0]
       for name in _TORCH_ELEMENTWISE_MODULES},
    "Flatten": lambda module, args, kwargs, shape, where: reshaped(args[0], shape, where),
    "Unflatten": lambda module, args, kwargs, shape, where: reshaped(args[0], shape, where),
    **{name: (lambda rule: lambda module, args, kwargs, shape, where:
              rule(args, kwargs, shape, where))(_resample_last(_digit_or_spatial(name)))
       for name in _TORCH_RESAMPLE_MODULES},
}  # fmt: skip


def _torch_function_rule(node: Any) -> Callable | None:
    """The rule for a call_function or call_method node, by the function's name."""
    name = _target_name(node)
    if node.op == "call_function" and node.target is operator.getitem:
        return _getitem
    if node.op == "call_function":  # torch's own functions and operators; nothing else
        module = getattr(node.target, "__module__", None) or ""
        if module not in ("torch", "_operator") and not module.startswith("torch."):
            return None
    if name in _TORCH_ELEMENTWISE_FUNCTIONS:
        return lambda args, kwargs, shape, where: args[0]
    if name in _TORCH_BINARY:
        return lambda args, kwargs, shape, where: broadcast(list(args), where)
    if name in _TORCH_RESHAPES:
        return lambda args, kwargs, shape, where: reshaped(args[0], shape, where)
    if name in ("permute",):
        return _permute
    if name in ("transpose", "swapaxes", "swapdims"):
        return _transpose
    if name in ("mean", "sum", "amax", "amin"):
        return _reduce
    if name in ("cat", "concat", "concatenate"):
        return _cat
    if name in _TORCH_RESAMPLE_FUNCTIONS:
        return _resample_last(_digit_or_spatial(name))
    return None
