"""helpers.plots, the figures of lesson 10: budget_curves and value_strips (lines, points,
references, log axes) and their refusals. Each function's docstring example runs too."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from helpers import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_docstring_examples_run() -> None:
    assert doctest.testmod(plots).failed == 0


def test_budget_curves_draws_each_run_where_it_was_measured() -> None:
    runs = {"ES": ([10, 20, 30], [0.2, 0.4, 0.5]), "SGD": (np.array([6, 12]), [0.7, 0.9])}
    ax = plots.budget_curves(runs, "passes", "accuracy", reference=("chance", 0.1))
    es, sgd, chance = ax.get_lines()
    np.testing.assert_array_equal(es.get_xdata(), [10, 20, 30])
    np.testing.assert_array_equal(es.get_ydata(), [0.2, 0.4, 0.5])
    np.testing.assert_array_equal(sgd.get_xdata(), [6, 12])
    assert (chance.get_label(), list(chance.get_ydata())) == ("chance", [0.1, 0.1])
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["ES", "SGD", "chance"]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_xscale()) == ("passes", "accuracy", "linear")


def test_budget_curves_draws_on_given_axes_with_log_scales() -> None:
    _, given = plt.subplots()
    ax = plots.budget_curves(
        {"a": ([1, 10, 100], [3.0, 2.0, 1.0])}, "x", "y", log_x=True, log_y=True, ax=given
    )
    assert ax is given and (ax.get_xscale(), ax.get_yscale()) == ("log", "log")


@pytest.mark.parametrize(
    ("runs", "options", "message"),
    [
        ({}, {}, "no runs to draw"),
        (
            {"a": ([1, 2], [1.0])},
            {},
            "run 'a': budget and values must have the same length, got 2 and 1",
        ),
        (
            {"a": ([], [])},
            {},
            r"run 'a': budget: expected a non-empty 1-D sequence, got shape \(0,\)",
        ),
        ({"a": ([1, 2], [1.0, np.nan])}, {}, "run 'a': values: expected finite numbers, got nan"),
        (
            {"a": ([0, 1], [1.0, 2.0])},
            {"log_x": True},
            "run 'a': budget: a log axis needs positive",
        ),
        (
            {"a": ([1, 2], [1.0, -2.0])},
            {"log_y": True},
            "run 'a': values: a log axis needs positive",
        ),
        (
            {"a": ([[1, 2]], [[1.0, 2.0]])},
            {},
            r"expected a non-empty 1-D sequence, got shape \(1, 2\)",
        ),
        ({"a": [1, 2, 3]}, {}, "run 'a': expected a pair"),
        ({"a": ([1], [1.0])}, {"reference": ("chance", float("inf"))}, "reference 'chance'"),
        ({"a": ([1], [1.0])}, {"reference": ("zero", 0.0), "log_y": True}, "reference 'zero'"),
    ],
)
def test_budget_curves_refuses_what_it_cannot_draw(runs: dict, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plots.budget_curves(runs, "x", "y", **options)
    assert plt.get_fignums() == []  # refused before any figure was made


def test_value_strips_draws_every_value_and_each_median() -> None:
    groups = {"aligned": [1.0, 2.0, 9.0], "unrelated": [5.0, 6.0, 7.0, 100.0]}
    ax = plots.value_strips(groups, "criterion", reference=("parents", 1.0), log_y=True)
    first, second = ax.collections[0], ax.collections[2]  # points, median bar, points, bar
    np.testing.assert_array_equal(first.get_offsets()[:, 1], [1.0, 2.0, 9.0])
    assert np.all(np.abs(first.get_offsets()[:, 0] - 0) <= 0.25)
    assert np.all(np.abs(second.get_offsets()[:, 0] - 1) <= 0.25)
    medians = [bar.get_segments()[0][0][1] for bar in ax.collections[1::2]]
    assert medians == [2.0, 6.5]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["aligned", "unrelated"]
    assert ax.get_lines()[0].get_label() == "parents" and ax.get_yscale() == "log"


def test_value_strips_is_the_same_figure_every_time() -> None:
    groups = {"a": np.arange(1.0, 50.0)}
    first = plots.value_strips(groups, "v").collections[0].get_offsets()
    again = plots.value_strips(groups, "v").collections[0].get_offsets()
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize(
    ("groups", "options", "message"),
    [
        ({}, {}, "no groups to draw"),
        ({"a": []}, {}, "group 'a': expected a non-empty 1-D sequence"),
        ({"a": [1.0, np.inf]}, {}, "group 'a': expected finite numbers, got inf"),
        ({"a": [1.0, 0.0]}, {"log_y": True}, "group 'a': a log axis needs positive numbers, got 0"),
        ({"a": [1.0]}, {"reference": ("p", None)}, "reference 'p': expected a finite number"),
    ],
)
def test_value_strips_refuses_what_it_cannot_draw(
    groups: dict, options: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plots.value_strips(groups, "v", **options)
    assert plt.get_fignums() == []


def test_importing_helpers_does_not_import_matplotlib() -> None:
    import subprocess
    import sys

    code = "import sys, helpers, helpers.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
