"""Lesson 06: its default run (TensorFlow) and Keras on PyTorch with other widths and seed."""

from notebook_runner import LessonRun, lesson_fixture

N_IN = 28  # one image row of 28 pixels per time step

run = lesson_fixture(
    "06_recurrent_layouts.ipynb", SEED=7, KERAS_BACKEND="torch", HIDDEN=8, FILTERS=3
)


def test_ran_with_the_parameters_passed(run: LessonRun) -> None:
    for name in ("SEED", "HIDDEN", "FILTERS", "KERAS_BACKEND"):
        assert run.results[name] == run.parameters[name]
    assert run.results["backend"] == run.parameters["KERAS_BACKEND"]


def test_lstm_shapes_counts_and_conversion_both_ways(run: LessonRun) -> None:
    results, h = run.results, run.parameters["HIDDEN"]
    assert results["lstm_keras_shapes"] == [[N_IN, 4 * h], [h, 4 * h], [4 * h]]
    assert results["lstm_torch_shapes"] == [[4 * h, N_IN], [4 * h, h], [4 * h], [4 * h]]
    assert results["lstm_counts"] == [
        4 * (h * (N_IN + h) + h),
        4 * (h * (N_IN + h) + 2 * h),
    ]
    assert results["lstm_forget_block_means"] == [0.0, 1.0, 0.0, 0.0]
    assert results["lstm_max_diff"] < 1e-5  # Keras -> torch: the bias split as (bias, 0)
    assert results["lstm_source_bias_hh_nonzero"] is True
    assert results["lstm_joined_max_diff"] < 1e-5  # torch -> Keras: the two biases summed


def test_gru_shapes_counts_and_gate_reordering(run: LessonRun) -> None:
    results, h = run.results, run.parameters["HIDDEN"]
    assert results["gru_keras_shapes"] == [[N_IN, 3 * h], [h, 3 * h], [2, 3 * h]]
    assert results["gru_torch_shapes"] == [[3 * h, N_IN], [3 * h, h], [3 * h], [3 * h]]
    both = 3 * (h * (N_IN + h) + 2 * h)
    assert results["gru_counts"] == [both, both, 3 * (h * (N_IN + h) + h)]
    assert results["gru_max_diff"] < 1e-5 < 1e-2 < results["gru_unordered_max_diff"]


def test_mixed_model_layouts(run: LessonRun) -> None:
    results, h, f = run.results, run.parameters["HIDDEN"], run.parameters["FILTERS"]
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
