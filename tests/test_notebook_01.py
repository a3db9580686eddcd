"""Lesson 01: its committed default run (TensorFlow, 50 epochs) and one epoch on PyTorch."""

from __future__ import annotations

import math

from notebook_runner import LessonRun, lesson_fixture

run = lesson_fixture("01_mnist_mlp_2016_in_keras3.ipynb", EPOCHS=1, SEED=7, KERAS_BACKEND="torch")

STEPS_PER_EPOCH = math.ceil(7_203 / 300)  # 7,203 fitted digits in batches of 300


def test_ran_with_the_parameters_passed(run: LessonRun) -> None:
    assert run.results["backend"] == run.parameters["KERAS_BACKEND"]
    assert run.results["epochs"] == run.results["history_length"] == run.parameters["EPOCHS"]


def test_counts_and_shapes_on_every_backend(run: LessonRun) -> None:
    assert run.results["n_weights"] == run.results["flattened_size"] == 42_310
    assert run.results["layer_shapes"] == [[784, 50], [50], [50, 50], [50], [50, 10], [10]]


def test_validation_split_is_keras_floor_not_a_rounded_up_ninety_percent(run: LessonRun) -> None:
    # 8,004 bundled training digits: floor(8004 * 0.9) = 7,203; ceil would give 7,204.
    assert run.results["fitted_rows"] == 7_203
    assert run.results["validation_rows"] == 801


def test_decay_follows_the_2016_rule_for_the_steps_taken(run: LessonRun) -> None:
    steps = run.parameters["EPOCHS"] * STEPS_PER_EPOCH
    expected = 1 - 1 / (1 + 1e-7 * steps)
    assert math.isclose(run.results["decay_lowers_rate_by"], expected, rel_tol=1e-2)


def test_both_optimisers_start_from_the_same_weights(run: LessonRun) -> None:
    assert run.results["same_initial_weights"] is True


def test_blank_pixels_keep_their_initial_weights(run: LessonRun) -> None:
    # every blank pixel keeps its initial weights; other rows almost all move
    assert 80 <= run.results["blank_pixels"] <= run.results["unchanged_kernel_rows"] <= 784
    if run.parameters["EPOCHS"] >= 50:
        assert run.results["unchanged_kernel_rows"] == run.results["blank_pixels"]


def test_adam_learns_far_more_than_the_2016_sgd(run: LessonRun) -> None:
    sgd, adam = run.results["sgd_test_accuracy"], run.results["adam_test_accuracy"]
    assert adam > 0.6 and adam > sgd + 0.1
    assert 1 <= run.results["adam_passes_sgd_at_epoch"] <= min(5, run.parameters["EPOCHS"])
    if run.parameters["EPOCHS"] == 1:
        assert sgd < 0.6  # one epoch of the 2016 SGD barely learns


def test_sgd_and_adam_move_rarely_inked_pixels_differently(run: LessonRun) -> None:
    # mean |change| at pixels inked in <5% of digits over pixels inked in >30%
    ratio = run.results["change_ratio_rare_to_busy"]
    assert ratio["SGD"] < 0.2  # SGD barely moves the weights of rarely inked pixels
    assert ratio["Adam"] > 5 * ratio["SGD"]  # Adam's per-weight steps even that out
    if run.parameters["EPOCHS"] >= 50:
        assert ratio["Adam"] > 1  # ... and after 50 epochs moves them more than busy ones
