"""Lesson 03 (PyTorch parameters, buffers, state_dict) under papermill with other parameters."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("papermill")

from notebook_runner import run_notebook  # noqa: E402

NOTEBOOK = "03_pytorch_parameters_buffers_state_dict.ipynb"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_notebook(NOTEBOOK, tmp_path_factory.mktemp("nb03"), EPOCHS=1, SEED=7)


def test_parameters_reach_the_notebook(results):
    assert (results["EPOCHS"], results["SEED"], results["DEVICE"]) == (1, 7, "cpu")
    assert len(results["epoch_losses"]) == 1  # one epoch was trained, not the default three


def test_initial_weights_come_from_the_seed(results):
    torch.manual_seed(7)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10), torch.nn.Softmax(dim=1)
    )
    first = model[0].weight.detach().numpy().ravel()[:3]
    np.testing.assert_allclose(results["initial_first_weights"], first, atol=1e-6)


def test_counts_and_layouts(results):
    assert results["n_parameters"] == 784 * 32 + 32 + 32 * 10 + 10 == 25_450
    assert results["bn_trainable_size"] == 25_450 + 64
    assert results["bn_all_size"] == 25_450 + 64 + 32 + 32 + 1
    assert results["bn_buffer_names"] == [
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
    ]
    assert results["num_batches_tracked_dtype"] == "int64"
    assert results["tied_size"] == 10 * 4 + 10
    assert results["mixed_vector_dtype"] == "float64"


def test_flatten_restore_versus_torch_utils(results):
    assert results["flatten_equals_parameters_to_vector"] is True
    assert results["restore_kept_identity"] is True
    assert results["vector_to_parameters_kept_storage"] is False
    assert results["vector_to_parameters_dtype_after"] == "float64"


def test_training_and_restore(results):
    (loss,) = results["epoch_losses"]
    assert 0.2 < loss < 2.3  # below chance level (ln 10 = 2.30) after one epoch
    assert 0.7 < results["test_accuracy"] <= 1.0
    assert results["noisy_accuracy"] < results["test_accuracy"]
    assert results["restored_predictions_identical"] is True
    assert results["restored_state_dict_identical"] is True
