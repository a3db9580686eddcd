"""helpers.functional: a model evaluated at a vector, never written into the model or the vector.

Every result is compared with the model itself after ``restore`` (into a copy), every call is
followed by a hash of the model and of the vector, and every refusal is checked by message.
Keras on the PyTorch backend is checked in tests/test_keras_adapter.py's subprocess.
"""

from __future__ import annotations

import copy
import dataclasses
import doctest
import functools
import hashlib
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers
import helpers._functional
from helpers import LayoutError, PrecisionWarning

torch = pytest.importorskip("torch")
nn = torch.nn

RNG = np.random.default_rng(0)


def digest(model: nn.Module) -> str:
    """A hash of every state_dict tensor's name, dtype and bytes (parameters and buffers)."""
    hasher = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        hasher.update(f"{name}{tensor.dtype}".encode() + raw.tobytes())
    return hasher.hexdigest()


def vector_digest(vector: np.ndarray | torch.Tensor) -> str:
    if isinstance(vector, torch.Tensor):
        vector = vector.detach().numpy()
    return hashlib.sha256(np.ascontiguousarray(vector).tobytes()).hexdigest()


def restored_copy(model, vector: np.ndarray, layout: helpers.Layout):
    """What functional must agree with: a deep copy of the model holding the vector."""
    twin = copy.deepcopy(model)
    helpers.restore(twin, vector, layout)
    return twin


def torch_forward(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def mlp(seed: int = 0) -> nn.Sequential:
    """The lesson MLP's shape, scaled down: tanh hidden layers, ten outputs."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 10))


def batch_norm_net() -> nn.Sequential:
    """Linear, batch norm (with statistics off their initial values), linear; in eval mode."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    with torch.no_grad():
        model(torch.randn(16, 6))  # training mode: one update of the running statistics
    return model.eval()


X = RNG.normal(size=(7, 12)).astype(np.float32)
X_BN = RNG.normal(size=(7, 6)).astype(np.float32)


def perturbed(vector: np.ndarray, seed: int, scale: float = 0.3) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(size=vector.shape) * scale
    return (vector + noise).astype(vector.dtype)


# ---------------------------------------------------------------- PyTorch: values


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("include", ["trainable", "all"])
def test_torch_single_vector_is_the_restored_model(include: str, order: str) -> None:
    model = batch_norm_net()
    original, layout = helpers.flatten(model, include=include, order=order)
    vector = perturbed(original, seed=1)
    if include == "all":  # keep num_batches_tracked a whole number, and the variances positive
        entry = layout["1.num_batches_tracked"]
        vector[entry.offset] = 3
        variance = layout["1.running_var"]
        vector[variance.offset : variance.offset + variance.size] **= 2
    before, vector_before = digest(model), vector_digest(vector)
    f = helpers.functional(model, layout)
    outputs = f(vector, X_BN)
    assert isinstance(outputs, np.ndarray) and outputs.shape == (7, 3)
    expected = torch_forward(restored_copy(model, vector, layout), X_BN)
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-6)
    assert not np.allclose(
        outputs, torch_forward(model, X_BN)
    )  # the vector's weights, not the model's
    assert digest(model) == before and vector_digest(vector) == vector_before


def test_torch_tensor_in_torch_tensor_out() -> None:
    model = mlp()
    vector, layout = helpers.flatten(model)
    f = helpers.functional(model, layout)
    outputs = f(torch.from_numpy(vector), torch.from_numpy(X))
    assert isinstance(outputs, torch.Tensor)
    np.testing.assert_array_equal(outputs.numpy(), torch_forward(model, X))


@settings(max_examples=15)
@given(
    members=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    order=st.sampled_from(["C", "F"]),
    as_tensor=st.booleans(),
)
def test_torch_population_is_a_loop_of_single_calls(
    members: int, seed: int, order: str, as_tensor: bool
) -> None:
    model = mlp(seed % 3)
    vector, layout = helpers.flatten(model, order=order)
    population = np.stack([perturbed(vector, seed + member) for member in range(members)])
    before, population_before = digest(model), vector_digest(population)
    f = helpers.functional(model, layout)
    together = f(torch.from_numpy(population) if as_tensor else population, X)
    if as_tensor:
        together = together.detach().numpy()
    assert together.shape == (members, 7, 10)
    one_by_one = np.stack([f(member, X) for member in population])
    np.testing.assert_allclose(together, one_by_one, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        one_by_one[-1], torch_forward(restored_copy(model, population[-1], layout), X), atol=1e-6
    )
    assert digest(model) == before and vector_digest(population) == population_before


def test_torch_population_with_batch_norm_statistics_from_the_vector() -> None:
    model = batch_norm_net()
    vector, layout = helpers.flatten(model, include="all")
    population = np.stack([vector, vector])
    mean = layout["1.running_mean"]
    population[1, mean.offset : mean.offset + mean.size] += 1.0  # shift member 1's means
    outputs = helpers.functional(model, layout)(population, X_BN)
    np.testing.assert_allclose(outputs[0], torch_forward(model, X_BN), atol=1e-6)
    shifted = torch_forward(restored_copy(model, population[1], layout), X_BN)
    np.testing.assert_allclose(outputs[1], shifted, atol=1e-6)
    assert not np.allclose(outputs[0], outputs[1])


# ---------------------------------------------------------------- PyTorch: gradients


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits, labels)


def digits(count: int) -> tuple[np.ndarray, np.ndarray]:
    (x_train, y_train), _ = helpers.data.load_mnist()
    return (x_train[:count].reshape(count, -1) / 255).astype(np.float32), y_train[:count]


@pytest.mark.parametrize("order", ["C", "F"])
def test_gradient_is_a_vector_in_the_layout_order(order: str) -> None:
    """torch.func.grad through functional equals flatten of the .grad's after backward()."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 16), nn.Tanh(), nn.Linear(16, 10))
    x, y = digits(64)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    vector, layout = helpers.flatten(model, order=order)
    f = helpers.functional(model, layout)
    gradient = torch.func.grad(lambda v: cross_entropy(f(v, inputs), labels))(
        torch.from_numpy(vector)
    )
    assert gradient.shape == (layout.size,)
    cross_entropy(model(inputs), labels).backward()
    grads = {name: p.grad.numpy() for name, p in model.named_parameters()}
    expected, _ = helpers.flatten(grads, order=order)
    np.testing.assert_allclose(gradient.numpy(), expected, rtol=0, atol=1e-6)
    # Plain autograd reaches the same vector: .backward() fills the vector's .grad.
    leaf = torch.from_numpy(vector.copy()).requires_grad_()
    cross_entropy(f(leaf, inputs), labels).backward()
    np.testing.assert_allclose(leaf.grad.numpy(), expected, rtol=0, atol=1e-6)


def test_gradient_of_a_population_loss_per_member() -> None:
    """grad of the summed per-member losses: each row is that member's own gradient."""
    model = mlp()
    vector, layout = helpers.flatten(model)
    population = torch.from_numpy(np.stack([vector, perturbed(vector, 2)]))
    f = helpers.functional(model, layout)
    labels = torch.arange(7) % 10
    inputs = torch.from_numpy(X)

    def total(members: torch.Tensor) -> torch.Tensor:
        outputs = f(members, inputs)
        return sum(cross_entropy(outputs[m], labels) for m in range(len(members)))

    rows = torch.func.grad(total)(population)
    for member in range(2):
        alone = torch.func.grad(lambda v: cross_entropy(f(v, inputs), labels))(population[member])
        np.testing.assert_allclose(rows[member].numpy(), alone.numpy(), atol=1e-6)


# ---------------------------------------------------------------- PyTorch: what is refused


def test_batch_norm_in_training_mode_is_refused_and_nothing_changes() -> None:
    for include in ("trainable", "all"):
        model = batch_norm_net()
        vector, layout = helpers.flatten(model, include=include)
        f = helpers.functional(model, layout)
        model.train()
        before, vector_before = digest(model), vector_digest(vector)
        for attempt in (vector, np.stack([vector, vector]), torch.from_numpy(vector)):
            with pytest.raises(ValueError, match=r"module '1' \(BatchNorm1d\) is in training mode"):
                f(attempt, X_BN)
        assert digest(model) == before and vector_digest(vector) == vector_before
        model.eval()  # the same f works again once the model is in eval mode
        np.testing.assert_allclose(f(vector, X_BN), torch_forward(model, X_BN), atol=1e-6)


def test_gradient_with_respect_to_running_statistics_is_refused() -> None:
    model = batch_norm_net()
    vector, layout = helpers.flatten(model, include="all")
    f = helpers.functional(model, layout)
    with pytest.raises(ValueError, match=r"running statistics \['1.running_mean', '1.running_var'"):
        torch.func.grad(lambda v: f(v, torch.from_numpy(X_BN)).sum())(torch.from_numpy(vector))
    f(torch.from_numpy(vector), X_BN)  # without a gradient, a tensor vector is fine


def test_integer_buffer_in_the_vector_must_hold_a_whole_number() -> None:
    model = batch_norm_net()
    vector, layout = helpers.flatten(model, include="all")
    f = helpers.functional(model, layout)
    population = np.stack([vector, vector])
    population[1, layout["1.num_batches_tracked"].offset] = 2.5
    with pytest.raises(
        LayoutError, match=r"vector: member 1: tensor '1.num_batches_tracked': expected whole"
    ):
        f(population, X_BN)
    with pytest.raises(LayoutError, match=r"vector: tensor '1.num_batches_tracked'"):
        f(torch.from_numpy(population[1]), X_BN)


def test_dropout_in_training_mode_draws_per_member() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 32), nn.Dropout(0.5), nn.Linear(32, 2))
    vector, layout = helpers.flatten(model)
    f = helpers.functional(model, layout)
    same = np.stack([vector] * 4)
    model.eval()
    outputs = f(same, X)
    assert all(np.array_equal(outputs[0], member) for member in outputs[1:])
    model.train()
    torch.manual_seed(1)
    outputs = f(same, X)
    assert not any(np.array_equal(outputs[0], member) for member in outputs[1:])
    torch.manual_seed(1)
    np.testing.assert_array_equal(f(same, X), outputs)  # reproducible from torch's seed


class CountsCalls(nn.Module):
    """A module whose forward pass writes into its own buffer: functional cannot allow that."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(12, 2)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.linear(x)


def test_a_forward_pass_that_writes_in_place_is_reported() -> None:
    model = CountsCalls()
    vector, layout = helpers.flatten(model)
    with pytest.raises(ValueError, match=r"wrote into \['calls'\] in place"):
        helpers.functional(model, layout)(vector, X)


def test_tied_weights_follow_their_one_slot() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(11, 4), nn.Linear(4, 11))
    model[1].weight = model[0].weight
    vector, layout = helpers.flatten(model)
    assert layout.names == ["0.weight", "1.bias"]
    tokens = torch.tensor([[1, 5, 7]])
    new = perturbed(vector, 3)
    outputs = helpers.functional(model, layout)(new, tokens)
    with torch.no_grad():
        expected = restored_copy(model, new, layout)(tokens).numpy()
    np.testing.assert_allclose(outputs, expected, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_model_on_the_gpu() -> None:
    cpu_model = mlp()
    vector, layout = helpers.flatten(cpu_model)
    population = np.stack([perturbed(vector, seed) for seed in range(3)])
    on_cpu = helpers.functional(cpu_model, layout)(population, X)
    model = copy.deepcopy(cpu_model).cuda()
    before = digest(model)
    f = helpers.functional(model, layout)
    on_gpu = f(population, X)  # NumPy in, NumPy out; the vector goes to the GPU once
    assert isinstance(on_gpu, np.ndarray)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=0, atol=1e-5)
    inputs, labels = torch.from_numpy(X).cuda(), torch.arange(7, device="cuda") % 10
    members = torch.from_numpy(population).cuda()
    gradient = torch.func.grad(lambda v: cross_entropy(f(v, inputs), labels))(members[1])
    assert gradient.device.type == "cuda" and gradient.shape == (layout.size,)
    twin = restored_copy(cpu_model, population[1], layout)
    cross_entropy(twin(torch.from_numpy(X)), labels.cpu()).backward()
    expected, _ = helpers.flatten({n: p.grad.numpy() for n, p in twin.named_parameters()})
    np.testing.assert_allclose(gradient.cpu().numpy(), expected, rtol=0, atol=1e-5)
    assert digest(model) == before


def test_a_sharded_model_is_refused() -> None:
    """A DTensor model (here on a one-process group) runs collectives: functional refuses it."""
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        mesh = init_device_mesh("cpu", (1,))
        model = nn.Linear(12, 2)
        model.weight = nn.Parameter(distribute_tensor(model.weight.detach(), mesh, [Shard(0)]))
        _, layout = helpers.flatten(model)
        with pytest.raises(TypeError, match="tensor 'weight' is a DTensor: functional evaluates"):
            helpers.functional(model, layout)
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------- shapes, dtypes, layouts


def test_wrong_vectors_are_refused_by_name() -> None:
    model = mlp()
    vector, layout = helpers.flatten(model)
    f = helpers.functional(model, layout)
    n = layout.size
    cases = [
        (vector[:-1], f"vector: expected {n:,} values for this layout, got {n - 1:,}"),
        (
            np.zeros((3, n + 1), np.float32),
            rf"vector: expected {n:,} values per member of the population \(an array of shape "
            rf"\(population, {n}\)\), got shape \(3, {n + 1}\)",
        ),
        (np.zeros((0, n), np.float32), "expected at least one member, got an empty population"),
        (np.zeros((2, 2, n), np.float32), "expected one vector .1-D. or a population .2-D"),
        (vector.astype(np.float64), "vector: expected dtype float32, got float64"),
        (torch.zeros(n, dtype=torch.float64), "vector: expected dtype float32, got float64"),
        (
            torch.zeros(n, dtype=torch.bfloat16),
            "vector: expected dtype float32, got (torch.)?bfloat16",
        ),
        (torch.zeros(2, n - 1), f"got shape \\(2, {n - 1}\\)"),
    ]
    for bad, message in cases:
        with pytest.raises(LayoutError, match=message):
            f(bad, X)


def test_layouts_that_do_not_fit_are_refused_when_f_is_made() -> None:
    model = mlp()
    _, layout = helpers.flatten(model)
    _, other = helpers.flatten(nn.Sequential(nn.Linear(12, 9), nn.Linear(9, 10)))
    with pytest.raises(LayoutError, match="does not fit this model"):
        helpers.functional(model, other)
    with pytest.raises(TypeError, match="layout: expected a helpers.Layout"):
        helpers.functional(model, layout.to_json())
    with pytest.raises(LayoutError, match="it is for a numpy model, this is a torch model"):
        helpers.functional(model, helpers.flatten({"w": np.zeros(layout.size, np.float32)})[1])
    with pytest.raises(TypeError, match="only a dict of arrays takes a forward function"):
        helpers.functional(model, layout, forward=lambda arrays, x: x)


def test_a_read_only_or_strided_numpy_vector_is_read_not_written() -> None:
    model = mlp()
    vector, layout = helpers.flatten(model)
    expected = torch_forward(model, X)
    frozen = vector.copy()
    frozen.flags.writeable = False
    strided = np.repeat(vector, 2)[::2]
    f = helpers.functional(model, layout)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about read-only arrays: none may reach here
        np.testing.assert_array_equal(f(frozen, X), expected)
        np.testing.assert_array_equal(f(vector[::-1][::-1], X), expected)
        # Strided weights take another matmul path: the same values, other rounding.
        np.testing.assert_allclose(f(strided, X), expected, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- scikit-learn


@functools.cache
def sklearn_models() -> dict[str, object]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    x = RNG.normal(size=(60, 5))
    three = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return {
            "softmax": MLPClassifier((6, 4), activation="tanh", max_iter=30, random_state=0).fit(
                x, three
            ),
            "binary": MLPClassifier((6,), activation="logistic", max_iter=30, random_state=0).fit(
                x, three > 0
            ),
            "regressor": MLPRegressor(hidden_layer_sizes=(6,), max_iter=30, random_state=0).fit(
                x, x[:, :2] @ [1, 2]
            ),
            "float32": MLPClassifier((4,), max_iter=30, random_state=0).fit(
                x.astype(np.float32), three
            ),
        }


def sklearn_outputs(model, x: np.ndarray) -> np.ndarray:
    if not hasattr(model, "predict_proba"):
        return model.predict(x).reshape(len(x), -1)
    probabilities = model.predict_proba(x)
    return probabilities[:, 1:] if probabilities.shape[1] == 2 else probabilities


@pytest.mark.parametrize("order", ["C", "F"])
def test_sklearn_matches_predict(order: str) -> None:
    x = RNG.normal(size=(9, 5))
    for name, model in sklearn_models().items():
        vector, layout = helpers.flatten(model, order=order)
        f = helpers.functional(model, layout)
        np.testing.assert_allclose(f(vector, x), sklearn_outputs(model, x), rtol=0, atol=1e-12)
        population = np.stack([perturbed(vector, seed) for seed in range(3)])
        before = vector_digest(vector), [a.tobytes() for a in model.coefs_ + model.intercepts_]
        outputs = f(population, x)
        assert outputs.shape == (3, 9, model.n_outputs_), name
        for member, row in zip(population, outputs, strict=True):
            twin = restored_copy(model, member, layout)
            np.testing.assert_allclose(row, sklearn_outputs(twin, x), rtol=0, atol=1e-12)
        assert before == (
            vector_digest(vector),
            [a.tobytes() for a in model.coefs_ + model.intercepts_],
        )


# ---------------------------------------------------------------- nnet


def test_nnet_is_predict_of_the_vector_weights() -> None:
    x = RNG.uniform(size=(30, 3))
    y = helpers.nnet.class_ind((x.sum(axis=1) > 1.5).astype(int) + (x[:, 0] > 0.5))
    fit = helpers.nnet.nnet(x, y, size=4, softmax=True, maxit=20, trace=False, seed=1)
    vector, layout = helpers.flatten(fit)
    wts = fit.wts.copy()
    f = helpers.functional(fit, layout)
    np.testing.assert_array_equal(f(vector, x), fit.predict(x))
    population = np.stack([perturbed(vector, seed) for seed in range(3)])
    outputs = f(population, x)
    for member, row in zip(population, outputs, strict=True):
        np.testing.assert_array_equal(row, dataclasses.replace(fit, wts=member).predict(x))
        np.testing.assert_array_equal(row, restored_copy(fit, member, layout).predict(x))
    np.testing.assert_array_equal(fit.wts, wts)
    with pytest.raises(LayoutError, match="vector: expected 31 values per member"):
        f(population[:, :-2], x)


# ---------------------------------------------------------------- dict of arrays


def affine(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return x @ arrays["kernel"] + arrays["bias"]


def test_a_dict_needs_a_forward_function() -> None:
    weights = {"kernel": np.ones((2, 3)), "bias": np.zeros(3)}
    _, layout = helpers.flatten(weights)
    with pytest.raises(TypeError, match="a dict of arrays has no architecture; pass forward="):
        helpers.functional(weights, layout)


@settings(max_examples=20)
@given(seed=st.integers(0, 2**16), members=st.integers(1, 4), order=st.sampled_from("CF"))
def test_dict_forward_sees_read_only_views_of_the_vector(seed: int, members: int, order) -> None:
    rng = np.random.default_rng(seed)
    weights = {"kernel": rng.normal(size=(4, 3)), "bias": rng.normal(size=3)}
    vector, layout = helpers.flatten(weights, order=order)
    x = rng.normal(size=(5, 4))
    f = helpers.functional(weights, layout, forward=affine)
    population = rng.normal(size=(members, layout.size))
    outputs = f(population, x)
    for member, row in zip(population, outputs, strict=True):
        np.testing.assert_allclose(row, affine(helpers.unflatten(member, layout), x), atol=1e-12)

    def vandal(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        arrays["bias"] += 1
        return x

    before = vector_digest(population)
    with pytest.raises(ValueError, match="read-only"):
        helpers.functional(weights, layout, forward=vandal)(population, x)
    assert vector_digest(population) == before


def test_dict_tied_names_and_narrow_dtypes() -> None:
    shared = np.ones((2, 2))
    weights = {"first": shared, "second": shared, "scale": np.array([0.5], np.float16)}
    vector, layout = helpers.flatten(weights)
    assert layout.names == ["first", "scale"] and layout.dtype == "float64"
    seen = {}

    def record(arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        seen.update(arrays)
        return x @ arrays["first"] @ arrays["second"] * arrays["scale"]

    f = helpers.functional(weights, layout, forward=record)
    f(vector, np.eye(2))
    assert seen["first"] is seen["second"]  # one array under two names, as in the dict
    assert seen["scale"].dtype == np.float16
    rounded = vector.copy()
    rounded[-1] = 0.1  # not a float16 number: it rounds, and says so
    with pytest.warns(PrecisionWarning, match="'scale': 1 values rounded") as caught:
        f(rounded, np.eye(2))
    assert caught[0].filename == __file__  # the warning points at the caller's line


# ---------------------------------------------------------------- Keras (TensorFlow in-process)


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("keras")


def keras_restored_outputs(model, vector: np.ndarray, layout: helpers.Layout, x: np.ndarray):
    """The model's own outputs with the vector restored into it; then its weights put back.

    (A clone would not do: ``clone_model`` of an adapted ``Normalization`` computes otherwise.)
    """
    everything = helpers.flatten(model, include="all")
    helpers.restore(model, vector, layout)
    try:
        return model(x, training=False).numpy()
    finally:
        helpers.restore(model, *everything)


def test_keras_matches_the_restored_model(keras) -> None:
    keras.utils.set_random_seed(0)
    layers = keras.layers
    normalization = layers.Normalization()
    normalization.adapt(RNG.normal(size=(20, 6)).astype("float32"))
    model = keras.Sequential(
        [
            keras.Input((6,)),
            normalization,
            layers.Dense(5, activation="tanh"),
            layers.BatchNormalization(),
            layers.Dropout(0.5),
            layers.Dense(3, activation="softmax", dtype="float16"),
        ]
    )
    model.layers[2].moving_mean.assign(RNG.normal(size=5).astype("float32"))
    x = RNG.normal(size=(4, 6)).astype("float32")
    for include in ("trainable", "all"):
        vector, layout = helpers.flatten(model, include=include)
        before = [w.tobytes() for w in model.get_weights()]
        f = helpers.functional(model, layout)
        population = np.stack([vector, perturbed(vector, 1, scale=0.1)])
        if include == "all":  # the int64 counter and the variances stay valid
            for entry in layout:
                if entry.dtype == "int64" or entry.name.endswith("variance"):
                    population[1, entry.offset : entry.offset + entry.size] = vector[
                        entry.offset : entry.offset + entry.size
                    ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PrecisionWarning)  # the float16 layer rounds
            outputs = f(population, x)
            assert [w.tobytes() for w in model.get_weights()] == before
            expected = [keras_restored_outputs(model, row, layout, x) for row in population]
        assert outputs.shape == (2, 4, 3) and outputs.dtype == np.float16
        np.testing.assert_array_equal(outputs, np.stack(expected))
        np.testing.assert_array_equal(outputs[0], model(x, training=False).numpy())
        assert [w.tobytes() for w in model.get_weights()] == before
        with pytest.raises(LayoutError, match="values per member"):
            f(population[:, 1:], x)
    with pytest.raises(TypeError, match="expected a NumPy array for this model, got a torch"):
        f(torch.from_numpy(vector), x)


def test_module_examples_run() -> None:
    assert doctest.testmod(helpers._functional).failed == 0
