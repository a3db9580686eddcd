"""helpers.transfer: a Keras model and its PyTorch twin predict the same after a transfer."""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import helpers  # noqa: E402
from helpers import LayoutError  # noqa: E402
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
        named = [(n, t.detach().numpy()) for n, t in model.state_dict(keep_vars=True).items()]
    elif isinstance(model, keras.Model):
        named = [(v.path, v.numpy()) for v in model.weights]
    else:
        named = [("wts", model.wts)]
    hasher = hashlib.sha256()
    for name, array in named:
        hasher.update(f"{name}{array.shape}{array.dtype}".encode())
        hasher.update(np.ascontiguousarray(array).tobytes())
    return hasher.hexdigest()


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


# ---------------------------------------------------------------- errors change nothing


def named_twins(keras_stack: list, torch_stack: list, shape=(4,)) -> tuple:
    return sequential(shape, *keras_stack), nn.Sequential(*torch_stack)


# case: (make the twins, the error, its message, or one message per direction)
ERRORS: dict[str, tuple[Callable, type, str | dict[str, str]]] = {
    "different units": (
        lambda: named_twins([layers.Dense(3, name="dense")], [nn.Linear(4, 5)]),
        LayoutError,
        {
            "keras->torch": r"layer #0: torch '0' \(Linear\) 'weight': expected shape \(5, 4\), "
            r"got \(3, 4\) from Keras 'dense' \(Dense\)",
            "torch->keras": r"layer #0: Keras 'dense' \(Dense\) 'kernel': expected shape \(4, 3\), "
            r"got \(4, 5\) from torch '0' \(Linear\)",
        },
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
        r"layer #0: .* has tensors \[.*\], but .* gives \[.*\] \(a bias or a scale on one side",
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
        TypeError,
        r"\(GRU\) has reset_after=False; torch's GRU .* \(reset_after=True",
    ),
    "BatchNorm epsilon": (
        lambda: named_twins([layers.BatchNormalization()], [nn.BatchNorm1d(4)]),
        LayoutError,
        r"has epsilon=0\.001 but torch '0' \(BatchNorm1d\) has epsilon=1e-05; predictions",
    ),
    "conv strides": (
        lambda: named_twins([layers.Conv2D(2, 3, strides=2)], [nn.Conv2d(1, 2, 3)], (6, 6, 1)),
        LayoutError,
        r"has strides=\(2, 2\) but torch '0' \(Conv2d\) has strides=\(1, 1\)",
    ),
    "two-layer torch LSTM": (
        lambda: named_twins([layers.LSTM(3)], [nn.LSTM(4, 3, num_layers=2)], shape=(5, 4)),
        LayoutError,
        r"has num_layers=1 but torch '0' \(LSTM\) has num_layers=2",
    ),
    "Reshape of a feature map": (
        lambda: named_twins(
            [layers.Conv2D(2, 3), layers.Reshape((32,)), layers.Dense(3)],
            [nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(32, 3)],
            shape=(6, 6, 1),
        ),
        TypeError,
        r"\(Reshape\) rearranges a convolution's channels-last output",
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
    if direction == "keras->torch":
        owner, method = torch.Tensor, "copy_"
    else:
        owner, method = type(keras_model.weights[0]), "assign"
    original, calls = getattr(owner, method), []

    def fail_on_the_third_write(self, *args, **kwargs):
        calls.append(method)
        if len(calls) == 3:
            raise RuntimeError("the disk is full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, method, fail_on_the_third_write)
    with pytest.raises(RuntimeError, match="the disk is full"):
        helpers.transfer(source, target)
    monkeypatch.undo()
    assert len(calls) > 3  # the two written before the failure were written back
    assert digest(target) == before
