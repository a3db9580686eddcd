"""helpers.plots for lesson 10: value_strips draws every value and refuses what it cannot.

``curves`` (lesson 10's budget curves too), the docstring examples and the import that must
not load matplotlib are checked in tests/test_plots.py with the rest of the module.
"""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from helpers import plots  # noqa: E402


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
