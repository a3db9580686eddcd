"""helpers.flat_view: the parameters become views into one buffer, which *is* the weights."""

from __future__ import annotations

import copy
import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
nn = torch.nn

from test_torch_adapter import TiedLanguageModel, digest, identities, make, mlp, mlp_shapes  # noqa: E402

import helpers  # noqa: E402
from helpers import LayoutError  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
VIEWABLE = ["linear", "conv2d", "lstm", "gru", "embedding", "layernorm"]


def as_numpy(vector: torch.Tensor) -> np.ndarray:
    """The vector's values as flatten() gives them (bfloat16 widened to float32, on the host)."""
    if vector.dtype == torch.bfloat16:
        vector = vector.float()
    return vector.detach().cpu().numpy()


def concatenated_grads(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def bits(tensor: torch.Tensor) -> torch.Tensor:
    """The raw bits, so that -0.0 and 0.0 (and NaN payloads) count as different."""
    width = {2: torch.int16, 4: torch.int32, 8: torch.int64}[tensor.element_size()]
    return tensor.detach().contiguous().view(width)


def same_bits(first: nn.Module, second: nn.Module) -> bool:
    return all(
        torch.equal(bits(a), bits(b))
        for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    )


# --- The vector is the weights --------------------------------------------------------


@pytest.mark.parametrize("kind", VIEWABLE)
def test_vector_and_layout_equal_flatten_and_parameters_keep_their_identity(kind):
    model = make(kind)
    expected_vector, expected_layout = helpers.flatten(model)
    parameters = list(model.parameters())
    with helpers.flat_view(model) as view:
        assert isinstance(view.vector, torch.Tensor) and view.vector.dim() == 1
        assert view.layout == expected_layout
        assert view.layout.fingerprint == expected_layout.fingerprint
        np.testing.assert_array_equal(view.vector.numpy(), expected_vector)
        assert list(model.parameters()) == parameters  # same objects
        assert all(a is b for a, b in zip(model.parameters(), parameters, strict=True))
        start = view.vector.data_ptr()
        for parameter, entry in zip(parameters, view.layout, strict=True):
            assert parameter.data_ptr() == start + entry.offset * parameter.element_size()
            assert parameter.is_contiguous() and parameter.requires_grad
        # Reading copies nothing: the same tensor, at the same address, every time.
        assert view.vector is view.vector and view.vector.data_ptr() == start
        np.testing.assert_array_equal(helpers.flatten(model)[0], expected_vector)


def test_writing_the_vector_changes_the_model_and_training_changes_the_vector():
    model = make("linear")
    twin = copy.deepcopy(model)
    view = helpers.flat_view(model)
    target = np.linspace(-1, 1, view.layout.size, dtype=np.float32)
    view.vector.copy_(torch.from_numpy(target))  # no restore: the model is the vector
    helpers.restore(twin, target, view.layout)
    assert same_bits(model, twin)
    x = torch.randn(4, 6)
    assert torch.equal(model(x), twin(x))
    with torch.no_grad():
        model[0].bias.add_(1.0)  # a write through a parameter shows in the vector
    np.testing.assert_array_equal(view.vector.numpy(), helpers.flatten(model)[0])
    assert view.vector[view.layout["0.bias"].offset].item() == target[30] + 1.0


def test_numpy_view_of_the_cpu_vector_shares_memory():
    model = make("linear")
    view = helpers.flat_view(model)
    array = view.vector.numpy()  # on the CPU, a NumPy view of the same memory
    array[:] = 0.25
    assert bool((model[2].weight == 0.25).all())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("device", DEVICES)
def test_other_float_dtypes_and_devices(dtype, device):
    model = make("layernorm").to(device=device, dtype=dtype)
    expected_vector, expected_layout = helpers.flatten(model)
    view = helpers.flat_view(model)
    assert view.vector.dtype == dtype and view.vector.device.type == device
    assert view.layout == expected_layout  # bfloat16 -> a float32 layout, as flatten gives
    np.testing.assert_array_equal(as_numpy(view.vector), expected_vector)
    view.undo()
    assert all(p.device.type == device and p.dtype == dtype for p in model.parameters())
    np.testing.assert_array_equal(helpers.flatten(model)[0], expected_vector)


def test_include_all_views_frozen_parameters_and_float_buffers():
    model = make("layernorm")
    model[0].requires_grad_(False)
    model.register_buffer("scale", torch.full((3,), 2.0))
    expected_vector, expected_layout = helpers.flatten(model, include="all")
    view = helpers.flat_view(model, include="all")
    assert view.layout == expected_layout
    assert [e.trainable for e in view.layout][:2] == [False, False] and "scale" in view.layout.names
    np.testing.assert_array_equal(view.vector.numpy(), expected_vector)
    view.vector[view.layout["scale"].offset :].fill_(5.0)
    assert bool((model.scale == 5.0).all())
    assert helpers.flat_view(make("layernorm")).layout.size < view.layout.size


def test_tied_weights_take_one_slot_and_stay_tied():
    torch.manual_seed(0)
    model = TiedLanguageModel()
    expected_vector, expected_layout = helpers.flatten(model)
    view = helpers.flat_view(model)
    assert view.layout == expected_layout and "head.weight" not in view.layout.names
    np.testing.assert_array_equal(view.vector.numpy(), expected_vector)
    assert model.head.weight is model.embedding.weight
    view.vector[: view.layout["embedding.weight"].size].fill_(0.5)
    assert bool((model.head.weight == 0.5).all())
    model.head.weight = nn.Parameter(torch.zeros(11, 4))  # untied: one use left the vector
    with pytest.raises(LayoutError, match=r"'embedding.weight' no longer lives.*'head.weight'"):
        _ = view.vector


# --- Optimisers: the same steps as on an un-viewed twin, bit for bit ------------------


OPTIMISERS = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "sgd-momentum-nesterov-decay": lambda ps: torch.optim.SGD(
        ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3
    ),
    "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2),
    "adamw-foreach": lambda ps: torch.optim.AdamW(ps, lr=1e-2, foreach=True),
}


def train(model, optimizer, steps, *, set_to_none, view=None, seed=1):
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    losses, grads = [], []
    for _ in range(steps):
        x = torch.randn(8, 6, generator=generator).to(device)
        y = torch.randint(0, 3, (8,), generator=generator).to(device)
        optimizer.zero_grad(set_to_none=set_to_none)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        grads.append((view.grad if view else concatenated_grads(model)).clone())
        optimizer.step()
        losses.append(loss.item())
    return losses, grads


@pytest.mark.parametrize("set_to_none", [True, False])
@pytest.mark.parametrize("name", list(OPTIMISERS))
@pytest.mark.parametrize("device", DEVICES)
def test_optimiser_steps_equal_an_unviewed_twin_bit_for_bit(name, set_to_none, device):
    model = make("linear").to(device)
    twin = copy.deepcopy(model)
    optimizer = OPTIMISERS[name](model.parameters())  # made before the view: still works
    view = helpers.flat_view(model)
    losses, grads = train(model, optimizer, 6, set_to_none=set_to_none, view=view)
    twin_losses, twin_grads = train(twin, OPTIMISERS[name](twin.parameters()), 6, set_to_none=True)
    assert losses == twin_losses
    assert all(torch.equal(a, b) for a, b in zip(grads, twin_grads, strict=True))
    assert same_bits(model, twin)
    np.testing.assert_array_equal(view.vector.cpu().numpy(), helpers.flatten(twin)[0])


# --- Gradients as one vector ----------------------------------------------------------


def backward_once(model: nn.Module, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    model(torch.randn(5, 6, generator=generator)).square().sum().backward()


def test_gradients_accumulate_in_place_into_the_flat_gradient():
    model = make("linear")
    view = helpers.flat_view(model)
    backward_once(model)
    grad = view.grad  # from here on each .grad is a view into this one tensor
    first = grad.clone()
    torch.testing.assert_close(grad, concatenated_grads(model), rtol=0, atol=0)
    pointers = [p.grad.data_ptr() for p in model.parameters()]
    backward_once(model)  # no zero_grad: autograd adds into the views, in place
    assert [p.grad.data_ptr() for p in model.parameters()] == pointers
    assert torch.equal(grad, first + first)  # the tensor read before backward changed
    torch.optim.SGD(model.parameters(), lr=0.1).zero_grad(set_to_none=False)
    assert not grad.any() and [p.grad.data_ptr() for p in model.parameters()] == pointers
    backward_once(model)
    assert torch.equal(grad, first) and view.grad is grad


def test_zero_grad_set_to_none_drops_the_views_and_grad_gathers_them_back():
    model = make("linear")
    view = helpers.flat_view(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    backward_once(model)
    held = view.grad
    expected = held.clone()
    optimizer.zero_grad()  # the default set_to_none=True: every .grad becomes None
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(held, expected)  # a held result is stale now...
    assert not view.grad.any()  # ...but reading it again says zero, as None means
    backward_once(model, seed=1)  # fresh .grad tensors, outside the flat gradient
    assert not any(p.grad.data_ptr() == held.data_ptr() for p in model.parameters())
    grad = view.grad  # copies them in and makes each .grad a view again
    assert grad is held
    assert torch.equal(grad, concatenated_grads(model))
    assert model[0].weight.grad.data_ptr() == grad.data_ptr()


def test_unused_parameters_read_as_zero_gradient_and_stay_none():
    model = make("linear")
    model.unused = nn.Parameter(torch.ones(4))
    view = helpers.flat_view(model)
    backward_once(model)
    grad = view.grad
    assert model.unused.grad is None  # untouched: optimisers still skip it
    entry = view.layout["unused"]
    assert not grad[entry.offset : entry.offset + entry.size].any()
    assert grad.count_nonzero() > 0


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_a_gradient_with_a_graph_is_refused():
    model = make("linear")
    view = helpers.flat_view(model)
    model(torch.ones(2, 6)).square().sum().backward(create_graph=True)
    with pytest.raises(LayoutError, match=r"gradient of '0.weight' is part of an autograd graph"):
        _ = view.grad
    for parameter in model.parameters():
        parameter.grad = None  # break the reference cycle create_graph makes


def test_writes_through_the_vector_between_forward_and_backward_go_unnoticed():
    """What the docstring warns about: torch cannot see such a write (nothing to refuse)."""
    model = make("linear")
    view = helpers.flat_view(model)
    loss = model(torch.ones(2, 6)).square().sum()
    versions = [p._version for p in model.parameters()]
    view.vector.mul_(2.0)
    assert [p._version for p in model.parameters()] == versions  # so autograd cannot tell
    loss.backward()  # no error, although the weights it saved have changed


# --- Undo ------------------------------------------------------------------------------


def inside(tensor: torch.Tensor, buffer: torch.Tensor) -> bool:
    start = buffer.data_ptr()
    return start <= tensor.data_ptr() < start + buffer.numel() * buffer.element_size()


def test_undo_gives_each_tensor_its_own_memory_and_keeps_values():
    model = make("conv2d")
    expected = helpers.flatten(model)[0]
    with helpers.flat_view(model) as view:
        vector = view.vector
        model(torch.randn(2, 2, 5, 5)).sum().backward()
        grad = view.grad
        grads = grad.clone()
    np.testing.assert_array_equal(helpers.flatten(model)[0], expected)
    for parameter in model.parameters():
        assert not inside(parameter, vector) and not inside(parameter.grad, grad)
    assert torch.equal(concatenated_grads(model), grads)
    vector.zero_()  # the old buffer is no longer the model
    np.testing.assert_array_equal(helpers.flatten(model)[0], expected)
    with pytest.raises(LayoutError, match="this flat view was undone"):
        _ = view.vector
    view.undo()  # twice is fine
    assert "undone" in repr(view)


# --- What breaks a view, and what refuses to make one ---------------------------------


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda m: m.double(), r"'0.weight' no longer lives in the vector \(its .data"),
        (
            lambda m: m.load_state_dict(copy.deepcopy(m.state_dict()), assign=True),
            r"'0.weight' no longer lives in the vector \('0.weight' was replaced",
        ),
        (lambda m: m[2].requires_grad_(False), "'2.weight' was frozen since the view was made"),
        (lambda m: helpers.flat_view(m), "'0.weight' no longer lives in the vector"),
    ],
)
def test_a_view_the_model_left_refuses_to_answer(break_it, message):
    model = make("linear")
    view = helpers.flat_view(model)
    break_it(model)
    with pytest.raises(LayoutError, match=message):
        _ = view.vector
    with pytest.raises(LayoutError, match=message):
        _ = view.grad


def test_load_state_dict_copies_into_the_view_and_keeps_it():
    model = make("linear")
    torch.manual_seed(5)
    other = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3, bias=False))
    view = helpers.flat_view(model)
    model.load_state_dict(other.state_dict())  # copy_ in place: still the vector
    np.testing.assert_array_equal(view.vector.numpy(), helpers.flatten(other)[0])


def transposed(model):
    model[0].weight = nn.Parameter(model[0].weight.detach().t().contiguous().t())


def int_buffer_model():
    return make("batchnorm")


def shared_memory(model):
    model.view = nn.Parameter(model[0].weight.data[:2])


def sparse(model):
    model.sparse = nn.Parameter(torch.eye(3).to_sparse())


def inference(model):
    with torch.inference_mode():
        model[2].weight = nn.Parameter(torch.zeros(3, 5))


def half_of_it(model):
    model[2].half()


@pytest.mark.parametrize(
    ("spoil", "include", "error", "message"),
    [
        (half_of_it, "trainable", TypeError, r"'2.weight': dtype torch.float16, but '0.weight'"),
        (transposed, "trainable", LayoutError, r"'0.weight' is not C-contiguous \(strides"),
        (None, "all", TypeError, r"'1.num_batches_tracked': dtype torch.int64.*'trainable'"),
        (shared_memory, "trainable", LayoutError, "share memory"),
        (sparse, "trainable", TypeError, "expected a dense tensor"),
        (inference, "trainable", LayoutError, "'2.weight' is an inference tensor"),
    ],
)
def test_refusals_name_the_tensor_and_leave_the_model_alone(spoil, include, error, message):
    model = make("batchnorm") if spoil is None else make("linear")
    if spoil is not None:
        spoil(model)
    watched = model
    if spoil is sparse:  # a sparse tensor has no raw bytes to hash: watch the others
        watched = nn.ParameterList([p for p in model.parameters() if p.layout == torch.strided])
    before, kept = digest(watched), identities(watched)
    with pytest.raises(error, match=message):
        helpers.flat_view(model, include=include)
    assert digest(watched) == before and identities(watched) == kept


def test_channels_last_meta_and_empty_models_and_wrong_arguments_are_refused():
    conv = make("conv2d").to(memory_format=torch.channels_last)
    with pytest.raises(LayoutError, match=r"'0.weight' is not C-contiguous"):
        helpers.flat_view(conv)
    with torch.device("meta"):
        meta = nn.Linear(3, 2)
    with pytest.raises(LayoutError, match="'weight' is on the meta device"):
        helpers.flat_view(meta)
    with pytest.raises(ValueError, match="ReLU has no tensors to take"):
        helpers.flat_view(nn.ReLU())
    with pytest.raises(ValueError, match="include must be one of"):
        helpers.flat_view(make("linear"), include="buffers")
    with pytest.raises(TypeError, match="expected a torch.nn.Module"):
        helpers.flat_view({"w": np.zeros(3)})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_mixed_devices_are_refused():
    model = make("linear")
    model[2].cuda()
    before = digest(model)
    with pytest.raises(TypeError, match=r"'2.weight' is on cuda:0, but '0.weight' is on cpu"):
        helpers.flat_view(model)
    assert digest(model) == before


@settings(max_examples=30, deadline=None)
@given(shape=mlp_shapes, seed=st.integers(0, 2**16))
def test_random_mlps_vector_writes_equal_restore_into_a_twin(shape, seed):
    widths, biases = shape
    torch.manual_seed(seed)
    model = mlp(widths, biases)
    twin = copy.deepcopy(model)
    expected_vector, expected_layout = helpers.flatten(model)
    with helpers.flat_view(model) as view:
        assert view.layout == expected_layout
        np.testing.assert_array_equal(view.vector.numpy(), expected_vector)
        values = np.random.default_rng(seed).standard_normal(view.layout.size).astype(np.float32)
        view.vector.copy_(torch.from_numpy(values))
        helpers.restore(twin, values, expected_layout)
        assert same_bits(model, twin)
    assert same_bits(model, twin)


def test_docstring_examples_run():
    import helpers._flat_view

    assert doctest.testmod(helpers._flat_view).failed == 0
