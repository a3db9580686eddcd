"""Models on an accelerator (CUDA, Apple's MPS): a host vector out, written back in place.

Every test here is skipped on a machine without such a device; each compares the device
model with a CPU twin, so the device must do exactly what the CPU does.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from test_torch_adapter import KINDS, digest, identities, make, zero_  # noqa: E402

import helpers  # noqa: E402
from helpers import PrecisionWarning  # noqa: E402


def accelerators() -> list[str]:
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if torch.backends.mps.is_available():
        found.append("mps")
    return found


DEVICES = accelerators()
pytestmark = pytest.mark.skipif(not DEVICES, reason="needs a CUDA or MPS device")
DEVICE = pytest.mark.parametrize("device", DEVICES)


def float_dtypes(device: str) -> list[torch.dtype]:
    both = [torch.float16, torch.bfloat16, torch.float32]
    return both if device == "mps" else [*both, torch.float64]  # MPS has no float64


@DEVICE
@pytest.mark.parametrize("kind", KINDS)
def test_flatten_gives_a_host_vector_equal_to_the_cpu_twin(device, kind):
    model = make(kind)
    on_device = copy.deepcopy(model).to(device)
    for include in ("trainable", "all"):
        vector, layout = helpers.flatten(on_device, include=include)
        expected, expected_layout = helpers.flatten(model, include=include)
        assert isinstance(vector, np.ndarray)
        np.testing.assert_array_equal(vector, expected)
        assert layout == expected_layout


@DEVICE
@pytest.mark.parametrize("kind", KINDS)
def test_restore_writes_in_place_on_the_device(device, kind):
    model = make(kind).to(device)
    before, kept = digest(model), identities(model)
    vector, layout = helpers.flatten(model, include="all")
    zero_(model, "all")
    helpers.restore(model, vector, layout)
    assert digest(model) == before
    assert identities(model) == kept  # same objects, storage, dtype, device, strides
    assert all(t.device.type == device for t in model.state_dict().values())


@DEVICE
def test_half_precision_restore_rounds_exactly_as_on_the_cpu(device):
    """Random values, subnormals, overflows: the device keeps the bits the CPU keeps."""
    values = np.random.default_rng(0).standard_normal(5_000) * np.logspace(-9, 6, 5_000)
    edges = np.array([6.0e-8, 3.0e-8, 1e-45, 65504.0, 65520.0, 3.4e38, -0.0, np.inf, np.nan])
    for dtype in (torch.float16, torch.bfloat16):
        cpu_model = nn.Sequential(nn.Linear(50, 100, bias=False)).to(dtype)
        device_model = copy.deepcopy(cpu_model).to(device)
        layout = helpers.flatten(cpu_model, dtype="float32")[1]  # wider: values round
        vector = np.concatenate([values[: layout.size - edges.size], edges]).astype(layout.dtype)
        with warnings.catch_warnings(record=True) as cpu_warnings:
            warnings.simplefilter("always")
            helpers.restore(cpu_model, vector, layout)
        with warnings.catch_warnings(record=True) as device_warnings:
            warnings.simplefilter("always")
            helpers.restore(device_model, vector, layout)
        assert [str(w.message) for w in device_warnings] == [str(w.message) for w in cpu_warnings]
        assert any(issubclass(w.category, PrecisionWarning) for w in device_warnings)
        assert digest(device_model) == digest(cpu_model)
        flattened = helpers.flatten(device_model)[0]
        np.testing.assert_array_equal(flattened, helpers.flatten(cpu_model)[0])


@DEVICE
def test_every_float_dtype_round_trips_on_the_device(device):
    for dtype in float_dtypes(device):
        model = make("layernorm").to(device=device, dtype=dtype)
        before, kept = digest(model), identities(model)
        vector, layout = helpers.flatten(model)
        zero_(model, "trainable")
        helpers.restore(model, vector, layout)
        assert digest(model) == before and identities(model) == kept


@DEVICE
def test_a_refused_restore_leaves_the_device_model_alone(device):
    model = make("batchnorm").to(device)
    vector, layout = helpers.flatten(model, include="all")
    vector[layout["1.num_batches_tracked"].offset] = 2.5
    before, kept = digest(model), identities(model)
    with pytest.raises(helpers.LayoutError, match="'1.num_batches_tracked': expected whole"):
        helpers.restore(model, vector * 3, layout)
    assert digest(model) == before and identities(model) == kept
