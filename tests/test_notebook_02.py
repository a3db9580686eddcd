"""Lesson 02 under papermill: PyTorch backend, one epoch, another seed."""

from math import sqrt

import pytest
from notebook_runner import run_notebook

NOTEBOOK = "02_keras_get_weights_and_order.ipynb"
SEED = 7
# Keras' default Dense initializer is Glorot uniform: |w| <= sqrt(6 / (fan_in + fan_out)).
FIRST_KERNEL_LIMIT = sqrt(6 / (784 + 32))


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    output_dir = tmp_path_factory.mktemp("notebook_02")
    return run_notebook(NOTEBOOK, output_dir, EPOCHS=1, KERAS_BACKEND="torch", SEED=SEED)


def test_ran_with_the_parameters_passed(results: dict) -> None:
    assert results["backend"] == "torch"
    assert results["epochs"] == 1
    assert results["seed"] == SEED


def test_counts_and_shapes(results: dict) -> None:
    assert results["n_weights"] == 784 * 32 + 32 + 32 * 10 + 10 == 25_450
    assert results["shapes"] == [[784, 32], [32], [32, 10], [10]]
    assert results["flatten_equals_by_hand"] is True


def test_tiny_array_walks(results: dict) -> None:
    assert results["tiny_C"] == [0, 1, 2, 3, 4, 5]
    assert results["tiny_F"] == [0, 3, 1, 4, 2, 5]  # what R's as.vector prints


def test_f_order_is_r_order_and_differs_from_c(results: dict) -> None:
    assert results["f_equals_r_style"] is True
    assert results["c_and_f_differ"] is True
    assert results["fingerprints_c_f_equal"] is True
    # The biases (32 + 10) and each kernel's first and last entry keep their place.
    assert results["n_in_place"] == 32 + 10 + 2 * 2


def test_heads_come_from_row_and_column_of_first_kernel(results: dict) -> None:
    head_c, head_f = results["head_C"], results["head_F"]
    assert head_c == results["kernel_row0_head"]  # Python walks along row 0
    assert head_f == results["kernel_col0_head"]  # R's head() walks down column 0
    assert head_c[0] == head_f[0]  # kernel[0, 0] comes first in both walks
    assert all(c != f for c, f in zip(head_c[1:], head_f[1:], strict=True))
    assert all(abs(w) <= FIRST_KERNEL_LIMIT for w in head_c + head_f)
    assert len(set(head_c + head_f)) == 11  # real random values, not a constant


def test_training_reaches_a_sane_accuracy(results: dict) -> None:
    assert 0.5 < results["accuracy"] <= 1.0


def test_wrong_order_is_accepted_and_breaks_the_model(results: dict) -> None:
    assert results["wrong_order_accepted"] is True
    assert results["wrong_order_accuracy"] < results["accuracy"] - 0.3
    assert results["wrong_order_changed_fraction"] > 0.3


def test_matching_layout_restores_exactly_and_checks_refuse(results: dict) -> None:
    assert results["restore_bit_identical"] is True
    assert results["json_round_trip"] is True
    assert results["wrong_length_refused"] is True
    assert results["other_architecture_refused"] is True
