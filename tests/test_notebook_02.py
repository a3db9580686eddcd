"""Lesson 02: its committed default run and one epoch of Keras on PyTorch, another seed."""

from math import sqrt

from notebook_runner import LessonRun, lesson_fixture

# Keras' default Dense initializer is Glorot uniform: |w| <= sqrt(6 / (fan_in + fan_out)).
FIRST_KERNEL_LIMIT = sqrt(6 / (784 + 32))

run = lesson_fixture(
    "02_keras_get_weights_and_order.ipynb", EPOCHS=1, KERAS_BACKEND="torch", SEED=7
)


def test_ran_with_the_parameters_passed(run: LessonRun) -> None:
    assert run.results["backend"] == run.parameters["KERAS_BACKEND"]
    assert run.results["epochs"] == run.parameters["EPOCHS"]
    assert run.results["seed"] == run.parameters["SEED"]


def test_counts_and_shapes(run: LessonRun) -> None:
    assert run.results["n_weights"] == 784 * 32 + 32 + 32 * 10 + 10 == 25_450
    assert run.results["shapes"] == [[784, 32], [32], [32, 10], [10]]
    assert run.results["flatten_equals_by_hand"] is True


def test_tiny_array_walks(run: LessonRun) -> None:
    assert run.results["tiny_C"] == [0, 1, 2, 3, 4, 5]
    assert run.results["tiny_F"] == [0, 3, 1, 4, 2, 5]  # what R's as.vector prints


def test_f_order_is_r_order_and_differs_from_c(run: LessonRun) -> None:
    assert run.results["f_equals_r_style"] is True
    assert run.results["c_and_f_differ"] is True
    assert run.results["fingerprints_c_f_equal"] is True
    # The biases (32 + 10) and each kernel's first and last entry keep their place.
    assert run.results["n_in_place"] == 32 + 10 + 2 * 2


def test_heads_come_from_row_and_column_of_first_kernel(run: LessonRun) -> None:
    head_c, head_f = run.results["head_C"], run.results["head_F"]
    assert head_c == run.results["kernel_row0_head"]  # Python walks along row 0
    assert head_f == run.results["kernel_col0_head"]  # R's head() walks down column 0
    assert head_c[0] == head_f[0]  # kernel[0, 0] comes first in both walks
    assert all(c != f for c, f in zip(head_c[1:], head_f[1:], strict=True))
    assert all(abs(w) <= FIRST_KERNEL_LIMIT for w in head_c + head_f)
    assert len(set(head_c + head_f)) == 11  # real random values, not a constant


def test_training_reaches_a_sane_accuracy(run: LessonRun) -> None:
    assert 0.5 < run.results["accuracy"] <= 1.0


def test_wrong_order_is_accepted_and_breaks_the_model(run: LessonRun) -> None:
    assert run.results["wrong_order_accepted"] is True
    assert run.results["wrong_order_accuracy"] < run.results["accuracy"] - 0.3
    assert run.results["wrong_order_changed_fraction"] > 0.3


def test_matching_layout_restores_exactly_and_checks_refuse(run: LessonRun) -> None:
    assert run.results["restore_bit_identical"] is True
    assert run.results["json_round_trip"] is True
    assert run.results["json_format_version"] == 2  # the version with a checksum
    assert run.results["edited_order_refused"] is True  # the checksum catches an edited order
    assert run.results["wrong_length_refused"] is True
    assert run.results["other_architecture_refused"] is True
