"""helpers.transfer: a Keras model and its PyTorch twin predict the same after a transfer."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import helpers  # noqa: E402
from helpers import LayoutError, PrecisionWarning  # noqa: E402
from helpers._transfer import PAIRS  # noqa: E402
from helpers.nnet import class_ind, nnet  # noqa: E402

layers = keras.layers
TOLERANCE = 1e-5  # float32, as the lesson promises


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """32 real test digits of every class (the set is sorted by class), scaled to [0, 1]."""
    _, (images, _) = helpers.data.load_mnist()
    return (images[::62][:32] / 255).astype(np.float32)


# ---------------------------------------------------------------- twins


class LastStep(nn.Module):
    """What a Keras LSTM/GRU returns by default: the output at the last time step."""

    def forward(self, output_and_state: tuple[torch.Tensor, object]) -> torch.Tensor:
        return output_and_state[0][:, -1]


def sequential(input_shape: tuple[int, ...], *stack: keras.Layer, dtype: str = "float32"):
    return keras.Sequential([keras.Input(input_shape, dtype=dtype), *stack])


def mlp() -> tuple[keras.Model, nn.Module]:
    return (
        sequential((784,), layers.Dense(32, activation="relu"), layers.Dense(10)),
        nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10)),
    )


def cnn() -> tuple[keras.Model, nn.Module]:
    return (
        sequential(
            (28, 28, 1),
            layers.Conv2D(8, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(10),
        ),
        nn.Sequential(
            nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1352, 10)
        ),
    )


def cnn_batchnorm() -> tuple[keras.Model, nn.Module]:
    """BatchNorm on feature maps and on features, a depthwise and a grouped, strided conv."""
    return (
        sequential(
            (28, 28, 1),
            layers.Conv2D(8, 3, use_bias=False),
            layers.BatchNormalization(epsilon=1e-5, momentum=0.9),
            layers.ReLU(),
            layers.MaxPooling2D(2),
            layers.DepthwiseConv2D(3, depth_multiplier=2),
            layers.Conv2D(8, 3, strides=2, groups=4, activation="relu"),
            layers.Flatten(),
            layers.Dense(16),
            layers.BatchNormalization(epsilon=1e-5, momentum=0.9),
            layers.ReLU(),
            layers.Dense(10),
        ),
        nn.Sequential(
            nn.Conv2d(1, 8, 3, bias=False),
            nn.BatchNorm2d(8, momentum=0.1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, groups=8),
            nn.Conv2d(16, 8, 3, stride=2, groups=4),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(200, 16),
            nn.BatchNorm1d(16, momentum=0.1),
            nn.ReLU(),
            nn.Linear(16, 10),
        ),
    )


def lstm() -> tuple[keras.Model, nn.Module]:
    return (
        sequential((28, 28), layers.LSTM(16), layers.Dense(10)),
        nn.Sequential(nn.LSTM(28, 16, batch_first=True), LastStep(), nn.Linear(16, 10)),
    )


def gru() -> tuple[keras.Model, nn.Module]:
    return (
        sequential((28, 28), layers.GRU(16), layers.Dense(10)),
        nn.Sequential(nn.GRU(28, 16, batch_first=True), LastStep(), nn.Linear(16, 10)),
    )


def embedding_layernorm() -> tuple[keras.Model, nn.Module]:
    return (
        sequential(
            (49,),
            layers.Embedding(16, 8),
            layers.LayerNormalization(epsilon=1e-5),
            layers.Flatten(),
            layers.Dense(10),
            dtype="int32",
        ),
        nn.Sequential(nn.Embedding(16, 8), nn.LayerNorm(8), nn.Flatten(), nn.Linear(392, 10)),
    )


def as_rows(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows = images.reshape(len(images), -1)
    return rows, rows


def as_images(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return images[..., None], images[:, None]  # NHWC for Keras, NCHW for torch


def as_sequences(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return images, images  # 28 time steps of 28 pixels


def as_tokens(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every 4th pixel of every 4th row, its intensity cut into 16 levels: 49 tokens."""
    tokens = np.floor(images[:, ::4, ::4] * 15.99).reshape(len(images), 49)
    return tokens.astype(np.int32), tokens.astype(np.int64)


TWINS: dict[str, tuple[Callable, Callable]] = {
    "mlp": (mlp, as_rows),
    "cnn": (cnn, as_images),
    "cnn_batchnorm": (cnn_batchnorm, as_images),
    "lstm": (lstm, as_sequences),
    "gru": (gru, as_sequences),
    "embedding_layernorm": (embedding_layernorm, as_tokens),
}


def twins(architecture: str, images: np.ndarray) -> tuple[keras.Model, nn.Module, tuple]:
    """A fresh Keras model, its torch twin, and the digits as each of them takes them."""
    build, inputs = TWINS[architecture]
    return *build(), inputs(images)


def predictions(keras_model, torch_model, inputs: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Both models' outputs on the same digits, in inference mode."""
    keras_x, torch_x = inputs
    keras_out = keras.ops.convert_to_numpy(keras_model(keras_x, training=False))
    torch_model.eval()
    with torch.no_grad():
        torch_out = torch_model(torch.from_numpy(torch_x)).numpy()
    return keras_out, torch_out


def ordered(keras_model, torch_model, direction: str) -> tuple:
    """(source, target) for "keras->torch" or "torch->keras"."""
    return (keras_model, torch_model) if direction == "keras->torch" else (torch_model, keras_model)


# ---------------------------------------------------------------- weights to compare


def scrambled(name: str, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fresh models start biases at 0 and norm layers at 1 and 0: make every tensor distinct.

    Kernels are already random, scaled to their fan-in, and stay as they are.
    """
    if values.size < 2 or np.ptp(values) > 0:
        return values
    noise = rng.normal(0, 0.3, values.shape).astype(values.dtype)
    return np.abs(noise) + 0.5 if "var" in name else noise  # variances must be positive


def scramble(model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    if isinstance(model, nn.Module):
        with torch.no_grad():
            for name, tensor in model.state_dict(keep_vars=True).items():
                if tensor.is_floating_point():
                    values = scrambled(name, tensor.detach().numpy(), rng)
                    tensor.copy_(torch.from_numpy(values))
    else:
        for variable in model.weights:
            variable.assign(scrambled(variable.path, variable.numpy(), rng))


def digest(model) -> str:
    """A hash of every weight's name, shape, dtype and bytes: equal means unchanged."""
    if isinstance(model, nn.Module):
        named = [
            (f"{name}{tuple(tensor.shape)}{tensor.dtype}", _raw_bytes(tensor))
            for name, tensor in model.state_dict(keep_vars=True).items()
        ]
    elif isinstance(model, keras.Model):
        named = [(v.path, v.numpy()) for v in model.weights]
    else:
        named = [("wts", model.wts)]
    hasher = hashlib.sha256()
    for name, array in named:
        hasher.update(f"{name}{array.shape}{array.dtype}".encode())
        hasher.update(np.ascontiguousarray(array).tobytes())
    return hasher.hexdigest()


def _raw_bytes(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().reshape(-1).contiguous().view(torch.uint8).numpy()


def max_difference(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.abs(first - second).max())


# ---------------------------------------------------------------- predictions agree


@pytest.mark.parametrize("direction", ["keras->torch", "torch->keras"])
@pytest.mark.parametrize("architecture", list(TWINS))
def test_predictions_agree_after_transfer(architecture, direction, digits):
    keras_model, torch_model, inputs = twins(architecture, digits)
    source, target = ordered(keras_model, torch_model, direction)
    scramble(source)
    assert max_difference(*predictions(keras_model, torch_model, inputs)) > 1e-2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matching settings: not even a warning
        helpers.transfer(source, target)
    keras_out, torch_out = predictions(keras_model, torch_model, inputs)
    assert max_difference(keras_out, torch_out) <= TOLERANCE
    assert np.ptp(keras_out) > 0.1  # the outputs do depend on the digit


@pytest.mark.parametrize("architecture", ["mlp", "cnn", "gru"])
def test_pouring_the_vector_in_unconverted_gives_other_predictions(architecture, digits):
    keras_model, torch_model, inputs = twins(architecture, digits)
    scramble(keras_model)
    vector, _ = helpers.flatten(keras_model)
    _, torch_layout = helpers.flatten(torch_model)
    assert vector.size == torch_layout.size  # the same numbers fit, in the wrong places
    helpers.restore(torch_model, vector, torch_layout)
    assert max_difference(*predictions(keras_model, torch_model, inputs)) > 1e-2
    helpers.transfer(keras_model, torch_model)
    assert max_difference(*predictions(keras_model, torch_model, inputs)) <= TOLERANCE


def test_the_dense_after_flatten_gets_its_rows_reordered(digits):
    keras_model, torch_model, inputs = twins("cnn", digits)
    scramble(keras_model)
    helpers.transfer(keras_model, torch_model)
    kernel = keras_model.layers[-1].kernel.numpy()  # rows in Keras' (13 * 13, 8) order
    weight = torch_model[4].weight.detach().numpy()  # columns in torch's (8, 13 * 13) order
    position, channel = np.divmod(np.arange(13 * 13 * 8), 8)
    np.testing.assert_array_equal(weight[:, channel * 13 * 13 + position], kernel.T)
    with torch.no_grad():  # the plain transpose, as in an MLP, leaves rows in Keras' order
        torch_model[4].weight.copy_(torch.from_numpy(kernel.T))
    assert max_difference(*predictions(keras_model, torch_model, inputs)) > 1e-2


def test_a_subclassed_keras_cnn_transfers_too(digits):
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = layers.Conv2D(8, 3, activation="relu")
            self.pool = layers.MaxPooling2D(2)
            self.flatten = layers.Flatten()
            self.dense = layers.Dense(10)

        def call(self, x):
            return self.dense(self.flatten(self.pool(self.conv(x))))

    keras_model, (_, torch_model), inputs = Net(), cnn(), as_images(digits)
    keras_model(inputs[0][:1])  # built by a call: there is no graph to read shapes from
    scramble(torch_model)
    helpers.transfer(torch_model, keras_model)
    assert max_difference(*predictions(keras_model, torch_model, inputs)) <= TOLERANCE


def test_lstm_biases_are_summed_for_keras_and_split_for_torch():
    keras_model, torch_model = lstm()
    scramble(torch_model)
    helpers.transfer(torch_model, keras_model)
    recurrent = torch_model[0]
    summed = (recurrent.bias_ih_l0 + recurrent.bias_hh_l0).detach().numpy()
    np.testing.assert_array_equal(keras_model.layers[0].cell.bias.numpy(), summed)
    helpers.transfer(keras_model, torch_model)
    np.testing.assert_array_equal(recurrent.bias_ih_l0.detach().numpy(), summed)
    assert not recurrent.bias_hh_l0.detach().numpy().any()


def test_batchnorm_statistics_move_and_num_batches_tracked_stays():
    keras_model = sequential((4,), layers.BatchNormalization(epsilon=1e-5, momentum=0.9))
    torch_model = nn.Sequential(nn.BatchNorm1d(4, momentum=0.1))
    torch_model[0].num_batches_tracked.fill_(7)
    scramble(keras_model)
    helpers.transfer(keras_model, torch_model)
    keras_norm, torch_norm = keras_model.layers[0], torch_model[0]
    np.testing.assert_array_equal(torch_norm.running_mean.numpy(), keras_norm.moving_mean.numpy())
    np.testing.assert_array_equal(
        torch_norm.running_var.numpy(), keras_norm.moving_variance.numpy()
    )
    assert int(torch_norm.num_batches_tracked) == 7


def test_a_different_batchnorm_momentum_warns_but_transfers():
    keras_model = sequential((4,), layers.BatchNormalization(epsilon=1e-5))  # momentum=0.99
    torch_model = nn.Sequential(nn.BatchNorm1d(4))  # momentum=0.1
    scramble(keras_model)
    with pytest.warns(UserWarning, match=r"momentum=0\.99, torch's momentum=0\.01, but torch"):
        helpers.transfer(keras_model, torch_model)
    gamma = keras_model.layers[0].gamma.numpy()
    np.testing.assert_array_equal(torch_model[0].weight.detach().numpy(), gamma)


# ---------------------------------------------------------------- nnet <-> torch


@pytest.fixture(scope="module")
def small_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Digits at 7 x 7 (every 4th pixel), few enough inputs for nnet's weight limit."""
    (images, labels), (test_images, _) = helpers.data.load_mnist()
    return seven_by_seven(images[::40]), class_ind(labels[::40]), seven_by_seven(test_images[::50])


def seven_by_seven(images: np.ndarray) -> np.ndarray:
    return images[:, ::4, ::4].reshape(len(images), 49) / 255.0


OUTPUTS = {
    "softmax": ({"softmax": True}, lambda: [nn.Softmax(dim=1)]),
    "logistic": ({}, lambda: [nn.Sigmoid()]),
    "linear": ({"linout": True}, lambda: []),
}


def nnet_twin(output: str) -> nn.Sequential:
    head = OUTPUTS[output][1]()
    return nn.Sequential(nn.Linear(49, 4), nn.Sigmoid(), nn.Linear(4, 10), *head).double()


def torch_predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("output", list(OUTPUTS))
def test_nnet_fit_predicts_the_same_in_torch(output, small_digits):
    x, y, x_test = small_digits
    fit = nnet(x, y, size=4, maxit=30, trace=False, seed=0, **OUTPUTS[output][0])
    torch_model = nnet_twin(output)
    helpers.transfer(fit, torch_model)
    # float64, but nnet's logistic is exactly 1 beyond 15 (R's clamp), torch's 1 - 3e-7.
    assert max_difference(fit.predict(x_test), torch_predict(torch_model, x_test)) <= 1e-6
    # R's order: per unit its bias, then its sources; hidden units first.
    np.testing.assert_array_equal(torch_model[0].bias.detach().numpy(), fit.wts[:200:50])
    np.testing.assert_array_equal(torch_model[2].weight.detach().numpy()[0], fit.wts[201:205])


def test_torch_weights_go_into_an_nnet_fit(small_digits):
    x, y, x_test = small_digits
    fit = nnet(x, y, size=4, softmax=True, maxit=0, trace=False, seed=0)
    torch_model = nnet_twin("softmax")
    assert max_difference(fit.predict(x_test), torch_predict(torch_model, x_test)) > 1e-3
    helpers.transfer(torch_model, fit)
    assert max_difference(fit.predict(x_test), torch_predict(torch_model, x_test)) <= 1e-6


# ---------------------------------------------------------------- torch helpers for twins


class Permute(nn.Module):
    """``x.permute(*dims)``: what a torch twin writes where Keras holds another layout."""

    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)


class Reshape(nn.Module):
    """``x.reshape(batch, *shape)``."""

    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Steps(nn.Module):
    """A recurrent layer's outputs: every step (``return_sequences=True``) or the last."""

    def __init__(self, sequences: bool) -> None:
        super().__init__()
        self.sequences = sequences

    def forward(self, output_and_state: tuple[torch.Tensor, object]) -> torch.Tensor:
        output = output_and_state[0]
        return output if self.sequences else output[:, -1]


class Mean(nn.Module):
    """``x.mean(dims)``: global average pooling written by hand."""

    def __init__(self, *dims: int) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dims)


def channels_first(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


def random_inputs(shape: tuple[int, ...], rows: int = 8) -> np.ndarray:
    """``rows`` samples of ``shape`` cut from real digits' central pixels, scaled to [-1, 1]."""
    _, (images, _) = helpers.data.load_mnist()
    pixels = images[::97][:rows, 4:24, 4:24].reshape(rows, -1) / 127.5 - 1
    size = int(np.prod(shape))
    picked = pixels[:, np.arange(size) * 7 % pixels.shape[1]]
    return picked.reshape(rows, *shape).astype(np.float32)


def both_ways(keras_model, torch_model, keras_x, torch_x) -> list[float]:
    """Transfer each way from scrambled weights; the largest output difference each time."""
    differences = []
    for direction in ("keras->torch", "torch->keras"):
        source, target = ordered(keras_model, torch_model, direction)
        scramble(source, seed=len(differences))
        helpers.transfer(source, target)
        differences.append(
            max_difference(*predictions(keras_model, torch_model, (keras_x, torch_x)))
        )
    return differences


# ---------------------------------------------------------------- issue 7: each item, guarded


def test_a_dense_on_conv_features_before_flatten_keeps_its_own_rows():
    """The conv's feature-map order must not leak past a Dense into the Flatten after it."""
    keras_model = sequential(
        (6, 2), layers.Conv1D(3, 2), layers.Dense(4), layers.Flatten(), layers.Dense(2)
    )
    torch_model = nn.Sequential(
        nn.Conv1d(2, 3, 2), Permute(0, 2, 1), nn.Linear(3, 4), nn.Flatten(), nn.Linear(20, 2)
    )
    x = random_inputs((6, 2))
    assert max(both_ways(keras_model, torch_model, x, channels_first(x))) <= TOLERANCE


def test_an_lstm_on_conv_features_before_flatten_keeps_its_own_rows():
    keras_model = sequential(
        (6, 2),
        layers.Conv1D(3, 2),
        layers.LSTM(4, return_sequences=True),
        layers.Flatten(),
        layers.Dense(2),
    )
    torch_model = nn.Sequential(
        nn.Conv1d(2, 3, 2),
        Permute(0, 2, 1),
        nn.LSTM(3, 4, batch_first=True),
        Steps(sequences=True),
        nn.Flatten(),
        nn.Linear(20, 2),
    )
    x = random_inputs((6, 2))
    assert max(both_ways(keras_model, torch_model, x, channels_first(x))) <= TOLERANCE


def test_conv_global_pooling_dense_reshape_flatten_dense_is_not_refused():
    keras_model = sequential(
        (8, 8, 3),
        layers.Conv2D(4, 3),
        layers.GlobalAveragePooling2D(),
        layers.Dense(6),
        layers.Reshape((2, 3)),
        layers.Flatten(),
        layers.Dense(2),
    )
    torch_model = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 6),
        nn.Unflatten(1, (2, 3)),
        nn.Flatten(),
        nn.Linear(6, 2),
    )
    x = random_inputs((8, 8, 3))
    assert max(both_ways(keras_model, torch_model, x, channels_first(x))) <= TOLERANCE


class TiedHead(nn.Module):
    """An embedding whose transpose is also the output layer (``head.weight is emb.weight``)."""

    def __init__(self, share: str = "parameter") -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        if share == "parameter":
            self.head.weight = self.emb.weight
        else:  # a distinct Parameter over the same memory
            self.head.weight = nn.Parameter(self.emb.weight.data.view(10, 4))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(tokens))


def tied_twin() -> keras.Model:
    return sequential(
        (5,), layers.Embedding(10, 4), layers.Dense(10, use_bias=False), dtype="int32"
    )


@pytest.mark.parametrize("share", ["parameter", "memory"])
def test_tied_weights_in_a_torch_target_are_refused(share):
    keras_model, torch_model = tied_twin(), TiedHead(share)
    scramble(keras_model)
    before = digest(torch_model)
    with pytest.raises(LayoutError, match=r"'emb\.weight' and 'head\.weight' share memory"):
        helpers.transfer(keras_model, torch_model)
    assert digest(torch_model) == before


def test_tied_weights_in_a_torch_source_go_to_both_keras_layers():
    keras_model, torch_model = tied_twin(), TiedHead()
    tokens = np.arange(40).reshape(8, 5) % 10
    helpers.transfer(torch_model, keras_model)
    keras_out, torch_out = predictions(
        keras_model, torch_model, (tokens.astype(np.int32), tokens.astype(np.int64))
    )
    assert max_difference(keras_out, torch_out) <= TOLERANCE


@pytest.mark.parametrize("direction", ["keras->torch", "torch->keras"])
def test_embedding_max_norm_must_match(direction):
    keras_model = sequential((5,), layers.Embedding(10, 4, name="emb"), dtype="int32")
    torch_model = nn.Sequential(nn.Embedding(10, 4, max_norm=1.0))
    source, target = ordered(keras_model, torch_model, direction)
    before = digest(target)
    with pytest.raises(LayoutError, match=r"has max_norm=None but torch '0' .* max_norm=1\.0"):
        helpers.transfer(source, target)
    assert digest(target) == before


def test_a_keras_value_overflowing_float16_is_refused_and_rounding_warns():
    keras_model = sequential((3,), layers.Dense(2, name="dense"))
    torch_model = nn.Sequential(nn.Linear(3, 2)).half()
    before = digest(torch_model)
    with pytest.warns(PrecisionWarning, match=r"tensor '0\.weight': \d values rounded"):
        helpers.transfer(keras_model, torch_model)  # float32 kernels round in float16
    assert digest(torch_model) != before
    keras_model.layers[0].kernel.assign(np.full((3, 2), 1e6, np.float32))
    before = digest(torch_model)
    with pytest.raises(LayoutError, match=r"tensor '0\.weight': 1e\+06 does not fit float16"):
        helpers.transfer(keras_model, torch_model)
    assert digest(torch_model) == before


@pytest.mark.parametrize("dtype, value", [("float16", 1e6), ("bfloat16", 1e39)])
def test_an_nnet_weight_overflowing_a_half_precision_target_is_refused(dtype, value):
    fit = nnet([[0.0, 1.0], [1.0, 0.0]], [0.0, 1.0], size=2, maxit=0, trace=False, seed=0)
    fit.wts[1] = value  # hidden unit 1's weight from input 1: torch's 0.weight[0, 0]
    torch_model = nn.Sequential(nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 1))
    torch_model.to(getattr(torch, dtype))
    before = digest(torch_model)
    with pytest.raises(LayoutError, match=re.escape(f"'0.weight': {value:g} does not fit {dtype}")):
        helpers.transfer(fit, torch_model)
    assert digest(torch_model) == before


# ---------------------------------------------------------------- the graph, not just a chain


class TwoBranches(nn.Module):
    """Two Linear branches concatenated in the opposite order to the Keras twin's."""

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second, self.head = nn.Linear(6, 3), nn.Linear(6, 4), nn.Linear(7, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.second(x), torch.tanh(self.first(x))], dim=1))


def test_branches_joined_in_another_order_are_reordered():
    inputs = keras.Input((6,))
    first = layers.Dense(3, activation="tanh")(inputs)
    joined = layers.Concatenate()([first, layers.Dense(4)(inputs)])
    keras_model = keras.Model(inputs, layers.Dense(2)(joined))
    x = random_inputs((6,))
    assert max(both_ways(keras_model, TwoBranches(), x, x)) <= TOLERANCE


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner, self.head = nn.Linear(5, 5), nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x + torch.relu(self.inner(x)))


def test_a_residual_connection_is_followed():
    inputs = keras.Input((5,))
    inner = layers.Dense(5, activation="relu")(inputs)
    keras_model = keras.Model(inputs, layers.Dense(2)(layers.Add()([inputs, inner])))
    x = random_inputs((5,))
    assert max(both_ways(keras_model, Residual(), x, x)) <= TOLERANCE


class RowsOfFeatureMaps(nn.Module):
    """Lesson 06's mixed model: conv, norm, pool, then each row of the map is one time step."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3, momentum=0.1)
        self.lstm, self.head = nn.LSTM(3 * 3, 5, batch_first=True), nn.Linear(5, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(self.bn(torch.relu(self.conv(x))), 2)
        rows = x.permute(0, 2, 3, 1).flatten(2)  # (N, rows, columns * channels), as Keras
        return self.head(self.lstm(rows)[0][:, -1])


def test_a_custom_forward_that_permutes_is_followed():
    keras_model = sequential(
        (8, 8, 1),
        layers.Conv2D(3, 3, activation="relu"),
        layers.BatchNormalization(epsilon=1e-5, momentum=0.9),
        layers.MaxPooling2D(2),
        layers.Reshape((3, 3 * 3)),
        layers.LSTM(5),
        layers.Dense(4),
    )
    x = random_inputs((8, 8, 1))
    assert max(both_ways(keras_model, RowsOfFeatureMaps(), x, channels_first(x))) <= TOLERANCE


class ChannelsLastCNN(nn.Module):
    """Takes images channels-last, as Keras does, and moves the channels itself."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv2d(2, 3, 3), nn.Linear(3 * 4 * 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x.permute(0, 3, 1, 2)).flatten(1))


def test_a_torch_model_expecting_channels_last_images_is_refused():
    """Images go channels-first to torch (its convention): a model that permutes is refused."""
    keras_model = sequential((6, 6, 2), layers.Conv2D(3, 3), layers.Flatten(), layers.Dense(2))
    torch_model = ChannelsLastCNN()
    before = digest(torch_model)
    with pytest.raises(LayoutError, match=r"\(2, 6, 6\) \(the Keras model's \(6, 6, 2\) channels"):
        helpers.transfer(keras_model, torch_model)
    assert digest(torch_model) == before


def test_a_subclassed_keras_model_with_a_reshape_is_traced():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = layers.Conv1D(3, 2)
            self.reshape = layers.Reshape((15,))
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(self.reshape(self.conv(x)))

    keras_model, x = Net(), random_inputs((6, 2))
    keras_model(x[:1])
    torch_model = nn.Sequential(nn.Conv1d(2, 3, 2), nn.Flatten(), nn.Linear(15, 2))
    nodes = [len(layer._inbound_nodes) for layer in keras_model.layers]
    assert max(both_ways(keras_model, torch_model, x, channels_first(x))) <= TOLERANCE
    assert [len(layer._inbound_nodes) for layer in keras_model.layers] == nodes


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) if x.sum() > 0 else -self.linear(x)


class Rolled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.roll(1, dims=1))


class Unused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear, self.spare = nn.Linear(4, 3), nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


UNFOLLOWED: dict[str, tuple[Callable, str]] = {
    "data-dependent forward": (DataDependent, r"torch\.fx .* tracing DataDependent failed"),
    "an operation transfer has no rule for": (
        Rolled,
        r"cannot tell what torch 'linear' \(Linear\) reads: torch 'roll' .* does not follow",
    ),
    "a module forward never calls": (Unused, r"torch 'spare' \(Linear\) is never called"),
}


def test_a_torch_model_with_forward_hooks_is_refused():
    torch_model = nn.Sequential(nn.Linear(4, 3))
    torch_model[0].register_forward_hook(lambda module, inputs, output: output.flip(1))
    keras_model = sequential((4,), layers.Dense(3))
    before = digest(torch_model)
    with pytest.raises(TypeError, match=r"torch modules \['0'\] have forward hooks"):
        helpers.transfer(keras_model, torch_model)
    assert digest(torch_model) == before


@pytest.mark.parametrize("case", list(UNFOLLOWED))
def test_a_torch_forward_transfer_cannot_follow_is_refused(case):
    build, message = UNFOLLOWED[case]
    torch_model = build()
    stack = [layers.Dense(3)] + ([layers.Dense(3)] if case.startswith("a module") else [])
    keras_model = sequential((4,), *stack)
    for source, target in [(keras_model, torch_model), (torch_model, keras_model)]:
        before = digest(target)
        with pytest.raises(TypeError, match=message):
            helpers.transfer(source, target)
        assert digest(target) == before


# ---------------------------------------------------------------- random twins

RANDOM_TWINS = 36  # six starting points, six seeds each
CONV = {1: layers.Conv1D, 2: layers.Conv2D, 3: layers.Conv3D}
CONV_T = {1: layers.Conv1DTranspose, 2: layers.Conv2DTranspose, 3: layers.Conv3DTranspose}
DEPTHWISE = {1: layers.DepthwiseConv1D, 2: layers.DepthwiseConv2D}
POOL = {
    "max": {1: layers.MaxPooling1D, 2: layers.MaxPooling2D, 3: layers.MaxPooling3D},
    "average": {1: layers.AveragePooling1D, 2: layers.AveragePooling2D, 3: layers.AveragePooling3D},
}
GLOBAL_POOL = {
    1: layers.GlobalAveragePooling1D,
    2: layers.GlobalAveragePooling2D,
    3: layers.GlobalAveragePooling3D,
}
TORCH_POOL = {"max": "MaxPool{}d", "average": "AvgPool{}d"}
# Keras layers that make an input an image: fed channels-last to Keras, channels-first to torch
IMAGE_READERS = ("Conv", "Depthwise", "MaxPooling", "AveragePooling", "Global")


@dataclass
class Twin:
    """A Keras model and its torch twin, grown one block at a time."""

    state: tuple  # ("features", F) | ("sequence", steps, F) | ("map", spatial sizes, channels)
    keras: list = field(default_factory=list)
    torch: list = field(default_factory=list)
    swapped: bool = False  # the torch side transposed two equal-sized axes, Keras did not
    reordered: bool = False  # features flattened from a map: each side has its own order

    def add(self, keras_layers: list, torch_modules: list, state: tuple | None = None) -> None:
        self.keras += keras_layers
        self.torch += torch_modules
        self.reordered = self.reordered and state is None
        self.state = state or self.state


def grow_features(twin: Twin, rng: np.random.Generator) -> None:
    (size,) = twin.state[1:]
    choice = rng.choice(["dense", "batchnorm", "layernorm", "sequence", "map"])
    if choice == "dense" or (choice in ("sequence", "map") and (size % 2 or twin.reordered)):
        units = int(rng.integers(3, 8))
        twin.add(
            [layers.Dense(units, activation="tanh")],
            [nn.Linear(size, units), nn.Tanh()],
            ("features", units),
        )
    elif choice == "batchnorm":
        twin.add(
            [layers.BatchNormalization(epsilon=1e-5, momentum=0.9)],
            [nn.BatchNorm1d(size, momentum=0.1)],
        )
    elif choice == "layernorm":
        twin.add([layers.LayerNormalization(epsilon=1e-5)], [nn.LayerNorm(size)])
    elif choice == "sequence":
        twin.add(
            [layers.Reshape((2, size // 2))],
            [nn.Unflatten(1, (2, size // 2))],
            ("sequence", 2, size // 2),
        )
    else:  # a Keras (length, channels) map is torch's (channels, length)
        twin.add(
            [layers.Reshape((size // 2, 2))],
            [nn.Unflatten(1, (size // 2, 2)), Permute(0, 2, 1)],
            ("map", (size // 2,), 2),
        )


def grow_sequence(twin: Twin, rng: np.random.Generator) -> None:
    steps, size = twin.state[1:]
    choice = rng.choice(["recurrent", "dense", "layernorm", "batchnorm", "flatten", "map"])
    units = int(rng.integers(3, 6))
    if choice == "recurrent":
        sequences = bool(rng.integers(2))
        keras_type, torch_type = (layers.LSTM, nn.LSTM) if rng.integers(2) else (layers.GRU, nn.GRU)
        state = ("sequence", steps, units) if sequences else ("features", units)
        twin.add(
            [keras_type(units, return_sequences=sequences)],
            [torch_type(size, units, batch_first=True), Steps(sequences)],
            state,
        )
    elif choice == "dense":
        twin.add([layers.Dense(units)], [nn.Linear(size, units)], ("sequence", steps, units))
    elif choice == "layernorm":
        twin.add([layers.LayerNormalization(epsilon=1e-5)], [nn.LayerNorm(size)])
    elif choice == "batchnorm":  # torch normalises dimension 1: the features go there and back
        twin.add(
            [layers.BatchNormalization(epsilon=1e-5, momentum=0.9)],
            [Permute(0, 2, 1), nn.BatchNorm1d(size, momentum=0.1), Permute(0, 2, 1)],
        )
    elif choice == "flatten":
        twin.add([layers.Flatten()], [nn.Flatten()], ("features", steps * size))
    else:  # Keras reads (steps, features) as (length, channels) already
        twin.add([], [Permute(0, 2, 1)], ("map", (steps,), size))


def grow_map(twin: Twin, rng: np.random.Generator) -> None:
    spatial, channels = twin.state[1:]
    rank, smallest = len(spatial), min(spatial)
    choice = rng.choice(
        [
            "conv",
            "conv",
            "transpose",
            "depthwise",
            "pool",
            "batchnorm",
            "global",
            "flatten",
            "dense",
            "sequence",
        ]
    )
    filters = int(rng.integers(2, 5))
    if choice == "conv" or (choice == "depthwise" and rank == 3):
        kernel, stride = int(rng.integers(1, min(3, smallest) + 1)), int(rng.integers(1, 3))
        same = stride == 1 and kernel % 2 == 1 and bool(rng.integers(2))
        groups = 2 if channels % 2 == 0 and filters % 2 == 0 and rng.integers(2) else 1
        twin.add(
            [
                CONV[rank](
                    filters,
                    kernel,
                    strides=stride,
                    padding="same" if same else "valid",
                    groups=groups,
                    activation="tanh",
                )
            ],
            [
                getattr(nn, f"Conv{rank}d")(
                    channels,
                    filters,
                    kernel,
                    stride=stride,
                    padding=(kernel - 1) // 2 if same else 0,
                    groups=groups,
                ),
                nn.Tanh(),
            ],
            ("map", tuple(n if same else (n - kernel) // stride + 1 for n in spatial), filters),
        )
    elif choice == "transpose" and max(spatial) <= 5:
        kernel, stride = int(rng.integers(2, 4)), int(rng.integers(1, 3))
        twin.add(
            [CONV_T[rank](filters, kernel, strides=stride)],
            [getattr(nn, f"ConvTranspose{rank}d")(channels, filters, kernel, stride=stride)],
            ("map", tuple((n - 1) * stride + kernel for n in spatial), filters),
        )
    elif choice == "depthwise":
        kernel, multiplier = int(rng.integers(1, min(3, smallest) + 1)), int(rng.integers(1, 3))
        twin.add(
            [DEPTHWISE[rank](kernel, depth_multiplier=multiplier)],
            [getattr(nn, f"Conv{rank}d")(channels, channels * multiplier, kernel, groups=channels)],
            ("map", tuple(n - kernel + 1 for n in spatial), channels * multiplier),
        )
    elif choice == "pool" and smallest >= 2:
        kind = rng.choice(["max", "average"])
        twin.add(
            [POOL[kind][rank](2)],
            [getattr(nn, TORCH_POOL[kind].format(rank))(2)],
            ("map", tuple(n // 2 for n in spatial), channels),
        )
    elif choice == "batchnorm":
        twin.add(
            [layers.BatchNormalization(epsilon=1e-5, momentum=0.9)],
            [getattr(nn, f"BatchNorm{rank}d")(channels, momentum=0.1)],
        )
    elif choice == "global":
        by_hand = [Mean(*range(2, rank + 2))]
        pooled = [getattr(nn, f"AdaptiveAvgPool{rank}d")(1), nn.Flatten()]
        twin.add(
            [GLOBAL_POOL[rank]()], by_hand if rng.integers(2) else pooled, ("features", channels)
        )
    elif choice == "dense":  # Keras' Dense reads the channels: torch moves them last and back
        to_last, back = (0, *range(2, rank + 2), 1), (0, rank + 1, *range(1, rank + 1))
        twin.add(
            [layers.Dense(filters)],
            [Permute(*to_last), nn.Linear(channels, filters), Permute(*back)],
            ("map", spatial, filters),
        )
    elif choice == "sequence" and rank == 1:
        twin.add([], [Permute(0, 2, 1)], ("sequence", spatial[0], channels))
    elif choice == "sequence" and rank == 2:
        rows, columns = spatial
        twin.add(
            [layers.Reshape((rows, columns * channels))],
            [Permute(0, 2, 3, 1), Reshape(rows, columns * channels)],
            ("sequence", rows, columns * channels),
        )
    else:  # torch flattens (channels, *spatial) unless it moves the channels last first
        to_last = [Permute(0, *range(2, rank + 2), 1)] if rng.integers(2) else []
        twin.add(
            [layers.Flatten()],
            [*to_last, nn.Flatten()],
            ("features", int(np.prod(spatial)) * channels),
        )
        twin.reordered = not to_last


def maybe_swap(twin: Twin, rng: np.random.Generator) -> None:
    """Now and then transpose two equal-sized axes on the torch side only."""
    if twin.swapped or rng.random() > 0.3:
        return
    if twin.state[0] == "sequence" and twin.state[1] == twin.state[2]:
        twin.add([], [Permute(0, 2, 1)])
        twin.swapped = True
    elif twin.state[0] == "map" and len(twin.state[1]) >= 2 and len(set(twin.state[1])) == 1:
        twin.add([], [Permute(0, 1, 3, 2, *range(4, len(twin.state[1]) + 2))])
        twin.swapped = True


def random_twin(seed: int) -> tuple[keras.Model, nn.Module, tuple, bool]:
    """A random Keras model, its torch twin, inputs for both, and whether torch swapped axes."""
    rng = np.random.default_rng(seed)
    start = ["features", "tokens", "sequence", "map1", "map2", "map3"][seed % 6]
    dtype = "float32"
    if start == "features":
        shape = (int(rng.integers(4, 9)),)
        twin = Twin(("features", shape[0]))
    elif start == "tokens":
        shape, dtype = (int(rng.integers(3, 6)),), "int32"
        twin = Twin(("sequence", shape[0], 4), [layers.Embedding(10, 4)], [nn.Embedding(10, 4)])
    elif start == "sequence":
        shape = (int(rng.integers(3, 6)), int(rng.integers(3, 6)))
        twin = Twin(("sequence", *shape))
    else:
        rank = int(start[-1])
        side = int(rng.integers(*{1: (6, 10), 2: (5, 9), 3: (4, 6)}[rank]))
        shape = (side,) * rank + (int(rng.integers(1, 4)),)
        twin = Twin(("map", shape[:-1], shape[-1]))
    grow = {"features": grow_features, "sequence": grow_sequence, "map": grow_map}
    for _ in range(int(rng.integers(1, 5))):
        grow[twin.state[0]](twin, rng)
        maybe_swap(twin, rng)
    if twin.state[0] != "features":
        sizes = twin.state[1] if twin.state[0] == "map" else (twin.state[1],)
        size = int(np.prod(sizes)) * twin.state[2]
        twin.add([layers.Flatten()], [nn.Flatten()], ("features", size))
    twin.add([layers.Dense(3)], [nn.Linear(twin.state[1], 3)])
    if seed % 4 == 0:  # a functional model rather than a Sequential one
        inputs = outputs = keras.Input(shape, dtype=dtype)
        for layer in twin.keras:
            outputs = layer(outputs)
        keras_model = keras.Model(inputs, outputs)
    else:
        keras_model = sequential(shape, *twin.keras, dtype=dtype)
    x = random_inputs(shape)
    if dtype == "int32":
        x = np.floor((x + 1) * 4.99).astype(np.int32)
        return keras_model, nn.Sequential(*twin.torch), (x, x.astype(np.int64)), twin.swapped
    # The torch side was built for maps channels-first, sequences (steps, features); an
    # input is an image (channels-first for torch) when Keras reads it first with a
    # convolution or pooling: otherwise torch gets the same array.
    image = type(twin.keras[0]).__name__.startswith(IMAGE_READERS)
    rank, torch_x, torch_modules = len(shape) - 1, x, twin.torch
    if image:
        torch_x = channels_first(x)
    if image and start == "sequence":
        torch_modules = [Permute(0, 2, 1), *torch_modules]
    if not image and start.startswith("map"):
        torch_modules = [Permute(0, rank + 1, *range(1, rank + 1)), *torch_modules]
    return keras_model, nn.Sequential(*torch_modules), (x, torch_x), twin.swapped


@pytest.mark.parametrize("seed", range(RANDOM_TWINS))
def test_random_twins_agree_after_transfer_or_are_refused_unchanged(seed):
    keras_model, torch_model, inputs, swapped = random_twin(seed)
    direction = ["keras->torch", "torch->keras"][seed // 6 % 2]
    source, target = ordered(keras_model, torch_model, direction)
    scramble(source, seed)
    before = digest(target)
    try:
        helpers.transfer(source, target)
    except (LayoutError, TypeError) as error:
        assert swapped, f"a faithful twin was refused: {error}"
        assert "layer #" in str(error)
        assert digest(target) == before
        return
    assert max_difference(*predictions(keras_model, torch_model, inputs)) <= TOLERANCE


# ---------------------------------------------------------------- errors change nothing


def named_twins(keras_stack: list, torch_stack: list, shape=(4,)) -> tuple:
    return sequential(shape, *keras_stack), nn.Sequential(*torch_stack)


# case: (make the twins, the error, its message, or one message per direction)
ERRORS: dict[str, tuple[Callable, type, str | dict[str, str]]] = {
    "different units": (
        lambda: named_twins([layers.Dense(3, name="dense")], [nn.Linear(4, 5)]),
        LayoutError,
        r"layer #0: Keras 'dense' \(Dense\) has units=3 but torch '0' \(Linear\) has units=5",
    ),
    "different input features": (
        lambda: named_twins([layers.Dense(3)], [nn.Linear(5, 3)]),
        LayoutError,
        r"the torch model does not run on one sample shaped like the Keras model's: \(4,\): "
        r"RuntimeError",
    ),
    "different kinds": (
        lambda: named_twins([layers.LSTM(3, name="lstm")], [nn.GRU(4, 3)], shape=(5, 4)),
        LayoutError,
        {
            "keras->torch": r"layer #0: torch '0' \(GRU\) cannot take weights from Keras 'lstm'",
            "torch->keras": r"layer #0: Keras 'lstm' \(LSTM\) cannot take weights from torch '0'",
        },
    ),
    "different layer counts": (
        lambda: named_twins([layers.Dense(3, name="dense")], [nn.Linear(4, 3), nn.Linear(3, 3)]),
        LayoutError,
        r"the models do not correspond: the source has \d layers with weights \(.*\), the target",
    ),
    "bias on one side only": (
        lambda: named_twins([layers.Dense(3, use_bias=False)], [nn.Linear(4, 3)]),
        LayoutError,
        r"layer #0: .* has use_bias=False but torch '0' \(Linear\) has use_bias=True",
    ),
    "unsupported Keras layer": (
        lambda: named_twins([layers.SimpleRNN(3, name="rnn")], [nn.LSTM(4, 3)], shape=(5, 4)),
        TypeError,
        r"Keras 'rnn' \(SimpleRNN\) holds weights, but transfer has no conversion for it",
    ),
    "unsupported torch layer": (
        lambda: named_twins([layers.Dense(3)], [nn.Linear(4, 3), nn.PReLU()]),
        TypeError,
        r"torch '1' \(PReLU\) holds weights, but transfer has no conversion for it",
    ),
    "unbuilt Keras model": (
        lambda: (keras.Sequential([layers.Dense(3)], name="unbuilt"), nn.Linear(4, 3)),
        LayoutError,
        r"Keras model 'unbuilt' is not built yet",
    ),
    "GRU reset_after=False": (
        lambda: named_twins([layers.GRU(3, reset_after=False)], [nn.GRU(4, 3)], shape=(5, 4)),
        LayoutError,
        r"\(GRU\) has reset_after=False but torch '0' \(GRU\) has reset_after=True",
    ),
    "BatchNorm epsilon": (
        lambda: named_twins([layers.BatchNormalization()], [nn.BatchNorm1d(4)]),
        LayoutError,
        r"has epsilon=0\.001 but torch '0' \(BatchNorm1d\) has epsilon=1e-05; predictions",
    ),
    "BatchNorm without running statistics": (
        lambda: named_twins(
            [layers.BatchNormalization(epsilon=1e-5)],
            [nn.BatchNorm1d(4, track_running_stats=False)],
        ),
        LayoutError,
        r"has moving statistics=True but torch '0' \(BatchNorm1d\) has moving statistics=False",
    ),
    "conv strides": (
        lambda: named_twins([layers.Conv2D(2, 3, strides=2)], [nn.Conv2d(1, 2, 3)], (6, 6, 1)),
        LayoutError,
        r"has strides=\(2, 2\) but torch '0' \(Conv2d\) has strides=\(1, 1\)",
    ),
    "'same' padding that TF puts after, torch before": (
        lambda: named_twins(
            [layers.Conv2D(2, 3, strides=2, padding="same")],
            [nn.Conv2d(1, 2, 3, stride=2, padding=1)],
            (6, 6, 1),
        ),
        LayoutError,
        r"has padding before=\(0, 0\) but torch '0' \(Conv2d\) has padding before=\(1, 1\)",
    ),
    "transposed conv of another output size": (
        lambda: named_twins(
            [layers.Conv2DTranspose(2, 3, strides=2, padding="same")],
            [nn.ConvTranspose2d(1, 2, 3, stride=2, padding=1, output_padding=1)],
            (5, 5, 1),
        ),
        LayoutError,
        r"has cropping before=\(0, 0\) but torch '0' \(ConvTranspose2d\) has cropping before=\(1",
    ),
    "'same' padding with strides on an input of no fixed size": (
        lambda: named_twins(
            [layers.Conv2D(2, 3, strides=2, padding="same"), layers.GlobalAveragePooling2D()],
            [nn.Conv2d(1, 2, 3, stride=2, padding=1), nn.AdaptiveAvgPool2d(1)],
            (None, None, 1),
        ),
        LayoutError,
        r"has padding before=\"'same' with strides \(2, 2\) on an input of no fixed size\"",
    ),
    "two-layer torch LSTM": (
        lambda: named_twins([layers.LSTM(3)], [nn.LSTM(4, 3, num_layers=2)], shape=(5, 4)),
        LayoutError,
        r"has num_layers=1 but torch '0' \(LSTM\) has num_layers=2",
    ),
    "a Dense on a feature map's width, not its channels": (
        lambda: named_twins(
            [layers.Conv2D(3, 3), layers.Dense(2, name="dense")],
            [nn.Conv2d(1, 3, 3), nn.Linear(3, 2)],
            (5, 5, 1),
        ),
        LayoutError,
        r"layer #1: Keras 'dense' \(Dense\) reads features: 3 \(outputs of layer #0\), but "
        r"torch '1' \(Linear\) reads 3 \(spatial axis 2 of layer #0\): they do not hold the same",
    ),
    "an LSTM reading time steps as features": (
        lambda: named_twins([layers.LSTM(3)], [Permute(0, 2, 1), nn.LSTM(4, 3)], shape=(4, 4)),
        LayoutError,
        r"layer #0: Keras 'lstm.*' \(LSTM\) reads features: 4 \(input 0 axis 2\), but torch "
        r"'1' \(LSTM\) reads 4 \(input 0 axis 1\)",
    ),
}


@pytest.mark.parametrize("direction", ["keras->torch", "torch->keras"])
@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_pairs_raise_clearly_and_change_nothing(case, direction):
    make, error, message = ERRORS[case]
    if isinstance(message, dict):
        message = message[direction]
    source, target = ordered(*make(), direction)
    before = digest(target)
    with pytest.raises(error, match=message):
        helpers.transfer(source, target)
    assert digest(target) == before


def test_nnet_with_skip_layer_connections_is_refused(small_digits):
    x, y, _ = small_digits
    fit = nnet(x, y, size=2, skip=True, softmax=True, maxit=0, trace=False, seed=0)
    torch_model = nn.Sequential(nn.Linear(49, 2), nn.Sigmoid(), nn.Linear(2, 10)).double()
    before = digest(torch_model)
    with pytest.raises(TypeError, match="skip-layer connections"):
        helpers.transfer(fit, torch_model)
    assert digest(torch_model) == before


def test_models_of_one_framework_are_pointed_elsewhere():
    with pytest.raises(TypeError, match=r"got torch -> torch; .* helpers\.flatten"):
        helpers.transfer(nn.Linear(2, 2), nn.Linear(2, 2))


@pytest.mark.parametrize("direction", ["keras->torch", "torch->keras"])
def test_a_write_failing_part_way_puts_everything_back(direction, monkeypatch):
    keras_model, torch_model = cnn()
    source, target = ordered(keras_model, torch_model, direction)
    scramble(source)
    before = digest(target)
    from helpers.adapters import keras_adapter, torch_adapter

    calls = []

    def failing_on_the_third_write(original):
        def write(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("the disk is full")
            return original(*args, **kwargs)

        return write

    if direction == "keras->torch":
        # A copy_ into a CPU tensor cannot fail; one to a device can: pretend the target
        # lives on one (its writes count as fallible), and make its third copy fail.
        real_handle = torch_adapter._handle
        monkeypatch.setattr(
            torch_adapter,
            "_handle",
            lambda name, tensor: dataclasses.replace(real_handle(name, tensor), fallible=True),
        )
        monkeypatch.setattr(torch.Tensor, "copy_", failing_on_the_third_write(torch.Tensor.copy_))
    else:  # Keras's assign, or the TensorFlow op it ends in, which restore calls directly
        variable_class = type(keras_model.weights[0])
        monkeypatch.setattr(
            variable_class, "assign", failing_on_the_third_write(variable_class.assign)
        )
        monkeypatch.setattr(
            keras_adapter,
            "_assign_directly",
            failing_on_the_third_write(keras_adapter._assign_directly),
        )
    with pytest.raises(RuntimeError, match="the disk is full"):
        helpers.transfer(source, target)
    monkeypatch.undo()
    assert len(calls) > 3  # the two written before the failure were written back
    assert digest(target) == before


# ---------------------------------------------------------------- the table itself


def test_every_row_names_classes_that_exist():
    """A misspelt class name would make a row silently unusable."""
    for row in PAIRS:
        assert row.keras and row.torch and row.settings
        for name in row.torch:
            assert isinstance(getattr(nn, name), type), name
        for name in row.keras if row.other == "keras" else ():
            assert isinstance(getattr(layers, name), type), name


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_transposed_convolutions_transfer_both_ways(rank):
    conv_t = {1: layers.Conv1DTranspose, 2: layers.Conv2DTranspose, 3: layers.Conv3DTranspose}
    torch_conv_t = getattr(nn, f"ConvTranspose{rank}d")
    keras_model = sequential(
        (3,) * rank + (2,),
        conv_t[rank](3, 3, strides=2),  # 'valid': 3 -> 7
        conv_t[rank](2, 4, strides=2, padding="same"),  # 7 -> 14, one cropped each side
        layers.Flatten(),
        layers.Dense(2),
    )
    torch_model = nn.Sequential(
        torch_conv_t(2, 3, 3, stride=2),
        torch_conv_t(3, 2, 4, stride=2, padding=1),
        nn.Flatten(),
        nn.Linear(2 * 14**rank, 2),
    )
    x = random_inputs((3,) * rank + (2,))
    assert max(both_ways(keras_model, torch_model, x, channels_first(x))) <= TOLERANCE


def test_a_sequence_of_no_fixed_length_transfers():
    keras_model = sequential((None, 3), layers.GRU(4, return_sequences=True), layers.LSTM(2))
    torch_model = nn.Sequential(
        nn.GRU(3, 4, batch_first=True),
        Steps(sequences=True),
        nn.LSTM(4, 2, batch_first=True),
        Steps(sequences=False),
    )
    x = random_inputs((7, 3))  # 7 steps here; any other number would do
    assert max(both_ways(keras_model, torch_model, x, x)) <= TOLERANCE


def test_a_keras_layer_transfer_cannot_follow_is_refused():
    keras_model = sequential(
        (4,), layers.Lambda(lambda x: x[:, ::-1], name="reverse"), layers.Dense(3)
    )
    torch_model = nn.Sequential(nn.Linear(4, 3))
    for source, target in [(keras_model, torch_model), (torch_model, keras_model)]:
        before = digest(target)
        with pytest.raises(TypeError, match=r"Keras 'reverse' \(Lambda\), which transfer does not"):
            helpers.transfer(source, target)
        assert digest(target) == before


class Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.linear(x))


def test_a_layer_called_on_different_things_is_refused():
    inputs = keras.Input((4,))
    dense = layers.Dense(4, name="shared")
    keras_model = keras.Model(inputs, dense(dense(inputs)))
    torch_model = Twice()
    before = digest(torch_model)
    with pytest.raises(TypeError, match=r"Keras 'shared' \(Dense\) is called on inputs that hold"):
        helpers.transfer(keras_model, torch_model)
    assert digest(torch_model) == before


def test_write_all_checks_every_shape_before_writing_anything():
    weights = {"kernel": np.zeros((2, 3)), "bias": np.zeros(3)}
    _, (kernel, bias) = helpers.adapters.handles_for(weights, "all")
    with pytest.raises(LayoutError, match=r"tensor 'bias': expected shape \(3,\), got \(1,\)"):
        helpers.adapters.write_all([(kernel, np.ones((2, 3))), (bias, np.ones(1))])
    assert not weights["kernel"].any()  # the first array, which fits, was not written either
