"""helpers.plots for lesson 09: along_line, landscapes and digit_table draw what they are given.

Their docstring examples, and the import that must not load matplotlib, are checked in
tests/test_plots.py with the rest of the module.
"""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from helpers import plots  # noqa: E402


def test_along_line_draws_each_series_and_marks_the_ends() -> None:
    alphas = np.linspace(-0.5, 1.5, 9)
    series = {"train": alphas**2, "test": alphas**2 + 0.1}
    ax = plots.along_line(alphas, series, ylabel="loss")
    curves = [line for line in ax.get_lines() if line.get_label() in series]
    assert [line.get_label() for line in curves] == ["train", "test"]
    np.testing.assert_allclose(curves[1].get_ydata(), series["test"])
    np.testing.assert_allclose(curves[0].get_xdata(), alphas)
    marks = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert sorted(float(line.get_xdata()[0]) for line in marks) == [0.0, 1.0]
    assert [text.get_text() for text in ax.texts] == ["θ₀", "θ₁"]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["train", "test"]


def test_along_line_takes_its_marks_and_an_existing_axes() -> None:
    _, ax = plt.subplots()
    returned = plots.along_line([0, 1, 2], {"y": [1, 2, 3]}, marks={2: "end"}, ax=ax)
    assert returned is ax and [text.get_text() for text in ax.texts] == ["end"]


@pytest.mark.parametrize(
    ("alphas", "series", "message"),
    [
        ([0, 1], {"loss": [1.0, 2.0, 3.0]}, "'loss': expected 2 values, got 3"),
        ([0, 1], {"loss": [1.0, np.nan]}, "'loss': expected finite numbers, got nan"),
        ([0, 1], {}, "series is empty"),
        ([[0, 1]], {"loss": [1.0, 2.0]}, "'alphas': expected a non-empty 1-D"),
    ],
)
def test_along_line_refuses_what_it_cannot_draw(alphas, series, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        plots.along_line(alphas, series)


def _bowl(size: int = 5, steepness: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    axis = np.linspace(-1, 1, size)
    return axis, 0.1 + steepness * (axis[:, None] ** 2 + 2 * axis[None, :] ** 2)


def test_landscapes_share_one_scale_and_one_colorbar() -> None:
    axis, bowl = _bowl()
    figure = plots.landscapes(axis, {"flat": bowl, "steep": 0.1 + 3 * (bowl - 0.1)}, levels=8)
    panels, colorbar = figure.axes[:2], figure.axes[2]
    assert len(figure.axes) == 3 and [ax.get_title() for ax in panels] == ["flat", "steep"]
    filled = [ax.collections[0] for ax in panels]
    np.testing.assert_allclose(filled[0].levels, filled[1].levels)  # one set of levels
    levels = filled[0].levels
    assert len(levels) == 8 and levels[0] == pytest.approx(0.1)
    assert levels[-1] == pytest.approx(float((0.1 + 3 * (bowl - 0.1)).max()))
    np.testing.assert_allclose(np.diff(np.log(levels)), np.log(levels[1] / levels[0]))  # log
    assert "log scale" in colorbar.get_ylabel()
    star = [line for line in panels[0].get_lines() if line.get_marker() == "*"]
    assert len(star) == 1 and list(star[0].get_xydata()[0]) == [0, 0]


def test_landscapes_orient_the_first_index_along_x() -> None:
    axis = np.linspace(-1, 1, 3)
    grid = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]])  # grows with index 0
    figure = plots.landscapes(axis, {"x": grid})
    lines = figure.axes[0].collections[1]  # the contour lines over the filled contours
    vertices = [path.vertices for path in lines.get_paths() if len(path.vertices)]
    assert vertices
    for points in vertices:  # each level is a vertical line: x constant, y across the panel
        assert np.ptp(points[:, 0]) < 1e-9 and np.ptp(points[:, 1]) == pytest.approx(2.0)


def test_landscapes_with_values_at_or_below_zero_use_a_linear_scale() -> None:
    axis, bowl = _bowl()
    figure = plots.landscapes(axis, {"shifted": bowl - 1.0})
    assert "linear scale" in figure.axes[-1].get_ylabel()


def test_landscapes_with_more_panels_than_columns_hide_the_spare_axes() -> None:
    axis, bowl = _bowl()
    figure = plots.landscapes(axis, {str(k): bowl * (k + 1) for k in range(3)}, columns=2)
    visible = [ax for ax in figure.axes if ax.axison]
    assert len(visible) == 3 + 1  # three panels and the colorbar


@pytest.mark.parametrize(
    ("panels", "message"),
    [
        ({"small": np.ones((4, 4))}, "panel 'small': expected a (5, 5) grid, got (4, 4)"),
        ({"nan": np.full((5, 5), np.nan)}, "panel 'nan': holds NaN"),
        ({}, "panels is empty"),
    ],
)
def test_landscapes_refuse_what_they_cannot_draw(panels, message) -> None:
    axis, _ = _bowl()
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plots.landscapes(axis, panels)


def test_digit_table_colours_the_change_from_the_baseline() -> None:
    accuracies = {"before": [0.9, 0.8, 0.5], "after": [0.95, 0.7, 0.5]}
    ax = plots.digit_table(accuracies, baseline="before")
    assert [text.get_text() for text in ax.texts] == [
        "90.0",
        "95.0",
        "80.0",
        "70.0",
        "50.0",
        "50.0",
    ]
    image = ax.images[0]
    change = np.asarray(image.get_array())
    np.testing.assert_allclose(change, [[0, 5], [0, -10], [0, 0]], atol=1e-9)
    assert image.get_cmap().name == "RdBu_r"
    assert image.get_clim() == pytest.approx((-10, 10))  # symmetric about zero
    better, worse, same = (image.to_rgba(value) for value in (5.0, -10.0, 0.0))
    assert better[0] > better[2] and worse[2] > worse[0]  # red better, blue worse
    assert min(same[:3]) > 0.9  # unchanged: (nearly) white
    assert [label.get_text() for label in ax.get_xticklabels()] == ["before", "after"]
    assert [label.get_text() for label in ax.get_yticklabels()] == ["0", "1", "2"]


def test_digit_table_row_labels_and_an_unchanged_table() -> None:
    ax = plots.digit_table({"a": [0.5, 0.5]}, baseline="a", row_labels=["2", "7"])
    assert [label.get_text() for label in ax.get_yticklabels()] == ["2", "7"]
    assert ax.images[0].get_clim() == (-1.0, 1.0)  # nothing changed: a ±1 scale, all white


@pytest.mark.parametrize(
    ("accuracies", "baseline", "message"),
    [
        ({"a": [0.5, 0.6]}, "b", "baseline 'b' is not a column"),
        ({"a": [0.5, 0.6], "b": [0.5]}, "a", "'b': expected 2 values, got 1"),
        ({"a": [50.0, 60.0]}, "a", "fractions in"),
        ({"a": [0.5, np.inf]}, "a", "'a': expected finite numbers, got inf"),
    ],
)
def test_digit_table_refuses_what_it_cannot_draw(accuracies, baseline, message) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        plots.digit_table(accuracies, baseline=baseline)


def test_digit_table_refuses_row_labels_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="1 row labels for 2 rows"):
        plots.digit_table({"a": [0.5, 0.6]}, baseline="a", row_labels=["0"])
