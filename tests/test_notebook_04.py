"""Lesson 04 under papermill: a 2-3-2 network, 20 iterations, another seed."""

import pytest
from notebook_runner import run_notebook

NOTEBOOK = "04_nnet_single_hidden_layer.ipynb"
SEED, SIZE, MAXIT = 1, 3, 20
N_IN, N_OUT = 2, 2  # two inputs; class_ind gives two indicator columns


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    output_dir = tmp_path_factory.mktemp("notebook_04")
    return run_notebook(NOTEBOOK, output_dir, SEED=SEED, SIZE=SIZE, MAXIT=MAXIT)


def test_ran_with_the_parameters_passed(results: dict) -> None:
    assert (results["seed"], results["size"], results["maxit"]) == (SEED, SIZE, MAXIT)
    assert results["n"] == [N_IN, SIZE, N_OUT]


def test_weight_count_and_names(results: dict) -> None:
    assert results["n_weights"] == results["n_weights_formula"] == 3 * 3 + 2 * 4 == 17
    assert results["n_names"] == 17
    assert results["names_head"] == ["b->h1", "i1->h1", "i2->h1", "b->h2"]
    assert results["names_tail"] == ["h1->o2", "h2->o2", "h3->o2"]


def test_flatten_is_wts_with_one_entry_per_unit(results: dict) -> None:
    assert results["flatten_equals_wts"] is True
    assert results["order_f_equals_c"] is True
    assert results["layout_names"] == ["h1", "h2", "h3", "o1", "o2"]
    assert results["layout_sizes"] == [3, 3, 3, 4, 4]


def test_fit_stopped_at_maxit_with_a_finite_criterion(results: dict) -> None:
    # 100 coin-flip labels, two outputs: the squared error starts near 50 and can only fall.
    assert 0 < results["final_value"] < 100
    assert results["convergence"] in (0, 1)


def test_restore_updates_predict_but_not_fitted_values(results: dict) -> None:
    assert results["restore_moves_predict"] is True
    assert results["restore_keeps_fitted_values"] is True


def test_sklearn_has_one_output_for_two_classes(results: dict) -> None:
    assert results["sklearn_n_weights"] == SIZE * (N_IN + 1) + 1 * (SIZE + 1) == 13
    assert results["sklearn_shapes"] == [[N_IN, SIZE], [SIZE, 1], [SIZE], [1]]
    assert results["sklearn_to_nnet_equal"] is True


def test_torch_and_nnet_exchange_weights_both_ways(results: dict) -> None:
    assert results["torch_n_weights"] == 17
    assert results["torch_layout_names"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert results["torch_to_nnet_equal"] is True
    assert results["nnet_to_torch_equal"] is True


def test_variant_counts(results: dict) -> None:
    assert results["softmax_n_weights"] == 17
    assert results["skip_n_weights"] == 17 + N_OUT * N_IN == 21
    assert 0 <= results["n_clamped"] <= 100 * SIZE
