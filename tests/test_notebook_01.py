"""Notebook 01 under papermill, with parameters other than the committed ones."""

from __future__ import annotations

import pytest
from notebook_runner import run_notebook


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_one_epoch_runs_on_each_backend_and_computes_the_lesson(tmp_path, backend):
    results = run_notebook(
        "01_mnist_mlp_2016_in_keras3.ipynb", tmp_path, EPOCHS=1, SEED=7, KERAS_BACKEND=backend
    )
    assert results["backend"] == backend
    assert results["epochs"] == 1 and results["history_length"] == 1
    assert results["n_weights"] == 42_310
    assert results["layer_shapes"] == [[784, 50], [50], [50, 50], [50], [50, 10], [10]]
    assert results["vector_equals_get_weights"] is True
    # every blank pixel keeps its initial weights; other rows almost all move
    assert 80 <= results["blank_pixels"] <= results["unchanged_kernel_rows"] <= 784
    # one epoch of the 2016 SGD barely learns; one epoch of Adam clearly does
    assert results["adam_test_accuracy"] > 0.6 > results["sgd_test_accuracy"]
