"""helpers.plots, the figure of lesson 11: shard_rows (each tensor's rows by the rank holding
them) and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from helpers import plots  # noqa: E402

# Rows split as FSDP2 splits them over two ranks (torch.chunk): 3 rows as 2 + 1, 1 as 1 + 0.
ROWS = {
    "rank 0": {"0.weight": (0, 2, 3), "0.bias": (0, 2, 3), "1.weight": (0, 1, 1)},
    "rank 1": {"0.weight": (2, 3, 3), "0.bias": (2, 3, 3), "1.weight": (1, 1, 1)},
}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_shard_rows_one_bar_per_held_piece_coloured_by_rank() -> None:
    ax = plots.shard_rows(ROWS, title="two ranks")
    bars = [
        (bar.get_x(), bar.get_width(), bar.get_y() + bar.get_height() / 2) for bar in ax.patches
    ]
    # rank 0's three pieces, then rank 1's two: it holds none of the 1-row tensor
    expected = [(0, 2 / 3, 0), (0, 2 / 3, 1), (0, 1, 2), (2 / 3, 1 / 3, 0), (2 / 3, 1 / 3, 1)]
    assert np.allclose(bars, expected)
    colours = [bar.get_facecolor() for bar in ax.patches]
    assert colours[:3] == [to_rgba("C0")] * 3 and colours[3:] == [to_rgba("C1")] * 2
    assert [t.get_text() for t in ax.texts] == ["rows 0-1", "rows 0-1", "row 0", "row 2", "row 2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.weight", "0.bias", "1.weight"]
    assert ax.yaxis_inverted()  # the first tensor on top
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["rank 0", "rank 1"]
    assert ax.get_title() == "two ranks" and ax.get_xlim() == (0, 1)


def test_shard_rows_draws_into_given_axes() -> None:
    _, ax = plt.subplots()
    assert plots.shard_rows({"only rank": {"w": (0, 4, 4)}}, ax=ax) is ax
    assert [t.get_text() for t in ax.texts] == ["rows 0-3"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({}, "no ranks"),
        ({"rank 0": {}}, "hold no tensors"),
        ({"a": {"w": (0, 1, 2)}, "b": {"v": (1, 2, 2)}}, r"'b' lists tensors \['v'\]"),
        ({"a": {"w": (0, 1, 3)}, "b": {"w": (2, 3, 3)}}, r"'w'.*\[\(0, 1\), \(2, 3\)\]"),
        ({"a": {"w": (0, 2, 3)}, "b": {"w": (1, 3, 3)}}, "do not cover its rows once each"),
        ({"a": {"w": (0, 2, 3)}, "b": {"w": (2, 3, 4)}}, r"rows in all: \[3, 4\]"),
        ({"a": {"w": (0, 2, 2)}, "b": {"w": (2, 1, 2)}}, "'w'"),
        ({"a": {"w": (1, 3, 3)}}, "'w'"),
    ],
)
def test_shard_rows_refuses_pieces_that_do_not_tile_the_rows(rows: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plots.shard_rows(rows)
