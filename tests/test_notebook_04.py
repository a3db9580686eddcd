"""Lesson 04: its default run (2-5-2, 50 iterations) and a 2-3-2 network, 20 iterations, seed 1."""

from notebook_runner import LessonRun, lesson_fixture

N_IN, N_OUT = 2, 2  # two inputs; class_ind gives two indicator columns

run = lesson_fixture("04_nnet_single_hidden_layer.ipynb", SEED=1, SIZE=3, MAXIT=20)


def test_ran_with_the_parameters_passed(run: LessonRun) -> None:
    size = run.parameters["SIZE"]
    assert (
        run.results["seed"],
        run.results["size"],
        run.results["maxit"],
        run.results["decay"],
    ) == (run.parameters["SEED"], size, run.parameters["MAXIT"], run.parameters["DECAY"])
    assert run.results["n"] == [N_IN, size, N_OUT]


def test_weight_count_and_names(run: LessonRun) -> None:
    size = run.parameters["SIZE"]
    n_weights = size * (N_IN + 1) + N_OUT * (size + 1)
    assert run.results["n_weights"] == run.results["n_weights_formula"] == n_weights
    assert run.results["n_names"] == n_weights
    assert run.results["names_head"] == ["b->h1", "i1->h1", "i2->h1", "b->h2"]
    assert run.results["names_tail"] == [f"h{unit}->o2" for unit in range(size - 2, size + 1)]


def test_flatten_is_wts_with_one_entry_per_unit(run: LessonRun) -> None:
    size = run.parameters["SIZE"]
    assert run.results["flatten_equals_wts"] is True
    assert run.results["order_f_equals_c"] is True
    assert run.results["layout_names"] == [f"h{u}" for u in range(1, size + 1)] + ["o1", "o2"]
    assert run.results["layout_sizes"] == [N_IN + 1] * size + [size + 1] * N_OUT


def test_fit_stopped_with_a_finite_criterion(run: LessonRun) -> None:
    # 100 points, two outputs: the squared error starts near 50 and can only fall.
    assert 0 < run.results["final_value"] < 100
    assert run.results["convergence"] in (0, 1)


def test_the_fit_learns_the_rule_with_moderate_weights(run: LessonRun) -> None:
    # Labels x1 > x2: the fit learns them, and weight decay keeps every unit short of
    # nnet's +-15 cut-off, where its logistic returns exactly 0 or 1.
    assert run.parameters["DECAY"] > 0
    assert run.results["train_accuracy"] > 0.9
    assert 0 < run.results["max_abs_weight"] < 15
    assert run.results["n_clamped"] == 0
    # the strongest hidden unit weighs i1 and i2 about equally, with opposite signs
    assert -1.5 < run.results["strongest_input_ratio"] < -1 / 1.5


def test_restore_updates_predict_but_not_fitted_values(run: LessonRun) -> None:
    assert run.results["restore_moves_predict"] is True
    assert run.results["restore_keeps_fitted_values"] is True


def test_sklearn_has_one_output_for_two_classes(run: LessonRun) -> None:
    size = run.parameters["SIZE"]
    assert run.results["sklearn_n_weights"] == size * (N_IN + 1) + 1 * (size + 1)
    assert run.results["sklearn_shapes"] == [[N_IN, size], [size, 1], [size], [1]]
    assert run.results["sklearn_to_nnet_equal"] is True


def test_torch_and_nnet_exchange_weights_both_ways(run: LessonRun) -> None:
    assert run.results["torch_n_weights"] == run.results["n_weights"]
    assert run.results["torch_layout_names"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert run.results["torch_to_nnet_equal"] is True
    assert run.results["nnet_to_torch_equal"] is True


def test_variant_counts(run: LessonRun) -> None:
    assert run.results["softmax_n_weights"] == run.results["n_weights"]
    assert run.results["skip_n_weights"] == run.results["n_weights"] + N_OUT * N_IN
