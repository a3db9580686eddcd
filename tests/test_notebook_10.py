"""Lesson 10 (optimising the vector): its default run, and a cheap one with another seed, a
smaller and shorter evolution strategy, and shorter CMA-ES and genetic-algorithm runs."""

from __future__ import annotations

import math

from notebook_runner import LessonRun, lesson_fixture

run = lesson_fixture(
    "10_optimising_the_vector.ipynb",
    SEED=1,
    GENERATIONS=80,
    POPULATION=30,
    CMA_EVALUATIONS=800,
    GA_GENERATIONS=20,
)

N_WEIGHTS = 196 * 32 + 32 + 32 * 10 + 10  # the 196-32-10 MLP on 14×14 digits
CHANCE = 0.1


def test_parameters_reach_the_notebook(run: LessonRun) -> None:
    p, r = run.parameters, run.results
    assert (r["seed"], r["generations"], r["population"]) == (
        p["SEED"],
        p["GENERATIONS"],
        p["POPULATION"],
    )
    assert r["es_curve"][-1][0] == p["GENERATIONS"]
    assert r["es_budget_passes"] == p["GENERATIONS"] * p["POPULATION"] * p["BATCH"]
    # SGD's step counts as 3 forward passes per digit; it gets a tenth of ES's budget.
    assert r["sgd_steps"] == r["es_budget_passes"] // (3 * p["BATCH"]) // 10
    assert r["sgd_budget_passes"] == r["sgd_steps"] * 3 * p["BATCH"]
    # pycma stops at the first generation (13 candidates for 21 weights) past its budget.
    assert p["CMA_EVALUATIONS"] <= r["cma_evaluations"] < p["CMA_EVALUATIONS"] + 13
    assert r["ga_evaluations"] == p["GA_POPULATION"] * (p["GA_GENERATIONS"] + 1)


def test_the_gradient_is_one_vector_either_way_and_sgd_is_a_subtraction(run: LessonRun) -> None:
    assert run.results["n_weights"] == N_WEIGHTS
    assert run.results["gradient_max_difference"] < 1e-7  # torch.func.grad vs .grad
    assert run.results["sgd_step_max_difference"] < 1e-7  # v - lr * g vs torch.optim.SGD


def test_es_learns_far_above_chance_and_its_accuracy_rises(run: LessonRun) -> None:
    p = run.parameters
    generations, accuracy = zip(*run.results["es_curve"], strict=True)
    assert accuracy[0] < 2 * CHANCE  # a fresh network guesses
    assert run.results["es_final_accuracy"] == accuracy[-1] > 5 * CHANCE
    if p["POPULATION"] >= 100 and p["GENERATIONS"] >= 250:
        assert accuracy[-1] > 0.8  # the committed run: a wide margin over chance
    third = len(accuracy) // 3
    assert sum(accuracy[-third:]) / third > sum(accuracy[:third]) / third + 0.1
    assert generations == tuple(sorted(generations))


def test_es_estimate_points_towards_the_true_gradient(run: LessonRun) -> None:
    random_direction = 1 / math.sqrt(N_WEIGHTS)  # the spread of a random direction's cosine
    assert run.results["cosine_mean"] > 3 * random_direction
    assert run.results["cosine_min"] > 0  # every single estimate leans the right way
    assert run.results["cosine_mean"] < 0.5  # ...but none is close to the gradient itself


def test_sgd_with_a_tenth_of_the_budget_is_ahead_of_es(run: LessonRun) -> None:
    assert run.results["budgets_compared"] >= 5
    assert run.results["sgd_ahead_at_every_budget"] is True
    assert run.results["sgd_final_accuracy"] > run.results["es_final_accuracy"]


def test_cma_es_reaches_bfgs_within_a_stated_factor(run: LessonRun) -> None:
    r = run.results
    assert r["nnet_n_weights"] == 5 * (2 + 1) + 1 * (5 + 1) == 21
    assert r["vmmin_is_nnet"] is True  # the counted BFGS run is nnet's own fit
    assert r["bfgs_value_calls"] > r["bfgs_gradient_calls"] > 0
    factor = 1.05 if run.parameters["CMA_EVALUATIONS"] >= 2000 else 2.0
    assert r["cma_ratio"] < factor
    assert math.isclose(r["cma_value"], r["cma_ratio"] * r["bfgs_value"], rel_tol=1e-3)
    assert r["cma_evaluations"] > r["bfgs_value_calls"] + 3 * r["bfgs_gradient_calls"]


def test_the_genetic_algorithm_improves_its_best(run: LessonRun) -> None:
    assert run.results["ga_last_best"] < 0.5 * run.results["ga_first_best"]


def test_crossover_of_unaligned_networks_is_weak(run: LessonRun) -> None:
    r = run.results
    medians, parent = r["crossover_medians"], r["parent_value"]
    assert r["twin_same_function"] is True
    assert medians["itself"] == parent  # a network crossed with itself is itself
    assert medians["its renumbered twin"] > 3 * parent  # the same function, broken children
    assert medians["another fit"] > parent
    assert medians["another fit, aligned"] < medians["another fit"]
