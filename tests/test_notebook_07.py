"""Lesson 07: its default run (one epoch, TensorFlow) and Keras on PyTorch, smaller nets, seed 3."""

from notebook_runner import LessonRun, lesson_fixture

run = lesson_fixture(
    "07_restore_and_transfer.ipynb",
    SEED=3,
    KERAS_BACKEND="torch",
    FILTERS=2,
    HIDDEN=8,
)


def test_ran_with_the_parameters_passed(run: LessonRun) -> None:
    for name in ("SEED", "EPOCHS", "FILTERS", "HIDDEN", "KERAS_BACKEND"):
        assert run.results[name] == run.parameters[name]
    assert run.results["backend"] == run.parameters["KERAS_BACKEND"]


def test_every_round_trip_was_scrambled_and_came_back_bit_exact(run: LessonRun) -> None:
    trips = run.results["round_trips"]
    expected = {
        f"{framework}/{include}/{order}"
        for framework in ("keras", "torch")
        for include in ("trainable", "all")
        for order in ("C", "F")
    }
    assert set(trips) == expected
    for size, scrambled, identical in trips.values():
        assert scrambled is True and identical is True and size > 0
    # "all" adds Keras' 2 x 4 moving statistics and torch's 2 x 4 buffers + the int64 counter
    assert trips["keras/all/C"][0] - trips["keras/trainable/C"][0] == 8
    assert trips["torch/all/F"][0] - trips["torch/trainable/F"][0] == 9


def test_mixed_dtypes_widest_float_and_precision_warnings(run: LessonRun) -> None:
    results = run.results
    assert results["mixed_vector_dtypes"] == ["float32", "float64"]
    assert results["mixed_tensor_dtypes"] == [
        "float16",
        "float16",
        "bfloat16",
        "bfloat16",
        "float32",
        "float32",
    ]
    assert results["exact_restore_warnings"] == 0
    assert results["precision_warned_tensors"] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert results["float32_exact"] is True


def test_keras_cnn_runs_the_same_in_torch_and_a_raw_reshape_does_not(run: LessonRun) -> None:
    results, f = run.results, run.parameters["FILTERS"]
    assert results["cnn_size"] == 10 * f + 1690 * f + 10
    assert results["cnn_conv_is_transpose"] is True
    assert results["cnn_dense_rows_reordered"] is True
    assert results["cnn_max_diff"] <= 1e-5
    assert results["cnn_torch_accuracy"] == results["cnn_keras_accuracy"] > 0.7
    assert results["naive_is_reshape"] is True
    assert results["naive_accuracy"] < results["cnn_keras_accuracy"] - 0.4


def test_lstm_biases_sum_and_predictions_agree_both_ways(run: LessonRun) -> None:
    results = run.results
    assert results["lstm_bias_is_sum"] is True
    assert results["lstm_max_diff"] <= 1e-5
    torch_accuracy, keras_accuracy = results["lstm_accuracies"]
    assert torch_accuracy == keras_accuracy > 0.2  # even one epoch: well above chance (0.1)
    assert results["lstm_back_max_diff"] <= 1e-5
    assert results["lstm_back_bias_hh_zero"] is True
    assert results["lstm_back_same_bytes"] is False  # the bias split is not recoverable


def test_nnet_to_torch(run: LessonRun) -> None:
    assert run.results["nnet_max_diff"] <= 1e-6


def test_save_load_checks_fingerprints_and_errors_change_nothing(run: LessonRun) -> None:
    results = run.results
    assert results["loaded_identical"] == {".npz": True, ".safetensors": True}
    assert results["load_refused"] == [True, True]
    assert results["kept_after_refused_restore"] is True
    assert results["kept_after_bad_transfer"] is True
