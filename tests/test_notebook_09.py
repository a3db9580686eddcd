"""Lesson 09 (the geometry of weight space): its default run, and 2 epochs, a 7 × 7 grid, seed 1.

Claims the text makes about every run are checked on both runs; claims it makes about the
default run only (it says so) are checked where the run used the default parameters.
"""

from __future__ import annotations

import math

import nbformat
import pytest

pytest.importorskip("torch")
pytest.importorskip("papermill")

from notebook_runner import NOTEBOOKS, LessonRun, default_parameters, lesson_fixture  # noqa: E402

NAME = "09_geometry_of_weight_space.ipynb"
run = lesson_fixture(NAME, SEED=1, EPOCHS=2, GRID=7)


def at_defaults(run: LessonRun) -> bool:
    return run.parameters == default_parameters(NAME)


def test_parameters_reach_the_notebook(run: LessonRun) -> None:
    results, parameters = run.results, run.parameters
    assert [results[key] for key in ("SEED", "EPOCHS", "GRID")] == [
        parameters[key] for key in ("SEED", "EPOCHS", "GRID")
    ]
    assert results["slice_shape"] == [parameters["GRID"]] * 2
    assert results["n_weights"] == 784 * 50 + 50 + 50 * 50 + 50 + 50 * 10 + 10 == 42_310


def test_functional_is_the_model_and_leaves_it_alone(run: LessonRun) -> None:
    assert run.results["functional_matches_forward"] is True
    assert run.results["model_unchanged"] is True
    assert run.results["population_shape"] == [3, 1996, 10]  # 3 vectors, the 1,996 test digits


def test_line_ends_are_the_initial_and_trained_networks(run: LessonRun) -> None:
    results = run.results
    alphas, losses = results["alphas"], results["line_train_loss"]
    assert len(alphas) == 41 and alphas[0] == -0.5 and alphas[-1] == 1.5
    assert results["endpoints_match"] is True
    assert results["line_loss_at_0"] == results["initial_loss"] == losses[alphas.index(0.0)]
    assert results["line_loss_at_1"] == results["trained_loss"] == losses[alphas.index(1.0)]
    # N(0, 0.05²) weights and zero biases: the initial network is near chance, ln 10.
    assert abs(results["initial_loss"] - math.log(10)) < 0.2
    assert results["trained_loss"] < 0.6 * results["initial_loss"]


def test_no_obstacle_on_the_line(run: LessonRun) -> None:
    results = run.results
    fall = results["line_loss_at_0"] - results["line_loss_at_1"]
    assert results["climb"] <= 0.02 * fall  # every run: bumps, if any, are tiny
    assert 0.9 <= results["lowest_alpha"] <= 1.5  # the line's lowest point is near θ₁
    if at_defaults(run):  # the text's claims about the committed run
        assert results["monotone"] is True and results["climb"] == 0
        assert results["lowest_alpha"] > 1  # slightly beyond θ₁: training had not finished
        assert results["middle_share"] > 0.5  # most of the fall between α = 0.2 and 0.8


def test_barriers_same_start_versus_other_start(run: LessonRun) -> None:
    same_loss, same_error = run.results["barrier_same_start"]
    other_loss, other_error = run.results["barrier_other_start"]
    assert min(same_loss, same_error, other_loss, other_error) >= 0  # max ≥ mean of the ends
    assert other_loss > 5 * same_loss and other_error > 10  # tens of points from two starts
    assert same_error < 2  # one start: linearly connected, within the noise
    if at_defaults(run):
        assert same_error < 1  # "a fraction of a percentage point"


def test_filter_normalisation_sees_through_rescaling(run: LessonRun) -> None:
    results = run.results
    means = results["slice_mean_loss"]
    assert results["twin_same_outputs"] is True
    assert results["twin_filter_difference_below_1e-6"] is True
    assert means["θ₁, filter-normalised"] == means["rescaled twin, filter-normalised"]
    assert results["twin_raw_difference"] > 0.1
    assert means["θ₁, unnormalised"] != means["rescaled twin, unnormalised"]
    # At the same length, the unnormalised slice is flatter: its length sits in layer 1.
    assert means["θ₁, unnormalised"] < means["θ₁, filter-normalised"]
    shares = results["direction_first_layer_share"]
    assert abs(shares["raw"] - 39_200 / 42_310) < 0.02 and shares["filter"] < shares["raw"]
    # The centre of the slice is θ₁, evaluated on the same 1,000 training digits.
    assert abs(results["slice_centre_loss"] - results["trained_loss"]) <= 1e-4


def test_soup_and_the_average_across_starts(run: LessonRun) -> None:
    averages = run.results["averages"]
    (loss_a, accuracy_a), (loss_b, _) = averages["A"], averages["B (same start)"]
    loss_soup, accuracy_soup = averages["soup (A + B) / 2"]
    accuracy_c, accuracy_mixed = averages["C (other start)"][1], averages["(A + C) / 2"][1]
    assert accuracy_a == run.results["line_test_accuracy"][run.results["alphas"].index(1.0)]
    assert run.results["soup_beats_mean"] is True and loss_soup < (loss_a + loss_b) / 2
    assert accuracy_mixed < min(accuracy_a, accuracy_c) - 0.1
    if at_defaults(run):
        assert run.results["soup_beats_both"] is True and accuracy_soup > accuracy_a


def test_a_permuted_network_is_the_same_function_elsewhere(run: LessonRun) -> None:
    results = run.results
    assert results["permuted_same_function"] is True
    assert results["permuted_distance"] > results["norm_c"]
    assert results["self_average_accuracy"] < results["averages"]["C (other start)"][1] - 0.1


def test_task_vectors_digit_by_digit(run: LessonRun) -> None:
    results = run.results
    a, b = results["targets"]
    assert a != b and {a, b} <= set(range(10))
    table = results["per_digit"]
    pre = table["pre-trained"]
    fine_a, fine_b = table[f"+τ_{a} (fine-tuned)"], table[f"+τ_{b} (fine-tuned)"]
    negated = table[f"−0.5·τ_{a} (negated)"]
    added = table[f"+0.8·(τ_{a} + τ_{b}) (added)"]
    assert fine_a[a] > pre[a] and fine_b[b] > pre[b]
    assert negated[a] < pre[a]  # negating the task vector lowers that digit's accuracy
    drop_others = sum(pre[d] - negated[d] for d in range(10) if d != a) / 9
    assert pre[a] - negated[a] > drop_others
    assert added[a] > pre[a] and added[b] > pre[b]
    if at_defaults(run):
        assert results["others_kept"] >= 0.95  # the paper's rule for choosing λ holds at 0.5


def test_the_lesson_needs_no_keras() -> None:
    notebook = nbformat.read(NOTEBOOKS / NAME, as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert "keras" not in code and "tensorflow" not in code
