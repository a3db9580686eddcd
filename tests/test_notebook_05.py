"""Lesson 05: its default run (TensorFlow) and Keras on PyTorch with other filters and seed."""

from notebook_runner import LessonRun, lesson_fixture

run = lesson_fixture(
    "05_conv_and_batch_norm_layouts.ipynb", SEED=7, KERAS_BACKEND="torch", FILTERS=3
)


def test_ran_with_the_parameters_passed(run: LessonRun) -> None:
    for name in ("SEED", "FILTERS", "KERAS_BACKEND"):
        assert run.results[name] == run.parameters[name]
    assert run.results["backend"] == run.parameters["KERAS_BACKEND"]


def test_conv_kernels_are_hwio_and_oihw_and_agree_after_transpose(run: LessonRun) -> None:
    results, f = run.results, run.parameters["FILTERS"]
    assert results["tiny_filter_equal"] is True
    assert results["conv_keras_shape"] == [3, 3, 2, f]  # on either Keras backend
    assert results["conv_torch_shape"] == [f, 2, 3, 3]
    assert results["conv_max_diff"] < 1e-5
    assert results["conv_reshape_max_diff"] > 1e-2  # reshape instead of transpose is wrong


def test_small_cnn_layouts_and_the_flatten_order(run: LessonRun) -> None:
    results, f = run.results, run.parameters["FILTERS"]
    assert results["cnn_keras_shapes"] == [[3, 3, 1, f], [f], [169 * f, 10], [10]]
    assert results["cnn_torch_shapes"] == [[f, 1, 3, 3], [f], [10, 169 * f], [10]]
    assert results["cnn_size"] == 10 * f + 1690 * f + 10
    keras_flat, torch_flat = results["flatten_orders"]
    assert keras_flat == list(range(12))  # (h, w, c)
    assert torch_flat == [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]  # (c, h, w)
    # PyTorch's inputs 0..3 are channel 0 at (0, 0..3): Keras' inputs 0, f, 2f, 3f
    assert results["keras_row_head"] == [0, f, 2 * f, 3 * f]


def test_grouped_and_depthwise_convolutions(run: LessonRun) -> None:
    results, f = run.results, run.parameters["FILTERS"]
    assert results["grouped_keras_shape"] == [3, 3, 1, 2 * f]
    assert results["grouped_torch_shape"] == [2 * f, 1, 3, 3]
    assert results["depthwise_keras_shape"] == [3, 3, 2, 2]
    assert results["depthwise_torch_shape"] == [4, 1, 3, 3]
    assert results["grouped_max_diff"] < 1e-5 and results["depthwise_max_diff"] < 1e-5


def test_batch_norm_conventions(run: LessonRun) -> None:
    results, f = run.results, run.parameters["FILTERS"]
    assert results["bn_keras_names"] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert results["bn_torch_names"] == [
        "weight",
        "bias",
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]
    assert results["bn_momentum_fractions"] == [0.01, 0.1]
    assert results["bn_momentum_matches"] is True
    # variance of 0, 1, 2, 3: Keras stores the biased estimate, PyTorch the unbiased one
    assert results["bn_stored_variances"] == [1.25, 1.6667]
    assert results["bn_eps"] == [1e-3, 1e-5]
    assert results["bn_eps_max_diff"]["0.001"] < 1e-5 < results["bn_eps_max_diff"]["1e-05"]
    assert results["bn_sizes"] == [2 * f, 4 * f, 2 * f, 4 * f + 1]
    assert results["bn_copy_identical"] == {"trainable": False, "all": True}


def test_integer_counter_travels_as_a_float_exactly_up_to_its_dtype(run: LessonRun) -> None:
    assert run.results["counter_dtype"] == "int64"
    assert run.results["counter_in_vector"] == 1.0
    assert run.results["counter_restored"] == 2**24 + 1  # from a float64 vector
    assert run.results["counter_float32_warned"] is True
    assert run.results["fractional_refused"] is True
