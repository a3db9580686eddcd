"""Lesson 03 (PyTorch parameters, buffers, state_dict): its default run and one epoch, seed 7."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("papermill")

from notebook_runner import LessonRun, lesson_fixture  # noqa: E402

run = lesson_fixture("03_pytorch_parameters_buffers_state_dict.ipynb", EPOCHS=1, SEED=7)


def test_parameters_reach_the_notebook(run: LessonRun) -> None:
    parameters = run.parameters
    assert (run.results["EPOCHS"], run.results["SEED"], run.results["DEVICE"]) == (
        parameters["EPOCHS"],
        parameters["SEED"],
        parameters["DEVICE"],
    )
    assert len(run.results["epoch_losses"]) == parameters["EPOCHS"]  # one loss per epoch


def test_initial_weights_come_from_the_seed(run: LessonRun) -> None:
    torch.manual_seed(run.parameters["SEED"])
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10), torch.nn.Softmax(dim=1)
    )
    first = model[0].weight.detach().numpy().ravel()[:3]
    np.testing.assert_allclose(run.results["initial_first_weights"], first, atol=1e-6)


def test_counts_and_layouts(run: LessonRun) -> None:
    results = run.results
    assert results["n_parameters"] == 784 * 32 + 32 + 32 * 10 + 10 == 25_450
    assert results["bn_trainable_size"] == 25_450 + 64
    assert results["bn_all_size"] == 25_450 + 64 + 32 + 32 + 1
    assert results["bn_buffer_names"] == [
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
    ]
    assert results["num_batches_tracked_dtype"] == "int64"
    assert results["bn_buffer_values"] == 32 + 32 + 1 == results["bn_all_size"] - 25_514
    assert results["tied_size"] == 10 * 4 + 10
    assert results["mixed_vector_dtype"] == "float64"


def test_softmax_axis_check_shows_rows_that_do_not_sum_to_one(run: LessonRun) -> None:
    assert run.results["softmax_right_axis_sums_to_one"] is True
    wrong = run.results["softmax_wrong_axis_row_sums"]
    # dim=0: each of the 10 columns sums to 1 over the 3 images, so the rows share 10
    assert len(wrong) == 3 and abs(sum(wrong) - 10) < 0.01
    assert all(abs(total - 1) > 0.5 for total in wrong)


def test_flatten_restore_versus_torch_utils(run: LessonRun) -> None:
    assert run.results["flatten_equals_parameters_to_vector"] is True
    assert run.results["too_long_refused"] is True
    assert run.results["restore_kept_identity"] is True
    assert run.results["vector_to_parameters_kept_storage"] is False
    assert run.results["vector_to_parameters_dtype_after"] == "float64"


def test_training_and_restore(run: LessonRun) -> None:
    losses = run.results["epoch_losses"]
    assert 0.2 < losses[0] < 2.3  # below chance level (ln 10 = 2.30) after one epoch
    assert losses == sorted(losses, reverse=True)  # every further epoch lowers it
    assert 0.7 < run.results["test_accuracy"] <= 1.0
    assert run.results["noisy_accuracy"] < run.results["test_accuracy"]
    assert run.results["restored_predictions_identical"] is True
    assert run.results["restored_state_dict_identical"] is True
