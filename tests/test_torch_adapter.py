"""The PyTorch adapter: parameters and buffers, in state_dict order, written back in place."""

from __future__ import annotations

import copy
import hashlib
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
nn = torch.nn

import helpers  # noqa: E402
from helpers import LayoutError, PrecisionWarning  # noqa: E402


def digest(model: nn.Module) -> str:
    """A hash of every state_dict tensor's name, shape, dtype, strides and bytes."""
    hasher = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        hasher.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}{tensor.stride()}".encode())
        raw = tensor.contiguous().reshape(-1).view(torch.uint8)
        hasher.update(raw.numpy().tobytes())
    return hasher.hexdigest()


def identities(model: nn.Module) -> dict[str, tuple]:
    """What restore must keep for each tensor: object, storage, dtype, device, strides, grad."""
    return {
        name: (
            id(tensor),
            tensor.data_ptr(),
            tensor.dtype,
            tensor.device,
            tensor.stride(),
            tensor.requires_grad,
        )
        for name, tensor in model.state_dict(keep_vars=True).items()
    }


def zero_(model: nn.Module, include: str) -> None:
    """Overwrite what a layout with this ``include`` covers (every tensor, or the trainable)."""
    with torch.no_grad():
        for tensor in model.state_dict(keep_vars=True).values():
            if include == "all" or (isinstance(tensor, nn.Parameter) and tensor.requires_grad):
                tensor.zero_()


def logical_f_order(tensor: torch.Tensor) -> torch.Tensor:
    """Column-major reading of a tensor (first index fastest), as R's as.numeric does."""
    return tensor.permute(tuple(reversed(range(tensor.dim())))).reshape(-1)


class Recurrent(nn.Module):
    def __init__(self, cell: type[nn.Module]) -> None:
        super().__init__()
        self.rnn = cell(input_size=4, hidden_size=5, num_layers=2, batch_first=True)
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0][:, -1])


class TiedLanguageModel(nn.Module):
    """An embedding whose weight is also the output layer's weight (tied, as in GPT-2)."""

    def __init__(self, vocabulary: int = 11, width: int = 4) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, width)
        self.mix = nn.Linear(width, width)
        self.head = nn.Linear(width, vocabulary)
        self.head.weight = self.embedding.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.mix(self.embedding(tokens))))


def with_statistics(model: nn.Module, *input_shape: int) -> nn.Module:
    """Run a few training-mode batches so batch-norm statistics are not their defaults."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, *input_shape))
    return model.eval()


def make(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "linear":
        return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3, bias=False))
    if kind == "conv2d":
        return nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 1), nn.Flatten())
    if kind == "batchnorm":
        model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))
        return with_statistics(model, 6)
    if kind == "batchnorm2d":
        model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten())
        return with_statistics(model, 2, 5, 5)
    if kind == "lstm":
        return Recurrent(nn.LSTM)
    if kind == "gru":
        return Recurrent(nn.GRU)
    if kind == "embedding":
        return nn.Sequential(nn.Embedding(12, 3), nn.Flatten(), nn.Linear(6, 2))
    if kind == "layernorm":
        return nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    raise ValueError(kind)


KINDS = ["linear", "conv2d", "batchnorm", "batchnorm2d", "lstm", "gru", "embedding", "layernorm"]


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("include", ["trainable", "all"])
@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_is_bit_exact(kind, include, order):
    model = make(kind)
    before, kept = digest(model), identities(model)
    vector, layout = helpers.flatten(model, include=include, order=order)
    zero_(model, include)
    assert digest(model) != before
    helpers.restore(model, vector, layout)
    assert digest(model) == before
    assert identities(model) == kept


@pytest.mark.parametrize("kind", KINDS)
def test_vector_is_the_state_dict_read_tensor_by_tensor(kind):
    model = make(kind)
    state = model.state_dict()
    for order, read in [("C", lambda t: t.reshape(-1)), ("F", logical_f_order)]:
        vector, layout = helpers.flatten(model, include="all", order=order)
        assert layout.names == list(state)
        expected = torch.cat([read(t).double() for t in state.values()]).numpy()
        np.testing.assert_array_equal(vector, expected.astype(vector.dtype))


@pytest.mark.parametrize("kind", KINDS)
def test_trainable_vector_equals_parameters_to_vector(kind):
    model = make(kind)
    vector, layout = helpers.flatten(model)
    reference = nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    assert vector.dtype == reference.dtype
    np.testing.assert_array_equal(vector, reference)
    assert layout.names == [name for name, _ in model.named_parameters()]


mlp_shapes = st.lists(st.integers(1, 8), min_size=2, max_size=5).flatmap(
    lambda widths: st.tuples(
        st.just(widths), st.lists(st.booleans(), min_size=len(widths) - 1, max_size=len(widths) - 1)
    )
)


def mlp(widths: list[int], biases: list[bool]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for fan_in, fan_out, bias in zip(widths[:-1], widths[1:], biases, strict=True):
        layers += [nn.Linear(fan_in, fan_out, bias=bias), nn.Tanh()]
    return nn.Sequential(*layers[:-1])


@settings(max_examples=40, deadline=None)
@given(shape=mlp_shapes, order=st.sampled_from(["C", "F"]), seed=st.integers(0, 2**16))
def test_random_mlps_round_trip_into_a_fresh_twin(shape, order, seed):
    widths, biases = shape
    torch.manual_seed(seed)
    model = mlp(widths, biases)
    twin = mlp(widths, biases)  # another random initialisation of the same architecture
    vector, layout = helpers.flatten(model, order=order)
    expected_size = sum(
        a * b + (b if bias else 0)
        for a, b, bias in zip(widths[:-1], widths[1:], biases, strict=True)
    )
    assert vector.size == expected_size == sum(p.numel() for p in model.parameters())
    if order == "C":
        reference = nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
        np.testing.assert_array_equal(vector, reference)
    kept = identities(twin)
    helpers.restore(twin, vector, layout)
    assert digest(twin) == digest(model)
    assert identities(twin) == kept


def test_tied_weights_are_counted_once():
    torch.manual_seed(0)
    model = TiedLanguageModel()
    assert model.head.weight is model.embedding.weight
    vector, layout = helpers.flatten(model, include="all")
    assert layout.names == ["embedding.weight", "mix.weight", "mix.bias", "head.bias"]
    assert "head.weight" in model.state_dict()  # state_dict lists the tied tensor twice
    assert vector.size == 11 * 4 + 4 * 4 + 4 + 11 == sum(p.numel() for p in model.parameters())
    reference = nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    np.testing.assert_array_equal(helpers.flatten(model)[0], reference)
    # Writing the shared slot changes both uses, because they are one tensor.
    helpers.restore(model, np.full_like(vector, 0.5), layout)
    assert model.head.weight is model.embedding.weight
    assert bool((model.head.weight == 0.5).all())


def test_frozen_parameters_are_left_out_of_trainable_and_flagged_in_all():
    model = make("linear")
    model[0].requires_grad_(False)
    trainable_vector, trainable = helpers.flatten(model, include="trainable")
    _, everything = helpers.flatten(model, include="all")
    assert trainable.names == ["2.weight"]
    assert trainable_vector.size == 15
    assert [e.trainable for e in everything] == [False, False, True]
    # Unfreezing changes the model's structure, so the old layout no longer fits.
    model[0].requires_grad_(True)
    before = digest(model)
    with pytest.raises(LayoutError, match="does not fit this model"):
        helpers.restore(model, trainable_vector, trainable)
    assert digest(model) == before


def test_batch_norm_buffers_come_back_with_their_dtype():
    model = make("batchnorm")
    vector, layout = helpers.flatten(model, include="all")
    trainable_vector, _ = helpers.flatten(model, include="trainable")
    buffers = ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert [n for n in layout.names if n not in helpers.flatten(model)[1].names] == buffers
    assert vector.size == trainable_vector.size + 5 + 5 + 1
    assert layout["1.num_batches_tracked"].dtype == "int64"
    assert vector.dtype == np.float32
    assert vector[layout["1.num_batches_tracked"].offset] == 3.0
    vector[layout["1.num_batches_tracked"].offset] = 7.0
    helpers.restore(model, vector, layout)
    counter = model[1].num_batches_tracked
    assert counter.dtype == torch.int64 and counter.dim() == 0 and int(counter) == 7


def test_zero_dimensional_parameters_round_trip():
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(2.5))
            self.register_buffer("steps", torch.tensor(4))

    model = Scaled()
    vector, layout = helpers.flatten(model, include="all")
    assert layout["scale"].shape == () and vector.tolist() == [2.5, 4.0]
    helpers.restore(model, np.array([-1.0, 9.0], dtype=vector.dtype), layout)
    assert model.scale.item() == -1.0 and model.scale.dim() == 0
    assert model.steps.item() == 9 and model.steps.dtype == torch.int64


def test_non_persistent_buffers_are_not_part_of_the_state_dict_or_the_vector():
    model = make("linear")
    model.register_buffer("scratch", torch.ones(3), persistent=False)
    model.register_buffer("kept", torch.ones(2))
    _, layout = helpers.flatten(model, include="all")
    assert "kept" in layout.names and "scratch" not in layout.names


def test_channels_last_kernels_are_read_in_logical_order_and_stay_channels_last():
    model = make("conv2d")
    reference, _ = helpers.flatten(model)
    model = model.to(memory_format=torch.channels_last)
    kernel = model[0].weight
    assert kernel.is_contiguous(memory_format=torch.channels_last)
    assert not kernel.is_contiguous()
    strides, pointer = kernel.stride(), kernel.data_ptr()
    vector, layout = helpers.flatten(model)
    np.testing.assert_array_equal(vector, reference)  # same values as the NCHW model
    for order in ("C", "F"):
        vector, layout = helpers.flatten(model, order=order)
        before = digest(model)
        zero_(model, "trainable")
        helpers.restore(model, vector, layout)
        assert digest(model) == before
    assert model[0].weight is kernel and kernel.data_ptr() == pointer
    assert kernel.stride() == strides
    assert kernel.is_contiguous(memory_format=torch.channels_last)


def test_non_contiguous_parameters_are_read_and_written_in_logical_order():
    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    model.weight = nn.Parameter(torch.randn(3, 4).t())  # a transposed view: strides (1, 4)
    assert not model.weight.is_contiguous()
    strides = model.weight.stride()
    for order, read in [("C", lambda t: t.reshape(-1)), ("F", logical_f_order)]:
        vector, layout = helpers.flatten(model, order=order)
        np.testing.assert_array_equal(vector[:12], read(model.weight).detach().numpy())
        target = np.arange(vector.size, dtype=vector.dtype)
        helpers.restore(model, target, layout)
        np.testing.assert_array_equal(helpers.flatten(model, order=order)[0], target)
        assert model.weight.stride() == strides
    expected = np.arange(12, dtype=np.float32).reshape(4, 3, order="F")
    np.testing.assert_array_equal(model.weight.detach().numpy(), expected)


def test_mixed_and_half_precision_dtypes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4).double(), nn.Linear(4, 2))
    vector, layout = helpers.flatten(model)
    assert vector.dtype == np.float64  # the widest float among the tensors
    assert [e.dtype for e in layout] == ["float64", "float64", "float32", "float32"]
    kept, before = identities(model), digest(model)
    zero_(model, "all")
    helpers.restore(model, vector, layout)
    assert identities(model) == kept and digest(model) == before


@pytest.mark.parametrize(
    ("dtype", "vector_dtype"), [(torch.float16, np.float16), (torch.bfloat16, np.float32)]
)
def test_half_precision_round_trips_exactly(dtype, vector_dtype):
    model = make("linear").to(dtype)
    vector, layout = helpers.flatten(model)
    assert vector.dtype == vector_dtype  # NumPy has no bfloat16: it travels as float32
    reference = nn.utils.parameters_to_vector(model.parameters()).float().detach().numpy()
    np.testing.assert_array_equal(vector.astype(np.float32), reference)
    kept, before = identities(model), digest(model)
    zero_(model, "all")
    helpers.restore(model, vector, layout)
    assert identities(model) == kept and digest(model) == before


def test_values_that_bfloat16_cannot_hold_are_rounded_with_a_warning():
    model = make("linear").to(torch.bfloat16)
    vector, layout = helpers.flatten(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        helpers.restore(model, vector * 2, layout)  # doubling is exact in bfloat16
    with pytest.warns(PrecisionWarning, match="rounded when cast from float32 to bfloat16"):
        helpers.restore(model, vector + np.float32(1e-3), layout)


def test_requires_grad_and_autograd_survive_a_restore():
    model = make("linear")
    model[2].weight.requires_grad_(False)
    vector, layout = helpers.flatten(model, include="all")
    helpers.restore(model, vector * 2, layout)
    assert [p.requires_grad for p in model.parameters()] == [True, True, False]
    assert all(p.grad_fn is None and p.is_leaf for p in model.parameters())
    model(torch.ones(1, 6)).sum().backward()  # still trainable after the in-place write
    assert model[0].weight.grad is not None and model[2].weight.grad is None


def other_architecture() -> nn.Module:
    # As many values as make("linear") (50), in tensors of other shapes.
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 4, bias=False))


def _wrong_length(model):
    vector, layout = helpers.flatten(model)
    return vector[:-1], layout, {}


def _wrong_dtype(model):
    vector, layout = helpers.flatten(model)
    return vector.astype(np.float64), layout, {}


def _wrong_shape(model):
    vector, layout = helpers.flatten(other_architecture())
    return vector, layout, {}


def _wrong_tensor_dtype(model):
    vector, layout = helpers.flatten(make("linear").double())
    return vector.astype(np.float32), layout, {}


def _nan(model):
    vector, layout = helpers.flatten(model)
    vector[3] = np.nan
    return vector, layout, {"reject_nonfinite": True}


def _fractional_counter(model):
    vector, layout = helpers.flatten(model, include="all")
    vector[layout["1.num_batches_tracked"].offset] = 2.5
    return vector, layout, {}


def _negative_counter_out_of_range(model):
    vector, layout = helpers.flatten(model, include="all")
    vector[layout["1.num_batches_tracked"].offset] = np.inf
    return vector, layout, {}


@pytest.mark.parametrize(
    ("make_bad_input", "message"),
    [
        (_wrong_length, "expected 50 values for this layout, got 49"),
        (_wrong_dtype, "expected dtype float32, got float64"),
        (_wrong_shape, r"tensor #0 '0.weight': expected shape \(5, 6\), got \(5, 5\)"),
        (_wrong_tensor_dtype, "expected dtype float32, got float64 in the layout"),
        (_nan, "expected finite values, got 1 NaN/inf"),
        (_fractional_counter, "'1.num_batches_tracked': expected whole numbers"),
        (_negative_counter_out_of_range, "'1.num_batches_tracked': expected whole numbers"),
    ],
)
def test_every_error_leaves_the_model_unchanged(make_bad_input, message):
    model = make("batchnorm") if "counter" in make_bad_input.__name__ else make("linear")
    vector, layout, options = make_bad_input(model)
    if make_bad_input is _wrong_shape:
        assert vector.size == helpers.flatten(model)[0].size  # same length, other shapes
    before, kept = digest(model), identities(model)
    with pytest.raises(LayoutError, match=message):
        helpers.restore(model, vector, layout, **options)
    assert digest(model) == before
    assert identities(model) == kept


class FlakyParameter(nn.Parameter):
    """A parameter subclass (so its writes count as fallible) whose copy_ can fail."""

    copies: list[int] = []
    fail_on_copy: int | None = None

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func is torch.Tensor.copy_:
            cls.copies.append(1)
            if len(cls.copies) == cls.fail_on_copy:
                raise RuntimeError("simulated failure while writing")
        return super().__torch_function__(func, types, args, kwargs or {})


def with_flaky_parameters(model: nn.Module, names: list[str]) -> nn.Module:
    for name in names:
        owner, _, attribute = name.rpartition(".")
        module = model.get_submodule(owner)
        setattr(module, attribute, FlakyParameter(getattr(module, attribute).detach().clone()))
    FlakyParameter.copies, FlakyParameter.fail_on_copy = [], None
    return model


def test_a_write_that_fails_part_way_is_undone():
    # The fallible writes (here: into a tensor subclass) go first, each backed up; the
    # plain CPU tensors, whose copy_ cannot fail, follow only if all of those succeeded.
    model = with_flaky_parameters(make("batchnorm"), ["0.weight", "0.bias", "3.weight"])
    vector, layout = helpers.flatten(model, include="all")
    before, kept = digest(model), identities(model)
    FlakyParameter.fail_on_copy = 3  # two writes made, the third fails
    with pytest.raises(RuntimeError, match="simulated failure"):
        helpers.restore(model, vector * 3, layout)
    assert digest(model) == before
    assert identities(model) == kept
    FlakyParameter.fail_on_copy = None
    helpers.restore(model, vector * 3, layout)
    np.testing.assert_array_equal(helpers.flatten(model, include="all")[0], vector * 3)


def test_without_atomic_a_failure_leaves_earlier_tensors_written():
    model = with_flaky_parameters(make("linear"), ["0.weight", "0.bias"])
    vector, layout = helpers.flatten(model)
    FlakyParameter.fail_on_copy = 2
    with pytest.raises(RuntimeError, match="simulated failure"):
        helpers.restore(model, vector * 3, layout, atomic=False)
    after = helpers.flatten(model)[0]
    first = layout["0.weight"]
    np.testing.assert_array_equal(
        after[: first.size], vector[: first.size] * 3
    )  # written, no backup to put back
    np.testing.assert_array_equal(after[first.size :], vector[first.size :])  # never reached


def test_plain_cpu_tensors_are_written_without_a_backup(monkeypatch):
    from helpers.adapters import TensorHandle

    def no_backups(handle):
        raise AssertionError(f"backed up {handle.name}")

    monkeypatch.setattr(TensorHandle, "backup", no_backups)
    model = make("batchnorm")
    vector, layout = helpers.flatten(model, include="all")
    helpers.restore(model, vector * 2, layout)
    np.testing.assert_array_equal(helpers.flatten(model, include="all")[0], vector * 2)
    flaky = with_flaky_parameters(make("linear"), ["0.bias"])
    with pytest.raises(AssertionError, match="backed up 0.bias"):  # only the fallible one
        helpers.restore(flaky, *helpers.flatten(flaky))


def test_ctrl_c_during_a_fallible_write_puts_everything_back():
    import os
    import signal

    class InterruptingParameter(nn.Parameter):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            if func is torch.Tensor.copy_ and not cls.sent:
                cls.sent = True
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, in the middle of restoring
            return super().__torch_function__(func, types, args, kwargs or {})

    InterruptingParameter.sent = False
    model = make("linear")
    model[0].bias = InterruptingParameter(model[0].bias.detach().clone())
    vector, layout = helpers.flatten(model)
    before = digest(model)
    with pytest.raises(KeyboardInterrupt):
        helpers.restore(model, vector + 1, layout)
    assert digest(model) == before


def test_a_vector_that_is_the_models_own_memory_is_read_before_it_is_overwritten():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    _, layout = helpers.flatten(model)
    buffer = torch.arange(float(layout.size))
    view = buffer.numpy()
    # Make the parameters views into one buffer, in reverse: the vector aliases them.
    with torch.no_grad():
        offset = 0
        for parameter in reversed(list(model.parameters())):
            parameter.data = buffer[offset : offset + parameter.numel()].view(parameter.shape)
            offset += parameter.numel()
    wanted = view[::-1].copy()
    helpers.restore(model, view[::-1], layout)
    np.testing.assert_array_equal(helpers.flatten(model)[0], wanted)


@pytest.mark.parametrize(
    "change",
    [
        "replace a parameter",
        "reshape a parameter in place",
        "swap a parameter's data",
        "freeze a parameter",
        "replace a module",
        "change the dtype",
    ],
)
def test_the_cached_structure_is_checked_on_every_call(change):
    model = make("linear")
    vector, layout = helpers.flatten(model)
    helpers.restore(model, vector, layout)  # cached now
    with torch.no_grad():
        if change == "replace a parameter":
            model[0].bias = nn.Parameter(torch.zeros(5))
        elif change == "reshape a parameter in place":
            model[0].bias.data = torch.zeros(4)  # same object, another shape
        elif change == "swap a parameter's data":
            model[0].bias.data = torch.zeros(5)  # same object and shape, other memory
        elif change == "freeze a parameter":
            model[0].bias.requires_grad_(False)
        elif change == "replace a module":
            model[2] = nn.Linear(5, 3, bias=False)
        else:
            model.double()
    before = digest(model)
    if change in ("reshape a parameter in place", "freeze a parameter", "change the dtype"):
        with pytest.raises(LayoutError, match="does not fit this model"):
            helpers.restore(model, vector.astype(layout.dtype), layout)
        assert digest(model) == before
        return
    # Same structure: the restore must land in the model's current tensors.
    helpers.restore(model, vector * 2, layout)
    np.testing.assert_array_equal(helpers.flatten(model)[0], vector * 2)
    current = dict(model.named_parameters())
    np.testing.assert_array_equal(
        current["0.bias"].detach().numpy(), (vector * 2)[layout["0.bias"].offset :][:5]
    )


def _drop_first_bias(module, state_dict, prefix, local_metadata):
    del state_dict[prefix + "0.bias"]


@pytest.mark.parametrize(
    "change",
    [
        "register a buffer",
        "make a buffer non-persistent",
        "delete a parameter",
        "register a state_dict hook",
        "override state_dict on the instance",
        "replace a buffer",
    ],
)
def test_the_cached_structure_notices_what_changes_the_state_dict(change):
    model = make("batchnorm")
    vector, layout = helpers.flatten(model, include="all")
    helpers.restore(model, vector, layout)  # cached now
    if change == "register a buffer":
        model[3].register_buffer("scale", torch.ones(2))
    elif change == "make a buffer non-persistent":
        model[1]._non_persistent_buffers_set.add("running_var")
    elif change == "delete a parameter":
        del model[3].bias
    elif change == "register a state_dict hook":
        model.register_state_dict_post_hook(_drop_first_bias)
    elif change == "override state_dict on the instance":
        full = model.state_dict
        model.state_dict = lambda **kwargs: {
            name: tensor for name, tensor in full(**kwargs).items() if name != "0.bias"
        }
    else:
        model[1].running_mean = torch.zeros(5)
    _, fresh = helpers.flatten(model, include="all")
    assert fresh.names == list(model.state_dict(keep_vars=True))
    if change == "replace a buffer":  # same structure: lands in the new buffer
        helpers.restore(model, vector * 2, layout)
        offset = layout["1.running_mean"].offset
        np.testing.assert_array_equal(model[1].running_mean.numpy(), vector[offset:][:5] * 2)
        return
    before = digest(model)
    with pytest.raises(LayoutError, match="does not fit this model"):
        helpers.restore(model, vector, layout)
    assert digest(model) == before


def test_a_model_too_big_for_one_batched_call_flattens_and_restores_the_same():
    # Above 1 MiB of weights the tensors are read and written one by one.
    model = nn.Sequential(nn.Linear(600, 600), nn.Linear(600, 3))
    vector, layout = helpers.flatten(model)
    reference = nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    np.testing.assert_array_equal(vector, reference)
    small = make("linear")
    small_vector, small_layout = helpers.flatten(small)
    for net, values, net_layout in ((model, vector, layout), (small, small_vector, small_layout)):
        versions = [parameter._version for parameter in net.parameters()]
        helpers.restore(net, values * 3, net_layout)
        np.testing.assert_array_equal(helpers.flatten(net)[0], values * 3)
        # In place, as autograd must see it: every parameter's version counter moved on.
        assert all(p._version > v for p, v in zip(net.parameters(), versions, strict=True))


def test_cached_handles_do_not_keep_a_dropped_tensor_alive():
    import gc
    import weakref

    model = make("linear")
    helpers.restore(model, *helpers.flatten(model))
    old = weakref.ref(model[0].weight)
    model[0].weight = nn.Parameter(torch.zeros(5, 6))
    gc.collect()
    assert old() is None
    handle = helpers.adapters.handles_for(make("linear"), "trainable")[1][0]
    gc.collect()  # its model is gone, and so is its tensor
    with pytest.raises(LayoutError, match="'0.weight' no longer exists"):
        handle.read()


def test_unsupported_tensors_are_refused_with_their_name():
    model = make("linear")
    model.register_parameter("phase", nn.Parameter(torch.zeros(2, dtype=torch.complex64)))
    with pytest.raises(TypeError, match="'phase': dtype torch.complex64"):
        helpers.flatten(model)
    lazy = nn.Sequential(nn.LazyLinear(3))
    with pytest.raises(LayoutError, match="'0.weight' is not initialised yet"):
        helpers.flatten(lazy)
    lazy(torch.ones(1, 4))
    assert helpers.flatten(lazy)[0].size == 4 * 3 + 3


def test_layout_from_json_restores_into_a_fresh_model():
    model = make("gru")
    vector, layout = helpers.flatten(model, include="all", order="F")
    twin = copy.deepcopy(model)
    zero_(twin, "all")
    helpers.restore(twin, vector, helpers.Layout.from_json(layout.to_json()))
    assert digest(twin) == digest(model)
    x = torch.randn(2, 7, 4)
    assert torch.equal(twin(x), model(x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", ["batchnorm2d", "lstm"])
def test_cuda_round_trip_keeps_the_device_and_storage(kind):
    model = make(kind).cuda()
    if kind == "batchnorm2d":
        model = model.to(memory_format=torch.channels_last)
    before, kept = digest(model), identities(model)
    vector, layout = helpers.flatten(model, include="all")
    assert isinstance(vector, np.ndarray)
    zero_(model, "all")
    helpers.restore(model, vector, layout)
    assert digest(model) == before
    assert identities(model) == kept
    assert all(t.is_cuda for t in model.state_dict().values())


# --- Issue 7: silent wrong results and raw errors, each guarded -----------------------


def test_reject_nonfinite_refuses_a_value_that_overflows_float16():
    model = make("linear").half()
    vector, layout = helpers.flatten(model, dtype="float64")
    vector[0] = 1e6  # finite in the vector, inf once cast to float16
    before, kept = digest(model), identities(model)
    with pytest.raises(LayoutError, match=r"'0.weight': expected finite values, got 1 NaN/inf"):
        helpers.restore(model, vector, layout, reject_nonfinite=True)
    assert digest(model) == before and identities(model) == kept


def test_reject_nonfinite_refuses_a_value_that_overflows_bfloat16():
    model = make("linear").to(torch.bfloat16)
    vector, layout = helpers.flatten(model)
    vector[0] = 3.4e38  # below float32's largest, above what rounds to bfloat16's largest
    before = digest(model)
    with pytest.raises(LayoutError, match=r"\(1 finite values overflow bfloat16\)"):
        helpers.restore(model, vector, layout, reject_nonfinite=True)
    assert digest(model) == before
    with pytest.warns(PrecisionWarning, match=r"1 of them to inf"):
        helpers.restore(model, vector, layout)
    assert torch.isinf(model[0].weight[0, 0])


def test_bfloat16_rounding_check_agrees_with_torch_on_every_kind_of_float32():
    from helpers._core import _round_to_bfloat16

    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32)
    edges = np.array([3.4e38, -3.4e38, 3.3961e38, 3.3895e38, 1e-45, 0.0, -0.0, np.inf])
    values = np.concatenate([bits.view(np.float32), edges.astype(np.float32)])
    expected = torch.from_numpy(values).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(_round_to_bfloat16(values), expected)


def test_num_batches_tracked_given_2_to_the_63_is_refused_not_wrapped():
    model = make("batchnorm")
    vector, layout = helpers.flatten(model, include="all", dtype="float64")
    vector[layout["1.num_batches_tracked"].offset] = 2.0**63
    before = digest(model)
    with pytest.raises(LayoutError, match="'1.num_batches_tracked': expected whole numbers"):
        helpers.restore(model, vector, layout)
    assert digest(model) == before
    vector[layout["1.num_batches_tracked"].offset] = 2.0**63 - 1024  # the largest that fits
    helpers.restore(model, vector, layout)
    assert int(model[1].num_batches_tracked) == 2**63 - 1024


def test_int32_buffer_given_2_to_the_31_is_refused_not_wrapped():
    model = make("linear")
    model.register_buffer("steps", torch.zeros(1, dtype=torch.int32))
    vector, layout = helpers.flatten(model, include="all")
    assert vector.dtype == np.float32
    vector[layout["steps"].offset] = 2.0**31
    with pytest.raises(LayoutError, match="'steps': expected whole numbers that fit int32"):
        helpers.restore(model, vector, layout)
    assert int(model.steps) == 0


def test_num_batches_tracked_above_2_to_the_53_warns_when_flattened():
    model = make("batchnorm")
    model[1].num_batches_tracked.fill_(2**53 + 1)
    with pytest.warns(PrecisionWarning, match="'1.num_batches_tracked': int64 values do not fit"):
        helpers.flatten(model, include="all", dtype="float64")


def test_distinct_parameters_that_share_memory_are_refused():
    model = make("linear")
    model.view = nn.Parameter(model[0].weight.data[:2])  # a view, not the same tensor
    before = digest(model)
    with pytest.raises(LayoutError, match=r"'view' and '0.weight' share memory"):
        helpers.flatten(model)
    vector, layout = helpers.flatten(make("linear"))
    with pytest.raises(LayoutError, match="share memory"):
        helpers.restore(model, vector, layout)
    assert digest(model) == before


def test_a_buffer_that_is_a_view_of_a_parameter_is_refused_under_all():
    model = make("linear")
    model.register_buffer("alias", model[0].bias.data)
    assert helpers.flatten(model)[0].size == 50  # trainable: the buffer is not in the vector
    with pytest.raises(LayoutError, match=r"'alias' and '0.bias' share memory"):
        helpers.flatten(model, include="all")


def test_tied_weights_that_are_the_same_tensor_still_restore():
    model = TiedLanguageModel()
    vector, layout = helpers.flatten(model)
    twin = TiedLanguageModel()
    helpers.restore(twin, vector, layout)
    assert twin.head.weight is twin.embedding.weight
    assert digest(twin) == digest(model)


class WithExtraState(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(2, 3)
        self.calls = 0

    def get_extra_state(self) -> dict:
        return {"calls": self.calls}

    def set_extra_state(self, state: dict) -> None:
        self.calls = state["calls"]


def test_extra_state_is_refused_under_all_by_name_and_left_out_of_trainable():
    model = nn.Sequential(WithExtraState())
    with pytest.raises(TypeError, match=r"'0._extra_state': extra state from get_extra_state"):
        helpers.flatten(model, include="all")
    assert helpers.flatten(model)[1].names == ["0.inner.weight", "0.inner.bias"]


def test_a_meta_device_model_is_refused_by_name():
    with torch.device("meta"):
        model = nn.Linear(3, 2)
    with pytest.raises(LayoutError, match="tensor 'weight' is on the meta device"):
        helpers.flatten(model)
    vector, layout = helpers.flatten(nn.Linear(3, 2))
    with pytest.raises(LayoutError, match="tensor 'weight' is on the meta device"):
        helpers.restore(model, vector, layout)


def test_an_inference_tensor_as_restore_target_is_refused_and_nothing_changes():
    model = make("linear")
    with torch.inference_mode():
        model[2].weight = nn.Parameter(torch.zeros(3, 5))  # an inference tensor, for good
    vector, layout = helpers.flatten(model)  # reading is fine
    before = digest(model)
    with pytest.raises(LayoutError, match=r"tensor '2.weight' is an inference tensor"):
        helpers.restore(model, vector * 2, layout)
    assert digest(model) == before  # the three tensors before it were put back


def test_an_expanded_parameter_as_restore_target_is_refused_and_nothing_changes():
    model = make("linear")
    model[0].bias = nn.Parameter(torch.zeros(1).expand(5))  # stride 0: one memory location
    vector, layout = helpers.flatten(model)  # reading is fine
    assert vector.size == 50
    before = digest(model)
    with pytest.raises(LayoutError, match=r"'0.bias': several elements share one memory location"):
        helpers.restore(model, np.arange(50, dtype=np.float32), layout)
    assert digest(model) == before


@pytest.mark.parametrize("include", ["trainable", "all"])
def test_a_module_without_weights_is_refused_not_flattened_to_nothing(include):
    frozen = nn.BatchNorm1d(2).requires_grad_(False)
    for model in (nn.ReLU(), nn.Sequential()):
        with pytest.raises(helpers.LayoutError, match=r"has no tensors to take .* got none"):
            helpers.flatten(model, include=include)
        with pytest.raises(helpers.LayoutError, match="has no tensors"):
            helpers.save(Path(tempfile.mkdtemp()) / "empty.npz", model=model)
    if include == "trainable":  # frozen: nothing to train, and the error says where to look
        with pytest.raises(helpers.LayoutError, match="only with include='all'"):
            helpers.flatten(frozen, include=include)
    else:
        assert helpers.flatten(frozen, include=include)[0].size == 4 * 2 + 1  # γ β μ σ² n
