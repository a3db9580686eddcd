"""Lesson 05 under papermill: Keras on the PyTorch backend, other widths, another seed."""

import pytest
from notebook_runner import run_notebook

NOTEBOOK = "05_conv_batchnorm_recurrent_layouts.ipynb"
SEED, HIDDEN, FILTERS = 7, 8, 3
N_IN = 28  # one image row of 28 pixels per time step


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    output_dir = tmp_path_factory.mktemp("notebook_05")
    return run_notebook(
        NOTEBOOK, output_dir, SEED=SEED, KERAS_BACKEND="torch", HIDDEN=HIDDEN, FILTERS=FILTERS
    )


def test_ran_with_the_parameters_passed(results: dict) -> None:
    assert (results["SEED"], results["HIDDEN"], results["FILTERS"]) == (SEED, HIDDEN, FILTERS)
    assert results["KERAS_BACKEND"] == results["backend"] == "torch"


def test_conv_kernels_are_hwio_and_oihw_and_agree_after_transpose(results: dict) -> None:
    assert results["tiny_filter_equal"] is True
    assert results["conv_keras_shape"] == [3, 3, 2, FILTERS]
    assert results["conv_torch_shape"] == [FILTERS, 2, 3, 3]
    assert results["conv_max_diff"] < 1e-5
    assert results["conv_reshape_max_diff"] > 1e-2  # reshape instead of transpose is wrong


def test_small_cnn_layouts(results: dict) -> None:
    assert results["cnn_keras_shapes"] == [[3, 3, 1, FILTERS], [FILTERS], [169 * FILTERS, 10], [10]]
    assert results["cnn_torch_shapes"] == [[FILTERS, 1, 3, 3], [FILTERS], [10, 169 * FILTERS], [10]]
    assert results["cnn_size"] == 10 * FILTERS + 1690 * FILTERS + 10
    keras_flat, torch_flat = results["flatten_orders"]
    assert keras_flat == list(range(12))  # (h, w, c)
    assert torch_flat == [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]  # (c, h, w)


def test_grouped_and_depthwise_convolutions(results: dict) -> None:
    assert results["grouped_keras_shape"] == [3, 3, 1, 2 * FILTERS]
    assert results["grouped_torch_shape"] == [2 * FILTERS, 1, 3, 3]
    assert results["depthwise_keras_shape"] == [3, 3, 2, 2]
    assert results["depthwise_torch_shape"] == [4, 1, 3, 3]
    assert results["grouped_max_diff"] < 1e-5 and results["depthwise_max_diff"] < 1e-5


def test_batch_norm_conventions(results: dict) -> None:
    assert results["bn_keras_names"] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert results["bn_torch_names"][-1] == "num_batches_tracked"
    assert results["bn_momentum_fractions"] == [0.01, 0.1]
    assert results["bn_momentum_matches"] is True
    assert results["bn_eps"] == [1e-3, 1e-5]
    assert results["bn_eps_max_diff"]["0.001"] < 1e-5 < results["bn_eps_max_diff"]["1e-05"]
    assert results["bn_sizes"] == [2 * FILTERS, 4 * FILTERS, 2 * FILTERS, 4 * FILTERS + 1]
    assert results["bn_copy_identical"] == {"trainable": False, "all": True}


def test_integer_counter_travels_as_a_float(results: dict) -> None:
    assert results["counter_dtype"] == "int64"
    assert results["counter_in_vector"] == 1.0
    assert results["counter_restored"] == 5
    assert results["fractional_refused"] is True


def test_lstm_shapes_counts_and_conversion(results: dict) -> None:
    h = HIDDEN
    assert results["lstm_keras_shapes"] == [[N_IN, 4 * h], [h, 4 * h], [4 * h]]
    assert results["lstm_torch_shapes"] == [[4 * h, N_IN], [4 * h, h], [4 * h], [4 * h]]
    assert results["lstm_counts"] == [
        4 * (h * (N_IN + h) + h),
        4 * (h * (N_IN + h) + 2 * h),
    ]
    assert results["lstm_forget_block_means"] == [0.0, 1.0, 0.0, 0.0]
    assert results["lstm_max_diff"] < 1e-5


def test_gru_shapes_counts_and_gate_reordering(results: dict) -> None:
    h = HIDDEN
    assert results["gru_keras_shapes"] == [[N_IN, 3 * h], [h, 3 * h], [2, 3 * h]]
    assert results["gru_torch_shapes"] == [[3 * h, N_IN], [3 * h, h], [3 * h], [3 * h]]
    both = 3 * (h * (N_IN + h) + 2 * h)
    assert results["gru_counts"] == [both, both, 3 * (h * (N_IN + h) + h)]
    assert results["gru_max_diff"] < 1e-5 < 1e-2 < results["gru_unordered_max_diff"]


def test_mixed_model_layouts(results: dict) -> None:
    h, f = HIDDEN, FILTERS
    base = 10 * f + 2 * f + 4 * (h * (13 * f + h) + h) + 10 * h + 10
    assert results["mixed_sizes"] == {
        "keras_trainable": base,
        "keras_all": base + 2 * f,
        "torch_trainable": base + 4 * h,
        "torch_all": base + 4 * h + 2 * f + 1,
    }
    short = [name.split("/", 1)[1] for name in results["mixed_keras_names"]]
    assert short[:6] == [
        "conv/kernel",
        "conv/bias",
        "bn/gamma",
        "bn/beta",
        "bn/moving_mean",
        "bn/moving_variance",
    ]
    assert results["mixed_torch_names"][4:8] == [
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
        "lstm.weight_ih_l0",
    ]
