"""helpers.plots: each figure draws what it is given, in one convention, and returns it."""

from __future__ import annotations

import doctest
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # no display in the tests

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

import helpers  # noqa: E402
from helpers import plots, select  # noqa: E402
from helpers.nnet import class_ind, nnet  # noqa: E402


def _images(figure):
    return [ax.images[0] for ax in figure.axes if ax.images]


def test_weight_images_draws_each_unit_column_as_an_image() -> None:
    kernel = np.random.default_rng(1).normal(size=(784, 6)).astype(np.float32)
    figure = plots.weight_images({"kernel": kernel}, units=[4, 0, 5])
    images = _images(figure)
    assert len(images) == 3
    for image, unit in zip(images, [4, 0, 5], strict=True):
        np.testing.assert_array_equal(image.get_array(), kernel[:, unit].reshape(28, 28))
        assert image.get_cmap().name == "RdBu_r"
    assert [ax.get_title() for ax in figure.axes if ax.images] == ["unit 4", "unit 0", "unit 5"]


def test_weight_images_rows_get_symmetric_limits_of_their_own_and_a_colorbar_each() -> None:
    small = np.zeros((784, 3))
    small[10, 1], small[20, 2] = 0.02, -0.05  # the largest |value| drawn is 0.05
    small[30, 0] = 9.0  # in a unit not drawn: it must not set the scale
    large = np.full((784, 3), 0.4)
    figure = plots.weight_images({"small": small, "large": large}, units=[1, 2])
    limits = [image.get_clim() for image in _images(figure)]
    assert limits == [(-0.05, 0.05)] * 2 + [(-0.4, 0.4)] * 2
    colorbars = [ax for ax in figure.axes if not ax.images]
    assert len(colorbars) == 2  # one per row
    labels = [ax.get_ylabel() for ax in figure.axes if ax.images]
    assert labels[0] == "small" and labels[2] == "large"


def test_weight_images_given_limit_is_shared_and_zero_rows_still_draw() -> None:
    kernels = {"zeros": np.zeros((4, 2)), "ones": np.ones((4, 2))}
    figure = plots.weight_images(kernels, units=[0, 1], image_shape=(2, 2), limit=3.0)
    assert {image.get_clim() for image in _images(figure)} == {(-3.0, 3.0)}
    figure = plots.weight_images({"zeros": np.zeros((4, 2))}, units=[0], image_shape=(2, 2))
    assert _images(figure)[0].get_clim() == (-1.0, 1.0)


@pytest.mark.parametrize(
    ("kernels", "units", "limit", "message"),
    [
        ({"k": np.ones((783, 2))}, [0], None, "'k' must be (inputs, units) with 784 inputs"),
        ({"k": np.ones(784)}, [0], None, "got shape (784,)"),
        ({"k": np.ones((784, 2))}, [0, 2], None, "'k' has 2 units, asked for [2]"),
        ({"k": np.ones((784, 2))}, [-1], None, "asked for [-1]"),
        ({"k": np.full((784, 2), np.nan)}, [0], None, "'k' holds NaN"),
        ({"k": np.ones((784, 2))}, [0], 0.0, "limit must be a positive number"),
        ({"k": np.ones((784, 2))}, [0], float("inf"), "limit must be a positive number"),
        ({}, [0], None, "nothing to draw"),
        ({"k": np.ones((784, 2))}, [], None, "nothing to draw"),
    ],
)
def test_weight_images_refuses_what_it_cannot_draw(kernels, units, limit, message) -> None:
    with pytest.raises(ValueError, match="weight_images") as error:
        plots.weight_images(kernels, units=units, limit=limit)
    assert message in str(error.value)


@pytest.mark.parametrize("shape", [(2, 3), (3, 2), (1, 4), (4, 1)])
def test_order_walk_numbers_each_cell_with_its_place_in_the_raveled_vector(shape) -> None:
    array = np.arange(np.prod(shape)).reshape(shape) * 10
    figure = plots.order_walk(array)
    assert len(figure.axes) == 2
    for ax, order in zip(figure.axes, ["C", "F"], strict=True):
        labels = {text.get_text() for text in ax.texts if text.get_text()}
        walked = array.ravel(order=order)
        assert labels == {f"{value}\n[{k}]" for k, value in enumerate(walked)}
        arrows = [text for text in ax.texts if not text.get_text()]
        assert len(arrows) == array.size - 1  # one arrow between each pair of neighbours
        assert ax.get_title().startswith(f'order="{order}"')


@pytest.mark.parametrize(
    ("array", "orders", "message"),
    [
        (np.arange(6), ("C",), "2-D array, got shape (6,)"),
        (np.zeros((0, 3)), ("C",), "non-empty"),
        (np.zeros((2, 2, 2)), ("C",), "got shape (2, 2, 2)"),
        (np.zeros((2, 2)), ("A",), "orders must be among ['C', 'F']"),
        (np.zeros((2, 2)), (), "orders must be among"),
    ],
)
def test_order_walk_refuses_what_it_cannot_draw(array, orders, message) -> None:
    with pytest.raises(ValueError, match="order_walk") as error:
        plots.order_walk(array, orders=orders)
    assert message in str(error.value)


def lenet_like() -> tuple[np.ndarray, helpers.Layout]:
    torch.manual_seed(0)
    return helpers.flatten(nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3)))


def test_histograms_one_panel_per_selected_tensor():
    vector, layout = lenet_like()
    figure = plots.histograms(vector, layout, select(layout, kind="weight"), bins=7)
    assert isinstance(figure, Figure)
    assert [ax.get_title() for ax in figure.axes] == ["0.weight (24)", "2.weight (12)"]
    parts = helpers.views(vector, layout)
    for ax, name in zip(figure.axes, ["0.weight", "2.weight"], strict=True):
        assert len(ax.patches) == 1 and ax.get_yscale() == "log"  # one filled outline
        counts, edges = np.histogram(parts[name], bins=7)
        outline = ax.patches[0].get_xy()
        assert np.isclose(outline[:, 0].min(), edges[0]) and np.isclose(
            outline[:, 0].max(), edges[-1]
        )
        assert outline[:, 1].max() == counts.max()  # the tallest bin, as NumPy counts it


def test_histograms_of_part_of_a_tensor_and_without_a_mask():
    vector, layout = lenet_like()
    mask = np.abs(vector) > np.median(np.abs(vector))
    figure = plots.histograms(vector, layout, mask, log=False, title="kept", bins=5)
    parts, kept = helpers.views(vector, layout), helpers.views(mask, layout)
    shown = [name for name in parts if kept[name].any()]
    assert [ax.get_title() for ax in figure.axes] == [f"{n} ({kept[n].sum()})" for n in shown]
    for ax, name in zip(figure.axes, shown, strict=True):
        counts, _ = np.histogram(parts[name][kept[name]], bins=5)
        assert ax.patches[0].get_xy()[:, 1].max() == counts.max()
    assert figure.axes[0].get_yscale() == "linear" and figure._suptitle.get_text() == "kept"
    assert len(plots.histograms(vector, layout).axes) == 4
    with pytest.raises(ValueError, match="selects no value"):
        plots.histograms(vector, layout, np.zeros(layout.size, dtype=bool))
    with pytest.raises(TypeError, match="expected a boolean array"):
        plots.histograms(vector, layout, vector)


def test_histograms_of_several_vectors_share_their_bins_and_have_a_legend():
    vector, layout = lenet_like()
    figure = plots.histograms({"before": vector, "after": vector * 2}, layout, bins=4)
    assert len(figure.axes) == 4
    for ax in figure.axes:
        before, after = (patch.get_xy()[:, 0] for patch in ax.patches)
        assert before.min() == after.min() and before.max() == after.max()  # common edges
    legend = figure.axes[0].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["before", "after"]
    assert figure.axes[1].get_legend() is None
    assert plots.histograms(vector, layout).axes[0].get_legend() is None


def test_curves_one_labelled_line_per_series_drawn_where_it_was_measured() -> None:
    series = {"ES": ([10, 20, 30], [0.2, 0.4, 0.5]), "SGD": (np.array([6, 12]), [0.7, 0.9])}
    ax = plots.curves(series, "passes", "accuracy", title="budget", reference=("chance", 0.1))
    assert isinstance(ax, Axes)
    es, sgd, chance = ax.get_lines()
    np.testing.assert_array_equal(es.get_xdata(), [10, 20, 30])
    np.testing.assert_array_equal(es.get_ydata(), [0.2, 0.4, 0.5])
    np.testing.assert_array_equal(sgd.get_xdata(), [6, 12])
    assert (chance.get_label(), list(chance.get_ydata())) == ("chance", [0.1, 0.1])
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["ES", "SGD", "chance"]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("passes", "accuracy", "budget")
    assert (ax.get_xscale(), ax.get_yscale()) == ("linear", "linear")
    assert es.get_marker() == "." and plots.curves({"long": (range(41), range(41))}).get_lines()[
        0
    ].get_marker() in (None, "None")


def test_curves_draw_into_a_given_axes_with_log_scales() -> None:
    _, (left, right) = plt.subplots(1, 2)
    ax = plots.curves({"a": ([1, 10, 100], [3.0, 2.0, 1.0])}, log_x=True, log_y=True, ax=right)
    assert ax is right and (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert not left.get_lines()


@pytest.mark.parametrize(
    ("series", "options", "message"),
    [
        ({}, {}, "no series to draw"),
        ({"a": ([1, 2], [1.0])}, {}, "series 'a': x and y must have the same length, got 2 and 1"),
        (
            {"a": ([], [])},
            {},
            r"series 'a': x: expected a non-empty 1-D sequence, got shape \(0,\)",
        ),
        ({"a": ([1, 2], [1.0, np.nan])}, {}, "series 'a': y: expected finite numbers, got nan"),
        ({"a": ([0, 1], [1.0, 2.0])}, {"log_x": True}, "series 'a': x: a log axis needs positive"),
        ({"a": ([1, 2], [1.0, -2.0])}, {"log_y": True}, "series 'a': y: a log axis needs positive"),
        (
            {"a": ([[1, 2]], [[1.0, 2.0]])},
            {},
            r"expected a non-empty 1-D sequence, got shape \(1, 2\)",
        ),
        ({"a": [1, 2, 3]}, {}, r"series 'a': expected a pair \(x, y\)"),
        ({"a": ([1], [1.0])}, {"reference": ("chance", float("inf"))}, "reference 'chance'"),
        ({"a": ([1], [1.0])}, {"reference": ("zero", 0.0), "log_y": True}, "reference 'zero'"),
    ],
)
def test_curves_refuse_what_they_cannot_draw(series: dict, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plots.curves(series, "x", "y", **options)
    assert plt.get_fignums() == []  # refused before any figure was made


def test_sparsity_curve_log_axis_from_dense_to_sparse_in_per_cent():
    remaining = [1.0, 0.513, 0.211, 0.07, 0.036, 0.018]
    ax = plots.sparsity_curve(
        {"global": (remaining, [0.97] * 6), "random": (remaining[:3], [0.97, 0.5, 0.1])}
    )
    assert ax.get_xscale() == "log"
    left, right = ax.get_xlim()
    assert left > right  # inverted: 100 % on the left
    labels = [label.get_text() for label in ax.get_xticklabels()]
    assert labels == ["100%", "51.3%", "21.1%", "7%", "3.6%", "1.8%"]
    assert len(ax.get_lines()) == 2 and ax.get_ylabel() == "test accuracy"
    ax = plots.sparsity_curve(
        {"a": (remaining, [0.5] * 6)}, ticks=[1.0, 0.1], reference=("unpruned", 0.9)
    )
    assert list(ax.get_xticks()) == [1.0, 0.1]
    assert [line.get_label() for line in ax.get_lines()] == ["a", "unpruned"]


def test_plots_docstring_examples_run() -> None:
    result = doctest.testmod(plots)
    assert result.attempted >= 6 and result.failed == 0


def test_plots_import_does_not_load_matplotlib() -> None:
    code = "import sys, helpers, helpers.plots; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# Lessons 04 and 06: nnet networks, gate blocks, layout strips.


def small_fit(skip: bool = False):
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(30, 2))
    y = (x[:, 0] > x[:, 1]).astype(int)
    return nnet(x, class_ind(y), size=3, skip=skip, maxit=20, trace=False, seed=5)


@pytest.mark.parametrize("skip", [False, True])
def test_draw_nnet_one_edge_per_weight_labelled_with_its_index(skip: bool) -> None:
    fit = small_fit(skip)
    ax = plots.draw_nnet(fit)
    assert len(ax.lines) == fit.wts.size
    labels = [text.get_text() for text in ax.texts]
    assert labels[: fit.wts.size] == [str(k) for k in range(fit.wts.size)]
    # node labels: b i1 i2, b h1..h3, o1 o2 (biases once per receiving layer)
    nodes = ["b", "i1", "i2", "b", "h1", "h2", "h3", "o1", "o2"]
    assert sorted(labels[fit.wts.size :]) == sorted(nodes)


def test_draw_nnet_edges_red_positive_blue_negative_on_symmetric_limits() -> None:
    fit = small_fit()
    ax = plots.draw_nnet(fit)
    for line, weight in zip(ax.lines, fit.wts, strict=True):
        red, _, blue, _ = line.get_color()
        if abs(weight) > 0.1:
            assert (red > blue) == (weight > 0), weight
    (colorbar_ax,) = [a for a in ax.figure.axes if a is not ax]
    low, high = colorbar_ax.get_ylim()
    assert low == pytest.approx(-high) and high == pytest.approx(np.abs(fit.wts).max())
    assert "red > 0" in colorbar_ax.get_ylabel()


def test_draw_nnet_edges_join_the_named_nodes() -> None:
    fit = small_fit()
    ax = plots.draw_nnet(fit)
    name = fit.weight_names().index("h2->o1")
    (x0, x1), _ = ax.lines[name].get_data()
    assert (x0, x1) == (1, 2)  # from the hidden column to the output column
    name = fit.weight_names().index("i1->h3")
    assert tuple(ax.lines[name].get_xdata()) == (0, 1)


def test_draw_gate_blocks_widths_order_and_colours() -> None:
    strips = {
        "Keras LSTM": "ifco",
        "PyTorch LSTM": "ifgo",
        "Keras GRU": "zrh",
        "PyTorch GRU": "rzn",
    }
    ax = plots.draw_gate_blocks(strips, hidden=5)
    bars = ax.patches
    assert len(bars) == 4 + 4 + 3 + 3
    assert [bar.get_width() for bar in bars] == [5] * 14
    assert [bar.get_x() for bar in bars[8:11]] == [0, 5, 10]  # z, r, h side by side
    colours = [matplotlib.colors.to_hex(bar.get_facecolor()) for bar in bars]
    assert colours[2] == colours[6]  # Keras' c is PyTorch's g: the same candidate colour
    assert colours[8] == colours[12] and colours[9] == colours[11]  # z and r swap places
    assert [label.get_text() for label in ax.get_yticklabels()] == list(strips)


def test_layer_of_keras_and_torch_names() -> None:
    assert plots.layer_of("mixed/conv/kernel") == "conv"
    assert plots.layer_of("mixed/lstm/lstm_cell/recurrent_kernel") == "lstm"
    assert plots.layer_of("bn/moving_variance") == "bn"
    assert plots.layer_of("lstm.weight_ih_l0") == "lstm"
    assert plots.layer_of("weight") == "weight"


def test_draw_layout_strips_blocks_follow_the_layout() -> None:
    weights = {
        "conv.weight": np.zeros((2, 1, 3, 3), np.float32),
        "conv.bias": np.zeros(2, np.float32),
        "head.weight": np.zeros((5, 40), np.float32),
    }
    _, layout = helpers.flatten(weights)
    keras_like = helpers.Layout.from_specs(
        [("m/bn/gamma", (2,), "float32", True), ("m/bn/moving_mean", (2,), "float32", False)],
        framework="keras",
        include="all",
    )
    figure = plots.draw_layout_strips({"A": layout, "B": keras_like}, zoom=25)
    whole, start = figure.axes[0], figure.axes[1]
    assert [(bar.get_x(), bar.get_width()) for bar in whole.patches] == [
        (0, 18),
        (18, 2),
        (20, 200),
    ]
    assert start.get_xlim() == (0, 25) and whole.get_xlim() == (0, 220)
    hatches = [bar.get_hatch() for bar in figure.axes[2].patches]
    assert hatches == [None, "////"]  # the moving mean is not trainable
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == ["conv", "head", "bn", "not trainable"]
    assert "mean" in [text.get_text() for text in figure.axes[3].texts]  # short name
