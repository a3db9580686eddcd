"""Copy weights between a Keras model and its PyTorch twin, converting each layer's layout.

The two frameworks store the same numbers differently: a Dense kernel is (in, out) where
a Linear weight is (out, in); a Keras convolution kernel is (*spatial, in, out) where
torch's is (out, in, *spatial); GRU gates come in another order. :func:`transfer` walks
the layers of both models that hold weights, pairs them one to one, converts every array
to the target's layout, checks it, and only then writes.

Conventions a lesson should know about:

- LSTM bias: Keras has one, torch two that it adds (``bias_ih + bias_hh``). Going to
  Keras they are summed; going to torch the bias goes into ``bias_ih`` and ``bias_hh``
  is set to zeros.
- BatchNorm: ``epsilon`` changes predictions, so it must agree; momentum only changes
  training (Keras' ``momentum`` is torch's ``1 - momentum``), so a difference warns.
  ``num_batches_tracked`` is torch's own count of training batches, with no Keras
  counterpart: it is left as it is.
- Flatten: Keras flattens a convolution's output in (height, width, channels) order,
  torch's ``nn.Flatten()`` on an NCHW feature map in (channels, height, width) order.
  The kernel rows of the Dense right after such a Flatten are reordered to match.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from helpers._layout import LayoutError
from helpers.adapters import TensorHandle, framework_of, handles_for, write_all

Arrays = dict[str, np.ndarray]

_ROUTES = {("keras", "torch"), ("torch", "keras"), ("nnet", "torch"), ("torch", "nnet")}
_LABELS = {"keras": "Keras", "torch": "torch", "nnet": "nnet"}
_LEFT_ALONE = {"num_batches_tracked"}


@dataclass(frozen=True)
class _Layer:
    """One layer that holds weights, with what its conversion needs to know."""

    framework: str
    name: str
    type_name: str
    kind: str  # "dense", "conv", "depthwise", "batchnorm", "layernorm", "embedding", "lstm", ...
    handles: dict[str, TensorHandle]  # by the layer's own names: "kernel", "running_mean", ...
    options: dict[str, Any] = field(default_factory=dict)  # settings both sides must share
    module: Any = None
    # A Keras Dense fed by a Flatten of a channels-last feature map: how many channels it had.
    flattened_channels: int | None = None

    def __str__(self) -> str:
        return f"{_LABELS[self.framework]} {self.name!r} ({self.type_name})"

    def read(self) -> Arrays:
        return {name: handle.read() for name, handle in self.handles.items()}


Converter = Callable[[Arrays, _Layer], Arrays]


@dataclass(frozen=True)
class _Rule:
    """How one Keras (or nnet) layer kind maps to torch: the kind, and both directions.

    A converter takes the source's arrays and the non-torch layer of the pair, which holds
    the context (its shapes, the Flatten before it).
    """

    torch_kind: str
    to_torch: Converter
    from_torch: Converter


def transfer(source_model: Any, target_model: Any) -> None:
    """Copy every weight of ``source_model`` into ``target_model``, converting layouts.

    One model is Keras and the other its PyTorch twin, with the same layers holding
    weights in the same order; or a ``helpers.nnet`` fit and ``nn.Sequential(nn.Linear(p,
    size), nn.Sigmoid(), nn.Linear(size, q), ...)``, either way. Layer pairs:
    Dense/Linear, Conv1D-3D/Conv1d-3d (groups too), DepthwiseConv1D-2D/Conv(groups=in),
    BatchNormalization/BatchNorm1d-3d, LayerNormalization/LayerNorm, Embedding, LSTM, and
    GRU (Keras ``reset_after=True``, torch's only kind). Torch feature maps are NCHW; the
    module docstring says how LSTM biases, BatchNorm and Flatten are handled.

    Everything is converted and checked before anything is written. Layers that do not
    correspond, shapes or settings that differ raise :class:`LayoutError` naming both
    layers (``TypeError`` for a layer with no conversion), and the target stays exactly
    as it was, also when a write fails part-way. After torch -> nnet, ``predict`` uses
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
    if len(sources) != len(targets):
        raise LayoutError(
            f"the models do not correspond: the source has {len(sources)} layers with "
            f"weights ({_listed(sources)}), the target {len(targets)} ({_listed(targets)})"
        )
    plan: list[tuple[TensorHandle, np.ndarray]] = []
    for index, (source, target) in enumerate(zip(sources, targets, strict=True)):
        plan += _converted(f"layer #{index}", source, target)
    write_all(plan)


def _explain_route(source: str, target: str) -> str:
    hint = ""
    if source == target:
        hint = "; between two models of one framework use helpers.flatten and helpers.restore"
    return f"transfer copies Keras <-> torch and nnet <-> torch, got {source} -> {target}{hint}"


def _listed(layers: list[_Layer]) -> str:
    return ", ".join(f"{layer.name!r}" for layer in layers)


# ---------------------------------------------------------------- pairing and checking


def _converted(where: str, source: _Layer, target: _Layer) -> list[tuple[TensorHandle, np.ndarray]]:
    """The target's handles with the arrays to write into them, all checked; writes nothing."""
    torch_layer, other = (target, source) if target.framework == "torch" else (source, target)
    rule = _RULES[(other.framework, other.kind)]
    if rule.torch_kind != torch_layer.kind:
        raise LayoutError(f"{where}: {target} cannot take weights from {source}")
    _check_options(where, other, torch_layer)
    convert = rule.to_torch if target is torch_layer else rule.from_torch
    try:
        arrays = convert(source.read(), other)
    except ValueError as error:  # a reshape or split that the source's shapes do not allow
        raise LayoutError(f"{where}: {source}'s weights do not fit {target}: {error}") from None
    expected = sorted(set(target.handles) - _LEFT_ALONE)
    if sorted(arrays) != expected:
        raise LayoutError(
            f"{where}: {target} has tensors {expected}, but {source} gives {sorted(arrays)} "
            "(a bias or a scale on one side only?)"
        )
    for name, array in arrays.items():
        shape = tuple(target.handles[name].shape)
        if array.shape != shape:
            raise LayoutError(
                f"{where}: {target} {name!r}: expected shape {shape}, "
                f"got {array.shape} from {source}"
            )
    return [(target.handles[name], array) for name, array in arrays.items()]


def _check_options(where: str, other: _Layer, torch_layer: _Layer) -> None:
    """Settings that change predictions must agree; a BatchNorm momentum only warns."""
    for key, mine in other.options.items():
        theirs = torch_layer.options.get(key)
        if mine is None or theirs is None or _same(mine, theirs):
            continue
        raise LayoutError(
            f"{where}: {other} has {key}={mine!r} but {torch_layer} has {key}={theirs!r}; "
            "predictions would differ: make them equal"
        )
    if other.kind == "batchnorm":
        _warn_if_momentum_differs(where, other, torch_layer)


def _same(mine: Any, theirs: Any) -> bool:
    if isinstance(mine, float) or isinstance(theirs, float):
        return math.isclose(mine, theirs, rel_tol=1e-6)
    return mine == theirs


def _warn_if_momentum_differs(where: str, keras_layer: _Layer, torch_layer: _Layer) -> None:
    keras_momentum, torch_momentum = keras_layer.module.momentum, torch_layer.module.momentum
    # Keras keeps `momentum` of the old statistics per batch, torch takes `momentum` of the new.
    if torch_momentum is not None and math.isclose(1 - keras_momentum, torch_momentum):
        return
    warnings.warn(
        f"{where}: {keras_layer} has momentum={keras_momentum}, torch's "
        f"momentum={1 - keras_momentum:g}, but {torch_layer} has momentum={torch_momentum}: "
        "predictions agree, but training on would update the moving statistics differently",
        UserWarning,
        stacklevel=5,
    )


# ---------------------------------------------------------------- layers of each framework


def _kind_of(layer: Any, label: str, kinds: list[tuple[tuple[type, ...], str]]) -> str:
    for classes, kind in kinds:
        if isinstance(layer, classes):
            return kind
    supported = ", ".join(cls.__name__ for classes, _ in kinds for cls in classes)
    raise TypeError(
        f"{label} ({type(layer).__name__}) holds weights, but transfer has no conversion "
        f"for it; supported: {supported}"
    )


def _keras_layers(model: Any) -> list[_Layer]:
    """Keras layers with weights, in order, each Dense after a conv's Flatten marked."""
    from keras import layers as keras_layers

    if not model.built:
        raise LayoutError(
            f"Keras model {model.name!r} is not built yet: build it first "
            "(start it with keras.Input, call model.build(input_shape), or call it on a batch)"
        )
    result: list[_Layer] = []
    feature_map: _Layer | None = None  # the last convolution, while its output is unflattened
    channels: int | None = None  # set by a Flatten of a channels-last feature map
    for layer in _keras_leaves(model):
        if layer.weights:
            if channels is not None and not isinstance(layer, keras_layers.Dense):
                raise TypeError(
                    f"Keras {layer.name!r} ({type(layer).__name__}) comes right after a "
                    "Flatten of a convolution's output; only a Dense can (its kernel rows "
                    "are reordered from Keras' (height, width, channels) to torch's "
                    "(channels, height, width))"
                )
            result.append(_keras_layer(layer, channels))
            channels = None
            if result[-1].kind in ("conv", "depthwise"):
                feature_map = result[-1]
        elif isinstance(layer, keras_layers.Flatten) and feature_map is not None:
            channels, feature_map = _flattened_channels(layer, feature_map), None
        elif isinstance(layer, keras_layers.Reshape | keras_layers.Permute) and feature_map:
            raise TypeError(
                f"Keras {layer.name!r} ({type(layer).__name__}) rearranges a convolution's "
                "channels-last output, which torch holds channels-first; use Flatten there"
            )
    return result


def _keras_leaves(model: Any) -> Iterator[Any]:
    """Every layer in order, looking inside nested models."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _keras_leaves(layer)
        else:
            yield layer


def _flattened_channels(flatten: Any, conv: _Layer) -> int | None:
    """The channels a Keras Flatten puts last, where torch's nn.Flatten puts them first."""
    if flatten.data_format != "channels_last":
        raise TypeError(
            f"Keras {flatten.name!r} (Flatten) has data_format='channels_first' after a "
            "convolution; only channels_last is supported"
        )
    if conv.module.data_format != "channels_last":
        return None  # Keras flattens (channels, height, width), as torch does
    try:
        shape = tuple(flatten.input.shape)
    except AttributeError:  # a subclassed model has no graph: the last conv's channels
        kernel = conv.handles["kernel"].shape  # depthwise: (..., in, multiplier)
        return kernel[-2] * kernel[-1] if conv.kind == "depthwise" else kernel[-1]
    return shape[-1] if len(shape) > 2 else None


def _keras_layer(layer: Any, flattened_channels: int | None) -> _Layer:
    from keras import layers

    kinds = [
        ((layers.Dense,), "dense"),
        ((layers.DepthwiseConv1D, layers.DepthwiseConv2D), "depthwise"),
        ((layers.Conv1D, layers.Conv2D, layers.Conv3D), "conv"),
        ((layers.BatchNormalization,), "batchnorm"),
        ((layers.LayerNormalization,), "layernorm"),
        ((layers.Embedding,), "embedding"),
        ((layers.LSTM,), "lstm"),
        ((layers.GRU,), "gru"),
    ]
    kind = _kind_of(layer, f"Keras {layer.name!r}", kinds)
    if kind == "gru" and not layer.reset_after:
        raise TypeError(
            f"Keras {layer.name!r} (GRU) has reset_after=False; torch's GRU applies the reset "
            "gate after the recurrent product (reset_after=True, Keras' default): use that"
        )
    _, handles = handles_for(layer, "all")
    return _Layer(
        framework="keras",
        name=layer.name,
        type_name=type(layer).__name__,
        kind=kind,
        handles={handle.name.rsplit("/", 1)[-1]: handle for handle in handles},
        options=_keras_options(layer, kind),
        module=layer,
        flattened_channels=flattened_channels,
    )


def _keras_options(layer: Any, kind: str) -> dict[str, Any]:
    if kind in ("conv", "depthwise"):
        strides, dilation = tuple(layer.strides), tuple(layer.dilation_rate)
        return {"strides": strides, "dilation": dilation, "padding": layer.padding}
    if kind == "batchnorm":
        return {"epsilon": float(layer.epsilon)}
    if kind == "layernorm":
        return {"epsilon": float(layer.epsilon), "rms_scaling": layer.rms_scaling}
    if kind == "embedding":
        return {"max_norm": None}
    if kind in ("lstm", "gru"):
        return {
            "activation": layer.activation.__name__,
            "recurrent_activation": layer.recurrent_activation.__name__,
            "go_backwards": layer.go_backwards,
            "num_layers": 1,
            "bidirectional": False,
            "proj_size": 0,
        }
    return {}


def _torch_layers(model: Any) -> list[_Layer]:
    """Torch modules that hold parameters or buffers themselves, in ``named_modules`` order."""
    from torch import nn

    kinds = [
        ((nn.Linear,), "dense"),
        ((nn.Conv1d, nn.Conv2d, nn.Conv3d), "conv"),
        ((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), "batchnorm"),
        ((nn.LayerNorm,), "layernorm"),
        ((nn.Embedding,), "embedding"),
        ((nn.LSTM,), "lstm"),
        ((nn.GRU,), "gru"),
    ]
    result = []
    for name, module in model.named_modules():
        if not [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
            continue
        label = name or "(the model itself)"
        kind = _kind_of(module, f"torch {label!r}", kinds)
        _, handles = handles_for(module, "all")
        result.append(
            _Layer(
                framework="torch",
                name=label,
                type_name=type(module).__name__,
                kind=kind,
                handles={handle.name: handle for handle in handles},
                options=_torch_options(module, kind),
                module=module,
            )
        )
    return result


def _torch_options(module: Any, kind: str) -> dict[str, Any]:
    if kind == "conv":
        padding = _torch_padding(module)
        return {"strides": module.stride, "dilation": module.dilation, "padding": padding}
    if kind in ("batchnorm", "layernorm"):
        return {"epsilon": float(module.eps), "rms_scaling": False}
    if kind == "embedding":
        return {"max_norm": module.max_norm}
    if kind in ("lstm", "gru"):
        return {
            "activation": "tanh",
            "recurrent_activation": "sigmoid",
            "go_backwards": False,
            "num_layers": module.num_layers,
            "bidirectional": module.bidirectional,
            "proj_size": module.proj_size,
        }
    return {}


def _torch_padding(conv: Any) -> str | None:
    """The conv's padding in Keras' words; None where that depends on the input size."""
    if conv.padding_mode != "zeros":
        return conv.padding_mode
    if isinstance(conv.padding, str):
        return conv.padding
    if not any(conv.padding):
        return "valid"
    if any(stride != 1 for stride in conv.stride):
        return None  # Keras' 'same' pads one side more for some input sizes, not others
    sizes = zip(conv.kernel_size, conv.padding, conv.dilation, strict=True)
    keeps_size = all(k % 2 == 1 and pad == dil * (k - 1) // 2 for k, pad, dil in sizes)
    return "same" if keeps_size else f"explicit {conv.padding}"


def _nnet_layers(fit: Any) -> list[_Layer]:
    """An nnet fit as two dense layers: each unit's row is its bias, then its sources."""
    if fit.skip:
        raise TypeError(
            "the nnet fit has skip-layer connections (inputs straight to outputs), which "
            "nn.Sequential(Linear, Sigmoid, Linear) has no place for: fit it with skip=False"
        )
    n_in, size, n_out = fit.n
    hidden = _units_handle(fit.wts, 0, (size, 1 + n_in))
    output = _units_handle(fit.wts, size * (1 + n_in), (n_out, 1 + size))
    return [
        _Layer("nnet", name, "NNet", "dense", {"units": handle})
        for name, handle in (("hidden", hidden), ("output", output))
    ]


def _units_handle(wts: np.ndarray, start: int, shape: tuple[int, int]) -> TensorHandle:
    stop = start + shape[0] * shape[1]

    def write(values: np.ndarray) -> None:
        wts[start:stop] = np.asarray(values).reshape(-1)

    return TensorHandle(
        name="units",
        shape=shape,
        dtype=str(wts.dtype),
        trainable=True,
        read=lambda: wts[start:stop].reshape(shape),
        write=write,
    )


_LAYER_READERS: dict[str, Callable[[Any], list[_Layer]]] = {
    "keras": _keras_layers,
    "torch": _torch_layers,
    "nnet": _nnet_layers,
}


# ---------------------------------------------------------------- conversions


def _bias(arrays: Arrays) -> Arrays:
    return {"bias": arrays["bias"]} if "bias" in arrays else {}


def _dense_to_torch(keras_arrays: Arrays, layer: _Layer) -> Arrays:
    kernel = keras_arrays["kernel"]  # (in, out)
    if layer.flattened_channels:
        kernel = _rows_to_channels_first(kernel, layer.flattened_channels)
    return {"weight": kernel.T, **_bias(keras_arrays)}


def _dense_from_torch(torch_arrays: Arrays, layer: _Layer) -> Arrays:
    kernel = torch_arrays["weight"].T
    if layer.flattened_channels:
        kernel = _rows_to_channels_last(kernel, layer.flattened_channels)
    return {"kernel": kernel, **_bias(torch_arrays)}


def _rows_to_channels_first(kernel: np.ndarray, channels: int) -> np.ndarray:
    """Rows in Keras' flatten order (positions, channels) -> torch's (channels, positions)."""
    out = kernel.shape[1]
    return kernel.reshape(-1, channels, out).transpose(1, 0, 2).reshape(-1, out)


def _rows_to_channels_last(kernel: np.ndarray, channels: int) -> np.ndarray:
    """Rows in torch's flatten order (channels, positions) -> Keras' (positions, channels)."""
    out = kernel.shape[1]
    return kernel.reshape(channels, -1, out).transpose(1, 0, 2).reshape(-1, out)


def _conv_to_torch(keras_arrays: Arrays, _: _Layer) -> Arrays:
    kernel = keras_arrays["kernel"]  # (*spatial, in / groups, out)
    rank = kernel.ndim
    weight = kernel.transpose(rank - 1, rank - 2, *range(rank - 2))
    return {"weight": weight, **_bias(keras_arrays)}


def _conv_from_torch(torch_arrays: Arrays, _: _Layer) -> Arrays:
    weight = torch_arrays["weight"]  # (out, in / groups, *spatial)
    return {"kernel": weight.transpose(*range(2, weight.ndim), 1, 0), **_bias(torch_arrays)}


def _depthwise_to_torch(keras_arrays: Arrays, _: _Layer) -> Arrays:
    # Keras (*spatial, in, multiplier): output channel c * multiplier + m, as torch's groups.
    kernel = keras_arrays["kernel"]
    weight = np.moveaxis(kernel.reshape(*kernel.shape[:-2], -1), -1, 0)
    return {"weight": weight[:, None], **_bias(keras_arrays)}  # one input channel per group


def _depthwise_from_torch(torch_arrays: Arrays, layer: _Layer) -> Arrays:
    weight = torch_arrays["weight"]  # (in * multiplier, 1, *spatial)
    kernel = np.moveaxis(weight.reshape(weight.shape[0], *weight.shape[2:]), 0, -1)
    return {"kernel": kernel.reshape(layer.handles["kernel"].shape), **_bias(torch_arrays)}


def _lstm_to_torch(keras_arrays: Arrays, _: _Layer) -> Arrays:
    # Same gate order: Keras (i, f, c, o) is torch's (i, f, g, o).
    converted = {
        "weight_ih_l0": keras_arrays["kernel"].T,
        "weight_hh_l0": keras_arrays["recurrent_kernel"].T,
    }
    if "bias" in keras_arrays:  # torch adds two biases; one carries it all
        bias = keras_arrays["bias"]
        converted |= {"bias_ih_l0": bias, "bias_hh_l0": np.zeros_like(bias)}
    return converted


def _lstm_from_torch(torch_arrays: Arrays, _: _Layer) -> Arrays:
    converted = {
        "kernel": torch_arrays["weight_ih_l0"].T,
        "recurrent_kernel": torch_arrays["weight_hh_l0"].T,
    }
    if "bias_ih_l0" in torch_arrays:
        converted["bias"] = torch_arrays["bias_ih_l0"] + torch_arrays["bias_hh_l0"]
    return converted


def _swap_z_r(array: np.ndarray) -> np.ndarray:
    """Keras' GRU gate blocks (z, r, h) <-> torch's (r, z, n) on the last axis; self-inverse."""
    z, r, h = np.split(array, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1)


def _gru_to_torch(keras_arrays: Arrays, _: _Layer) -> Arrays:
    converted = {
        "weight_ih_l0": _swap_z_r(keras_arrays["kernel"]).T,
        "weight_hh_l0": _swap_z_r(keras_arrays["recurrent_kernel"]).T,
    }
    if "bias" in keras_arrays:  # (2, 3 * units): the input bias, then the recurrent bias
        input_bias, recurrent_bias = _swap_z_r(keras_arrays["bias"])
        converted |= {"bias_ih_l0": input_bias, "bias_hh_l0": recurrent_bias}
    return converted


def _gru_from_torch(torch_arrays: Arrays, _: _Layer) -> Arrays:
    converted = {
        "kernel": _swap_z_r(torch_arrays["weight_ih_l0"].T),
        "recurrent_kernel": _swap_z_r(torch_arrays["weight_hh_l0"].T),
    }
    if "bias_ih_l0" in torch_arrays:
        biases = np.stack([torch_arrays["bias_ih_l0"], torch_arrays["bias_hh_l0"]])
        converted["bias"] = _swap_z_r(biases)
    return converted


def _nnet_to_torch(nnet_arrays: Arrays, _: _Layer) -> Arrays:
    units = nnet_arrays["units"]  # one row per unit: its bias, then its sources
    return {"weight": units[:, 1:], "bias": units[:, 0]}


def _nnet_from_torch(torch_arrays: Arrays, _: _Layer) -> Arrays:
    weight = torch_arrays["weight"]
    bias = torch_arrays.get("bias", np.zeros(weight.shape[0]))  # a Linear without bias adds 0
    return {"units": np.column_stack([bias, weight])}


def _renaming(torch_kind: str, names: dict[str, str]) -> _Rule:
    """A rule for layers whose arrays only change names (Keras name -> torch name)."""
    back = {torch_name: keras_name for keras_name, torch_name in names.items()}
    return _Rule(
        torch_kind,
        to_torch=lambda arrays, _: {names[k]: v for k, v in arrays.items() if k in names},
        from_torch=lambda arrays, _: {back[k]: v for k, v in arrays.items() if k in back},
    )


_RULES: dict[tuple[str, str], _Rule] = {
    ("keras", "dense"): _Rule("dense", _dense_to_torch, _dense_from_torch),
    ("keras", "conv"): _Rule("conv", _conv_to_torch, _conv_from_torch),
    ("keras", "depthwise"): _Rule("conv", _depthwise_to_torch, _depthwise_from_torch),
    ("keras", "batchnorm"): _renaming(
        "batchnorm",
        {
            "gamma": "weight",
            "beta": "bias",
            "moving_mean": "running_mean",
            "moving_variance": "running_var",
        },
    ),
    ("keras", "layernorm"): _renaming("layernorm", {"gamma": "weight", "beta": "bias"}),
    ("keras", "embedding"): _renaming("embedding", {"embeddings": "weight"}),
    ("keras", "lstm"): _Rule("lstm", _lstm_to_torch, _lstm_from_torch),
    ("keras", "gru"): _Rule("gru", _gru_to_torch, _gru_from_torch),
    ("nnet", "dense"): _Rule("dense", _nnet_to_torch, _nnet_from_torch),
}
