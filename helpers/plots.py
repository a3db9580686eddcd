"""Figures the lessons share, so that a notebook cell shows the idea rather than the plotting.

One colour convention throughout: signed values use the diverging map ``RdBu_r`` (red =
positive, blue = negative, white = zero) with limits symmetric about zero, stated in a
colorbar. Values with no sign (a loss) use the sequential ``viridis``. matplotlib is imported
inside each function, so ``import helpers`` stays light. A function that fills one panel takes
an optional ``ax`` and returns it; one that draws several panels returns its Figure.
Lines and points (runs, groups) use matplotlib's default colour cycle; a reference level
(chance, another method's minimum) is a dashed grey line named in the legend.

- ``weight_images(kernels)``: first-layer kernels as 28×28 images, one row per kernel
- ``order_walk(array)``: how a 2-D array is read into a vector, in C and F order
- ``draw_nnet(fit)``: an ``nnet`` network, each edge labelled with its index in ``fit.wts``
- ``draw_gate_blocks(strips, hidden)``: the gate blocks along a recurrent kernel's gate axis
- ``draw_layout_strips(layouts, zoom)``: vectors as strips of tensors, coloured by layer
- ``layer_of(name)``: the layer a tensor name belongs to (the strips' colour groups)
- ``along_line(alphas, series)``: values along a line through weight space, its ends marked
- ``landscapes(axis_values, panels)``: 2-D loss slices as contour maps on one shared scale
- ``digit_table(accuracies, baseline)``: per-digit accuracies, coloured by their change
- ``value_strips(vectors)``: vectors' values as strips, one per vector, in layout order
- ``histograms(vectors, layout, mask)``: one histogram per tensor of the selected values
- ``curves(series)``: one line per ``{label: (x, y)}`` item (a quantity against the budget
  spent, norms per epoch), with an optional reference level and log axes
- ``sparsity_curve(series)``: curves on a log axis of the fraction of weights remaining
- ``shard_rows(rows)``: which rows of each tensor each rank of a sharded model holds

>>> import numpy as np
>>> figure = order_walk(np.arange(6).reshape(2, 3))
>>> [ax.get_title() for ax in figure.axes]
['order="C": row by row (NumPy)', 'order="F": column by column (R)']
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from helpers._layout import Layout
from helpers._masks import checked_mask, views

if TYPE_CHECKING:  # for the annotations only: matplotlib loads when a function runs
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DIVERGING_CMAP",
    "GATE_COLOURS",
    "SEQUENTIAL_CMAP",
    "along_line",
    "curves",
    "digit_table",
    "draw_gate_blocks",
    "draw_layout_strips",
    "draw_nnet",
    "histograms",
    "landscapes",
    "layer_of",
    "order_walk",
    "shard_rows",
    "sparsity_curve",
    "value_strips",
    "weight_images",
]

DIVERGING_CMAP = "RdBu_r"  # red = positive, blue = negative, white = zero
SEQUENTIAL_CMAP = "viridis"  # for values with no sign, such as a loss
WALK_NAMES = {"C": "row by row (NumPy)", "F": "column by column (R)"}
# One colour per gate; a candidate has one colour whatever its framework calls it.
GATE_COLOURS = {
    "i": "tab:blue",
    "f": "tab:orange",
    "c": "tab:green",
    "g": "tab:green",
    "o": "tab:red",
    "z": "tab:purple",
    "r": "tab:brown",
    "h": "tab:olive",
    "n": "tab:olive",
}
# Batch-norm statistics, shortened so that their labels fit in a narrow block.
_SHORT_NAMES = {
    "moving_mean": "mean",
    "moving_variance": "var",
    "running_mean": "mean",
    "running_var": "var",
    "num_batches_tracked": "count",
}
Curves = Mapping[str, tuple[ArrayLike, ArrayLike]]  # {label: (x, y)}
REFERENCE_STYLE = {"color": "grey", "linestyle": "--", "linewidth": 1}


def weight_images(
    kernels: Mapping[str, np.ndarray],
    units: Sequence[int] = range(8),
    image_shape: tuple[int, int] = (28, 28),
    limit: float | None = None,
) -> Figure:
    """Draw first-layer kernels as images: one row per kernel, one image per unit.

    Each kernel is shaped (inputs, units), as Keras stores a ``Dense`` kernel (for a
    PyTorch ``Linear``, pass ``weight.T``): column ``u`` holds the weights from every input
    pixel into unit ``u`` and is drawn as an ``image_shape`` image. Colours are ``RdBu_r``
    with zero white. Each row's colour limits are ``±limit``, or by default ``±`` the
    largest ``|value|`` among the units drawn in that row, and each row has its colorbar.

    >>> import numpy as np
    >>> kernel = np.random.default_rng(0).normal(size=(784, 4))
    >>> figure = weight_images({"random": kernel}, units=[0, 1])
    >>> len(figure.axes)  # two images and the row's colorbar
    3
    """
    import matplotlib.pyplot as plt

    units = list(units)
    rows = {
        name: _checked_kernel(name, kernel, units, image_shape) for name, kernel in kernels.items()
    }
    if not rows or not units:
        raise ValueError(
            f"weight_images: nothing to draw ({len(rows)} kernels, {len(units)} units)"
        )
    if limit is not None and not (math.isfinite(limit) and limit > 0):
        raise ValueError(f"weight_images: limit must be a positive number, got {limit!r}")
    figure, axes = plt.subplots(
        len(rows),
        len(units),
        figsize=(1.2 * len(units) + 1.2, 1.35 * len(rows) + 0.3),
        squeeze=False,
        layout="constrained",
    )
    for row, (row_axes, (name, kernel)) in enumerate(zip(axes, rows.items(), strict=True)):
        columns = kernel[:, units]
        row_limit = limit or float(np.abs(columns).max()) or 1.0  # an all-zero row: ±1
        for ax, unit, column in zip(row_axes, units, columns.T, strict=True):
            image = ax.imshow(
                column.reshape(image_shape), cmap=DIVERGING_CMAP, vmin=-row_limit, vmax=row_limit
            )
            ax.set(xticks=[], yticks=[], title=f"unit {unit}" if row == 0 else "")
            ax.title.set_fontsize(8)
        row_axes[0].set_ylabel(name, fontsize=8)
        colorbar = figure.colorbar(image, ax=list(row_axes), shrink=0.9, pad=0.01)
        colorbar.ax.tick_params(labelsize=7)
        colorbar.set_label("red +, blue −", fontsize=7)
    return figure


def order_walk(array: np.ndarray, orders: Sequence[str] = ("C", "F")) -> Figure:
    """Draw how a 2-D array is read into a vector, one panel per order.

    Each cell shows its value and, in brackets, the position it takes in the vector
    (``array.ravel(order=order)``); arrows follow the walk. ``"C"`` is row by row, as
    NumPy reads by default; ``"F"`` column by column, as R's ``as.vector`` does.

    >>> import numpy as np
    >>> figure = order_walk(np.arange(6).reshape(2, 3), orders=["F"])
    >>> [text.get_text() for text in figure.axes[0].texts if text.get_text()][:3]  # row 0
    ['0\\n[0]', '1\\n[2]', '2\\n[4]']
    """
    import matplotlib.pyplot as plt

    array = np.asarray(array)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"order_walk: expected a non-empty 2-D array, got shape {array.shape}")
    unknown = [order for order in orders if order not in WALK_NAMES]
    if unknown or not orders:
        raise ValueError(f"order_walk: orders must be among {list(WALK_NAMES)}, got {orders!r}")
    figure, axes = plt.subplots(
        1, len(orders), figsize=(4.5 * len(orders), 3.2), squeeze=False, layout="constrained"
    )
    for ax, order in zip(axes[0], orders, strict=True):
        _draw_walk(ax, array, order)
    return figure


def _draw_walk(ax: Axes, array: np.ndarray, order: str) -> None:
    position = np.arange(array.size).reshape(array.shape, order=order)
    # Cells shade from light (read first) to dark (read last); the text stays readable.
    ax.imshow(position, cmap="Blues", vmin=-3, vmax=array.size + 1)
    for (i, j), k in np.ndenumerate(position):
        ax.text(j, i, f"{array[i, j]}\n[{k}]", ha="center", va="center", fontsize=12)
    cells = [np.argwhere(position == k)[0] for k in range(array.size)]
    arrow = {"arrowstyle": "->", "color": "tab:red", "lw": 1.5, "shrinkA": 16, "shrinkB": 16}
    for (i0, j0), (i1, j1) in zip(cells[:-1], cells[1:], strict=True):
        ax.annotate("", xy=(j1, i1), xytext=(j0, i0), arrowprops=arrow)
    ax.set(xticks=range(array.shape[1]), yticks=range(array.shape[0]))
    ax.set(xlabel="column j", ylabel="row i", title=f'order="{order}": {WALK_NAMES[order]}')


def _checked_kernel(
    name: str, kernel: np.ndarray, units: list[int], image_shape: tuple[int, int]
) -> np.ndarray:
    kernel = np.asarray(kernel)
    pixels = math.prod(image_shape)
    if kernel.ndim != 2 or kernel.shape[0] != pixels:
        raise ValueError(
            f"weight_images: kernel {name!r} must be (inputs, units) with {pixels} inputs "
            f"for {image_shape} images, got shape {kernel.shape}"
        )
    outside = [unit for unit in units if not 0 <= unit < kernel.shape[1]]
    if outside:
        raise ValueError(
            f"weight_images: kernel {name!r} has {kernel.shape[1]} units, asked for {outside}"
        )
    if not np.isfinite(kernel[:, units]).all():
        raise ValueError(f"weight_images: kernel {name!r} holds NaN or infinite values")
    return kernel


def draw_nnet(fit: Any, ax: Axes | None = None) -> Axes:
    """Draw an ``nnet`` fit: nodes by layer, every edge labelled with its index in ``fit.wts``.

    Each edge is coloured by its weight (``RdBu_r`` on a symmetric log scale, red positive,
    explained in a colorbar); grey nodes ``b`` are the bias inputs of the next layer.

    >>> from helpers.nnet import class_ind, nnet
    >>> fit = nnet([[0.0, 1.0], [1.0, 0.0]], class_ind([0, 1]), size=2, maxit=0, trace=False)
    >>> len(draw_nnet(fit).lines) == fit.wts.size
    True
    """
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import SymLogNorm

    ax = ax if ax is not None else plt.subplots(figsize=(9, 5))[1]
    names = [name.split("->") for name in fit.weight_names()]
    n_in, size, _ = fit.n
    inputs = [f"i{k}" for k in range(1, n_in + 1)]
    hidden = [f"h{k}" for k in range(1, size + 1)]
    outputs = [d for d in dict.fromkeys(dest for _, dest in names) if d not in hidden]
    columns = [["b", *inputs], ["b", *hidden], outputs]
    position = {
        (layer, node): (layer, len(column) / 2 - row)
        for layer, column in enumerate(columns)
        for row, node in enumerate(column)
    }
    limit = max(float(abs(fit.wts).max()), 1e-12)
    norm = SymLogNorm(linthresh=1.0, vmin=-limit, vmax=limit)
    cmap = plt.get_cmap(DIVERGING_CMAP)
    centred = {"ha": "center", "va": "center"}
    for index, ((source, dest), weight) in enumerate(zip(names, fit.wts, strict=True)):
        to_layer = 1 if dest in hidden else 2
        from_layer = 0 if source in inputs else to_layer - 1
        (x0, y0), (x1, y1) = position[(from_layer, source)], position[(to_layer, dest)]
        ax.plot([x0, x1], [y0, y1], color=cmap(norm(weight)), lw=1.6, zorder=1)
        along = 0.75 if to_layer == 1 else 0.3  # where the index sits on the edge
        box = {"fc": "white", "ec": "none", "pad": 0.5}
        at = (x0 + along * (x1 - x0), y0 + along * (y1 - y0))
        ax.text(*at, str(index), fontsize=8, bbox=box, **centred)
    for (_, node), (x, y) in position.items():
        fill = "lightgrey" if node == "b" else "white"
        ax.scatter(x, y, s=650, color=fill, edgecolors="black", zorder=2)
        ax.text(x, y, node, zorder=4, **centred)
    ax.set_axis_off()
    label = "weight: red > 0, blue < 0 (symmetric log scale)"
    ticks = sorted({-limit, -min(limit, 1.0), 0.0, min(limit, 1.0), limit})
    colorbar = ax.figure.colorbar(ScalarMappable(norm, cmap), ax=ax, shrink=0.7, label=label)
    colorbar.set_ticks(ticks, labels=[f"{tick:.2g}" for tick in ticks])
    return ax


def draw_gate_blocks(strips: Mapping[str, str], hidden: int, ax: Axes | None = None) -> Axes:
    """One bar per entry of ``strips`` (label: gate letters in stored order), one block per gate.

    Each block is ``hidden`` positions wide and coloured by its gate (``GATE_COLOURS``).

    >>> ax = draw_gate_blocks({"Keras LSTM": "ifco", "PyTorch GRU": "rzn"}, hidden=8)
    >>> [text.get_text() for text in ax.texts]
    ['i', 'f', 'c', 'o', 'r', 'z', 'n']
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.subplots(figsize=(9, 0.7 * len(strips) + 0.6))[1]
    for row, gates in enumerate(strips.values()):
        for block, gate in enumerate(gates):
            ax.barh(row, hidden, left=block * hidden, color=GATE_COLOURS[gate], edgecolor="white")
            ax.text((block + 0.5) * hidden, row, gate, ha="center", va="center", color="white")
    widest = max(len(gates) for gates in strips.values())
    ax.set(yticks=range(len(strips)), yticklabels=list(strips))
    ax.set_xticks([block * hidden for block in range(widest + 1)])
    ax.set_xlabel(f"position along the gate axis (H = {hidden})")
    ax.invert_yaxis()  # the first strip on top
    return ax


def layer_of(name: str) -> str:
    """The layer a tensor name belongs to: Keras ``model/layer/.../variable``, torch ``layer.x``.

    >>> layer_of("mixed/lstm/lstm_cell/kernel"), layer_of("bn/gamma"), layer_of("bn.running_var")
    ('lstm', 'bn', 'bn')
    """
    if "/" in name:
        parts = name.split("/")
        return parts[1] if len(parts) > 2 else parts[0]
    return name.split(".")[0]


def draw_layout_strips(layouts: Mapping[str, Layout], zoom: int) -> Figure:
    """Each layout as a strip of its tensors, whole (left) and its first ``zoom`` positions.

    A block is as wide as its tensor, coloured by layer (:func:`layer_of`), hatched when
    not trainable, and labelled with the tensor's short name where it is wide enough.

    >>> from helpers import Layout
    >>> layout = Layout.from_specs(
    ...     [("conv.weight", (4, 9), "float32", True), ("bn.running_mean", (4,), "float32", False)],
    ...     framework="torch",
    ... )
    >>> figure = draw_layout_strips({"PyTorch": layout}, zoom=10)
    >>> [len(ax.patches) for ax in figure.axes[:2]]
    [2, 2]
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    layers = list(dict.fromkeys(layer_of(e.name) for layout in layouts.values() for e in layout))
    colours = {layer: f"C{k}" for k, layer in enumerate(layers)}
    longest = max(layout.size for layout in layouts.values())
    figure, axes = plt.subplots(
        len(layouts), 2, figsize=(12, 1.2 * len(layouts) + 0.7), squeeze=False
    )
    for (label, layout), (whole, start) in zip(layouts.items(), axes, strict=True):
        _draw_strip(whole, layout, colours, stop=longest, min_width=longest / 8)
        _draw_strip(start, layout, colours, stop=zoom, min_width=1)
        whole.set_ylabel(label, rotation=0, ha="right", va="center")
    axes[0, 0].set_title("whole vector")
    axes[0, 1].set_title(f"first {zoom} positions")
    legend = [Patch(color=colour, label=layer) for layer, colour in colours.items()]
    legend.append(Patch(facecolor="white", edgecolor="gray", hatch="////", label="not trainable"))
    figure.legend(handles=legend, loc="lower center", ncol=len(legend), frameon=False)
    figure.tight_layout(rect=(0, 0.6 / figure.get_figheight(), 1, 1))
    return figure


def _draw_strip(ax: Axes, layout: Layout, colours: dict, stop: int, min_width: float) -> None:
    for entry in layout:
        hatch = None if entry.trainable else "////"
        style = {"color": colours[layer_of(entry.name)], "hatch": hatch, "edgecolor": "white"}
        ax.barh(0, entry.size, left=entry.offset, **style)
        width = min(entry.offset + entry.size, stop) - entry.offset
        if width >= min_width:
            last = entry.name.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
            ax.text(
                entry.offset + width / 2,
                0,
                _SHORT_NAMES.get(last, last),
                rotation=0 if width > stop / 8 else 90,
                ha="center",
                va="center",
                fontsize=7,
            )
    ax.set(xlim=(0, stop), yticks=[])


def along_line(
    alphas: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    marks: Mapping[float, str] | None = None,
    ax: Axes | None = None,
    xlabel: str = "α",
    ylabel: str = "",
    title: str = "",
) -> Axes:
    """One curve per ``{label: values}`` item against ``alphas``, with marked points.

    Made for a line through weight space, θ(α) = (1 − α)·θ₀ + α·θ₁: ``marks`` maps an α
    (by default 0 and 1, the two ends) to a label, drawn as a dashed vertical line with
    its label at the top. Every series has one value per α.

    >>> ax = along_line([0.0, 0.5, 1.0], {"loss": [2.3, 1.0, 0.2]}, ylabel="loss")
    >>> [line.get_label() for line in ax.get_lines()][:1], ax.get_ylabel()
    (['loss'], 'loss')
    """
    import matplotlib.pyplot as plt

    alphas = _checked_values(repr("alphas"), alphas)
    if not series:
        raise ValueError("along_line: series is empty: nothing to draw")
    checked = {
        label: _checked_values(repr(label), values, len(alphas)) for label, values in series.items()
    }
    marks = {0.0: "θ₀", 1.0: "θ₁"} if marks is None else marks
    ax = ax if ax is not None else plt.subplots(figsize=(6.4, 3.4))[1]
    for label, values in checked.items():
        ax.plot(alphas, values, marker="o", markersize=2.5, label=label)
    for alpha, label in marks.items():
        ax.axvline(alpha, color="grey", linestyle="--", linewidth=0.8)
        ax.annotate(
            label,
            (alpha, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if title:
        ax.set_title(title, pad=14)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def landscapes(
    axis_values: Sequence[float],
    panels: Mapping[str, np.ndarray],
    *,
    columns: int = 2,
    label: str = "loss",
    levels: int = 14,
) -> Figure:
    """Draw 2-D slices of a loss as contour maps, one panel per ``{title: grid}`` item.

    ``grid[i, j]`` is the value at ``(axis_values[i], axis_values[j])``: the first index
    runs along the x axis (the first direction), the second along y. All panels share one
    set of contour levels and one colorbar (``viridis``, log-spaced when every value is
    positive), so equal colours mean equal values in every panel; a star marks the centre
    (0, 0).

    >>> import numpy as np
    >>> axis = np.linspace(-1, 1, 5)
    >>> bowl = 0.1 + axis[:, None] ** 2 + axis[None, :] ** 2
    >>> figure = landscapes(axis, {"a bowl": bowl, "twice as steep": 0.1 + 2 * (bowl - 0.1)})
    >>> [ax.get_title() for ax in figure.axes[:2]]
    ['a bowl', 'twice as steep']
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, Normalize

    axis_values = _checked_values(repr("axis_values"), axis_values)
    grids = {title: _checked_grid(title, grid, len(axis_values)) for title, grid in panels.items()}
    if not grids:
        raise ValueError("landscapes: panels is empty: nothing to draw")
    if columns < 1 or levels < 2:
        raise ValueError(f"landscapes: need columns >= 1 and levels >= 2, got {columns}, {levels}")
    low = min(float(grid.min()) for grid in grids.values())
    high = max(float(grid.max()) for grid in grids.values())
    high = high if high > low else low + 1.0  # a flat landscape still needs two levels
    logarithmic = low > 0
    if logarithmic:
        boundaries, norm = np.geomspace(low, high, levels), LogNorm(low, high)
    else:
        boundaries, norm = np.linspace(low, high, levels), Normalize(low, high)
    rows = math.ceil(len(grids) / columns)
    width = min(columns, len(grids))
    # A fixed layout: matplotlib's "constrained" one costs as much as drawing the panels.
    figure, axes = plt.subplots(rows, width, figsize=(3.6 * width + 1.0, 3.4 * rows), squeeze=False)
    figure.subplots_adjust(hspace=0.4, wspace=0.35)
    x, y = np.meshgrid(axis_values, axis_values, indexing="ij")
    for ax, (title, grid) in zip(axes.flat, grids.items(), strict=False):
        filled = ax.contourf(x, y, grid, levels=boundaries, cmap=SEQUENTIAL_CMAP, norm=norm)
        ax.contour(x, y, grid, levels=boundaries, colors="white", linewidths=0.4)
        ax.plot(0, 0, marker="*", color="white", markeredgecolor="black", markersize=11)
        ax.set(title=title, xlabel="first direction", ylabel="second direction", aspect="equal")
    for ax in list(axes.flat)[len(grids) :]:
        ax.set_axis_off()
    scale = "log scale" if logarithmic else "linear scale"
    colorbar = figure.colorbar(filled, ax=axes, shrink=0.85)
    ticks = boundaries[::2]
    colorbar.set_ticks(ticks, labels=[f"{tick:.2g}" for tick in ticks])
    colorbar.minorticks_off()
    colorbar.set_label(f"{label} ({scale}, shared by every panel)")
    return figure


def digit_table(
    accuracies: Mapping[str, Sequence[float]],
    baseline: str,
    *,
    row_labels: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """A table of accuracies, one column per ``{name: accuracies}`` item, one row per class.

    Each cell shows the accuracy in per cent; its colour is the change from the same row of
    column ``baseline``, in percentage points, on ``RdBu_r`` with symmetric limits: red =
    better, blue = worse, white = unchanged (the baseline column is white). Rows are the
    digits 0, 1, ... unless ``row_labels`` names them. Accuracies are fractions in [0, 1].

    >>> ax = digit_table({"before": [0.9, 0.8], "after": [0.95, 0.7]}, baseline="before")
    >>> [text.get_text() for text in ax.texts]
    ['90.0', '95.0', '80.0', '70.0']
    """
    import matplotlib.pyplot as plt

    if baseline not in accuracies:
        raise ValueError(f"digit_table: baseline {baseline!r} is not a column {list(accuracies)}")
    reference = _checked_values(repr(baseline), accuracies[baseline])
    columns = {
        name: _checked_values(repr(name), values, len(reference))
        for name, values in accuracies.items()
    }
    table = np.column_stack(list(columns.values()))
    if not ((table >= 0) & (table <= 1)).all():
        raise ValueError("digit_table: accuracies must be fractions in [0, 1]")
    rows = [str(digit) for digit in range(len(reference))] if row_labels is None else row_labels
    if len(rows) != len(reference):
        raise ValueError(f"digit_table: {len(rows)} row labels for {len(reference)} rows")
    change = 100 * (table - reference[:, None])
    limit = float(np.abs(change).max()) or 1.0  # all unchanged: white on a ±1 scale
    ax = ax if ax is not None else _table_axes(len(columns), len(rows), plt)
    image = ax.imshow(change, cmap=DIVERGING_CMAP, vmin=-limit, vmax=limit, aspect="auto")
    for (row, column), accuracy in np.ndenumerate(table):
        ax.text(column, row, f"{100 * accuracy:.1f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(columns)), list(columns), rotation=20, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.tick_params(length=0)
    colorbar = ax.figure.colorbar(image, ax=ax, shrink=0.9)
    colorbar.set_label(f"change from {baseline!r}, percentage points\n(red better, blue worse)")
    return ax


def _table_axes(columns: int, rows: int, plt) -> Axes:
    return plt.subplots(figsize=(1.1 * columns + 2.4, 0.32 * rows + 1.4))[1]


def _checked_values(
    name: str, values: ArrayLike, length: int | None = None, *, positive: bool = False
) -> np.ndarray:
    """A 1-D float array of finite values (of ``length`` values, all positive, when asked)."""
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D sequence, got shape {array.shape}")
    if length is not None and array.size != length:
        raise ValueError(f"{name}: expected {length} values, got {array.size}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite numbers, got {array[~np.isfinite(array)][0]}")
    if positive and (array <= 0).any():
        raise ValueError(f"{name}: a log axis needs positive numbers, got {array.min():g}")
    return array


def _checked_grid(title: str, grid: np.ndarray, size: int) -> np.ndarray:
    array = np.asarray(grid, dtype=float)
    if array.shape != (size, size):
        raise ValueError(f"panel {title!r}: expected a ({size}, {size}) grid, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"panel {title!r}: holds NaN or infinite values")
    return array


def value_strips(
    groups: Mapping[str, ArrayLike],
    ylabel: str,
    *,
    reference: tuple[str, float] | None = None,
    log_y: bool = False,
    seed: int = 0,
    ax: Axes | None = None,
) -> Axes:
    """Draw each group's values as a strip of points, one column per group, median marked.

    For many values that differ only in chance (children of a crossover, repeated runs):
    each value is a point, spread sideways at random (seeded by ``seed``, so the figure is
    the same every time) so that equal values stay visible; a black bar marks each group's
    median. ``reference=(label, value)`` adds a dashed horizontal line (e.g. the parents'
    value). Refuses (``ValueError``, naming the group) an empty or non-finite group, or a
    non-positive value with ``log_y``.

    >>> ax = value_strips({"a": [1.0, 2.0, 3.0], "b": [5.0, 6.0]}, "loss", reference=("parent", 1))
    >>> [tick.get_text() for tick in ax.get_xticklabels()]
    ['a', 'b']
    """
    import matplotlib.pyplot as plt

    if not groups:
        raise ValueError("value_strips: no groups to draw")
    checked = {
        label: _checked_values(f"group {label!r}", v, positive=log_y) for label, v in groups.items()
    }
    if reference is not None:
        _check_reference(reference, log_y)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    jitter = np.random.default_rng(seed)
    for column, values in enumerate(checked.values()):
        spread = column + jitter.uniform(-0.25, 0.25, values.size)
        ax.scatter(spread, values, s=10, alpha=0.5, color=f"C{column}")
        ax.hlines(np.median(values), column - 0.35, column + 0.35, color="black", linewidth=2)
    if reference is not None:
        ax.axhline(reference[1], label=reference[0], **REFERENCE_STYLE)
        ax.legend()
    ax.set_xticks(range(len(checked)), list(checked))
    ax.set_ylabel(ylabel)
    ax.set_yscale("log" if log_y else "linear")
    ax.grid(alpha=0.3, axis="y")
    return ax


def _checked_series(
    label: str, xy: tuple[ArrayLike, ArrayLike], log_x: bool, log_y: bool
) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(xy, Sequence) or len(xy) != 2:
        raise ValueError(f"series {label!r}: expected a pair (x, y), got {type(xy)}")
    x = _checked_values(f"series {label!r}: x", xy[0], positive=log_x)
    y = _checked_values(f"series {label!r}: y", xy[1], positive=log_y)
    if x.size != y.size:
        raise ValueError(
            f"series {label!r}: x and y must have the same length, got {x.size} and {y.size}"
        )
    return x, y


def _check_reference(reference: tuple[str, float], log_y: bool) -> None:
    label, value = reference
    if not (isinstance(value, int | float | np.number) and math.isfinite(value)):
        raise ValueError(f"reference {label!r}: expected a finite number, got {value!r}")
    if log_y and value <= 0:
        raise ValueError(f"reference {label!r}: a log axis needs a positive number, got {value}")


def histograms(
    vectors: np.ndarray | Mapping[str, np.ndarray],
    layout: Layout,
    mask: np.ndarray | None = None,
    *,
    bins: int = 60,
    log: bool = True,
    title: str | None = None,
) -> Figure:
    """One histogram per tensor, of its values where ``mask`` is True (all without one).

    ``vectors`` is one vector, or several as ``{label: vector}``: those are drawn over one
    another on the same bins, with a legend. Tensors with no selected value get no panel.
    The counts are on a log scale unless ``log=False``; each panel's title names the
    tensor and how many values of each vector it shows.

    >>> import helpers
    >>> vector, layout = helpers.flatten({"kernel": np.arange(6.0), "bias": np.ones(2)})
    >>> len(histograms(vector, layout).axes)
    2
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogFormatter

    if not isinstance(vectors, Mapping):
        vectors = {"": vectors}
    keep = views(checked_mask(mask, layout) if mask is not None else _everything(layout), layout)
    shown = [name for name, kept in keep.items() if kept.any()]
    if not shown:
        raise ValueError("mask: selects no value, so there is nothing to plot")
    parts = {label: views(vector, layout) for label, vector in vectors.items()}
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 2.8), squeeze=False)
    for ax, name in zip(axes[0], shown, strict=True):
        values = {label: part[name][keep[name]] for label, part in parts.items()}
        edges = np.histogram_bin_edges(np.concatenate(list(values.values())), bins=bins)
        for label, selected in values.items():
            # One outline per vector (not a bar per bin): the same picture, drawn faster.
            ax.hist(selected, bins=edges, log=log, histtype="stepfilled", alpha=0.6, label=label)
        if log:  # plain numbers (10, 100): a log axis's 10^n labels are slow to typeset
            ax.yaxis.set_major_formatter(LogFormatter())
            ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))
        ax.set_title(f"{name} ({keep[name].sum():,})", fontsize=9)
        ax.set_xlabel("value")
    axes[0][0].set_ylabel("count (log scale)" if log else "count")
    if len(vectors) > 1:
        axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def curves(
    series: Curves,
    xlabel: str = "",
    ylabel: str = "",
    *,
    title: str = "",
    reference: tuple[str, float] | None = None,
    log_x: bool = False,
    log_y: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """Draw one line per ``{label: (x, y)}`` item on shared axes, with a legend.

    ``x`` and ``y`` are 1-D sequences of equal length: what was spent or varied (steps,
    generations, evaluations, epochs) and what was measured there; up to 40 points get a
    marker each. ``reference=(label, value)`` adds a dashed horizontal line, e.g. the
    accuracy of chance or the minimum another optimiser reached. ``log_x`` / ``log_y`` put
    an axis on a log scale (its values must then be positive). Returns the axes drawn on (a
    new figure's, unless ``ax`` is given). Refuses (``ValueError``, naming the series, before
    drawing anything) a series with no points, ``x`` and ``y`` of different lengths,
    non-finite numbers, or a non-positive number on a log axis.

    >>> ax = curves(
    ...     {"ES": ([100, 200], [0.3, 0.5]), "SGD": ([60, 120, 180], [0.6, 0.8, 0.9])},
    ...     "forward passes", "accuracy", reference=("chance", 0.1), log_x=True,
    ... )
    >>> [line.get_label() for line in ax.get_lines()], ax.get_xscale()
    (['ES', 'SGD', 'chance'], 'log')
    """
    import matplotlib.pyplot as plt

    if not series:
        raise ValueError("curves: no series to draw")
    checked = {label: _checked_series(label, xy, log_x, log_y) for label, xy in series.items()}
    if reference is not None:
        _check_reference(reference, log_y)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    for label, (x, y) in checked.items():
        ax.plot(x, y, marker="." if x.size <= 40 else None, label=label)
    if reference is not None:
        ax.axhline(reference[1], label=reference[0], **REFERENCE_STYLE)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.set_xscale("log" if log_x else "linear")
    ax.set_yscale("log" if log_y else "linear")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def sparsity_curve(
    series: Curves,
    *,
    ax: Axes | None = None,
    ylabel: str = "test accuracy",
    title: str = "",
    ticks: Sequence[float] | None = None,
    reference: tuple[str, float] | None = None,
) -> Axes:
    """Curves against the fraction of weights remaining: log scale, 100 % on the left.

    Each item is ``{label: (fractions remaining, values)}``, drawn by :func:`curves`, as is
    ``reference=(label, value)`` (e.g. the unpruned network's accuracy). The x ticks are
    ``ticks`` (fractions), by default those of the first curve, labelled in per cent.

    >>> ax = sparsity_curve({"global": ([1.0, 0.5, 0.1], [0.95, 0.94, 0.5])})
    >>> [label.get_text() for label in ax.get_xticklabels()]
    ['100%', '50%', '10%']
    """
    from matplotlib.ticker import NullFormatter

    xlabel = "weights remaining (log scale)"
    ax = curves(series, xlabel, ylabel, title=title, reference=reference, log_x=True, ax=ax)
    ax.invert_xaxis()
    ticks = list(next(iter(series.values()))[0] if ticks is None else ticks)
    ax.set_xticks(ticks, [f"{100 * tick:.3g}%" for tick in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    return ax


RowRanges = Mapping[str, Mapping[str, tuple[int, int, int]]]  # {rank: {tensor: (a, b, rows)}}


def shard_rows(rows: RowRanges, *, ax: Axes | None = None, title: str = "") -> Axes:
    """Which rows of each tensor each rank holds: one bar per tensor, one colour per rank.

    ``rows`` maps a rank's label to ``{tensor name: (first row, row after the last, rows in
    the whole tensor)}``, as a sharded model splits its tensors along dim 0 (FSDP2). Each
    tensor's bar runs over its rows as a share of the whole (0 to 1), each rank's segment
    labelled with its rows. Refuses (``ValueError``, naming the tensor) ranks that list
    different tensors, or pieces that leave a row out or hold one twice.

    >>> ax = shard_rows({"rank 0": {"w": (0, 2, 3)}, "rank 1": {"w": (2, 3, 3)}})
    >>> [text.get_text() for text in ax.texts]
    ['rows 0-1', 'row 2']
    """
    import matplotlib.pyplot as plt

    names = _checked_row_ranges(rows)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 0.45 * len(names) + 1.2), layout="constrained")
    for k, (rank, pieces) in enumerate(rows.items()):
        for y, name in enumerate(names):
            start, stop, total = pieces[name]
            if stop == start:
                continue  # this rank holds none of the tensor
            ax.barh(
                y,
                (stop - start) / total,
                left=start / total,
                color=f"C{k}",
                edgecolor="white",
                label=rank if y == 0 else None,
            )
            text = f"row {start}" if stop - start == 1 else f"rows {start}-{stop - 1}"
            ax.text((start + stop) / 2 / total, y, text, ha="center", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()  # the first tensor on top, as in the layout
    ax.set(xlim=(0, 1), xlabel="share of the tensor's rows (dim 0)", title=title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    return ax


def _checked_row_ranges(rows: RowRanges) -> list[str]:
    """The tensor names, once every tensor's pieces cover its rows exactly once, in order."""
    if not rows:
        raise ValueError("shard_rows: no ranks to draw")
    names = list(next(iter(rows.values())))
    if not names:
        raise ValueError("shard_rows: the ranks hold no tensors")
    for rank, pieces in rows.items():
        if list(pieces) != names:
            raise ValueError(f"shard_rows: {rank!r} lists tensors {list(pieces)}, expected {names}")
    for name in names:
        ranges = sorted(pieces[name] for pieces in rows.values())
        spans = [(start, stop) for start, stop, _ in ranges]
        totals = {total for _, _, total in ranges}
        covers_once = (
            len(totals) == 1
            and spans[0][0] == 0
            and spans[-1][1] == max(totals)
            and all(start <= stop for start, stop in spans)
            and all(stop == start for (_, stop), (start, _) in itertools.pairwise(spans))
        )
        if not covers_once:
            raise ValueError(
                f"shard_rows: tensor {name!r}: the pieces {spans} do not cover its rows once "
                f"each (rows in all: {sorted(totals)})"
            )
    return names


def _everything(layout: Layout) -> np.ndarray:
    return np.ones(layout.size, dtype=bool)
