"""Every lesson has the course's shape (../shared/NOTEBOOK_STYLE.md and README.md).

Title, credits, a papermill ``parameters`` cell, numbered sections, then the closing sections
in order; the ``results`` cell the tests read is hidden on the site and placed before the
Summary; every solution is code that ran (the tests run it again) and is folded on the site.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9]*.ipynb"))
CLOSING = ["Summary", "On your own", "Solutions", "In practice", "Further reading"]


def cells_of(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text())["cells"]


def tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def text(cell: dict) -> str:
    return "".join(cell["source"])


def headings(cells: list[dict]) -> list[str]:
    markdown = "\n".join(text(cell) for cell in cells if cell["cell_type"] == "markdown")
    return re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)


def test_lessons_are_numbered_one_after_another():
    numbers = [int(notebook.name[:2]) for notebook in NOTEBOOKS]
    assert numbers == list(range(1, len(NOTEBOOKS) + 1))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name[:2])
def test_opening(notebook: Path):
    cells = cells_of(notebook)
    opening = text(cells[0])
    assert opening.startswith(f"# {notebook.name[:2]} · ")
    for part in ("**What you'll do", "**What you'll learn", "**What you'll need"):
        assert part in opening, f"{notebook.name}: no {part}"
    # The two sources every lesson rebuilds, by title and date (issue 12).
    assert "Weight Extraction" in opening and "2024-12-23" in opening
    assert sum("parameters" in tags(cell) for cell in cells) == 1


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name[:2])
def test_sections_then_the_closing(notebook: Path):
    found = headings(cells_of(notebook))
    numbered = [heading for heading in found if heading[0].isdigit()]
    assert [int(heading.split(".")[0]) for heading in numbered] == list(range(1, len(numbered) + 1))
    assert found == numbered + CLOSING, f"{notebook.name}: sections {found}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name[:2])
def test_results_cell_is_hidden_and_before_the_summary(notebook: Path):
    cells = cells_of(notebook)
    results = [index for index, cell in enumerate(cells) if "results" in tags(cell)]
    summary = next(i for i, cell in enumerate(cells) if text(cell).startswith("## Summary"))
    assert len(results) == 1 and results[0] < summary
    assert "remove-cell" in tags(cells[results[0]])


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name[:2])
def test_solutions_are_code_that_ran(notebook: Path):
    cells = cells_of(notebook)
    solutions = [cell for cell in cells if "solution" in tags(cell)]
    assert solutions, f"{notebook.name}: no solution cells"
    for cell in solutions:
        assert cell["cell_type"] == "code" and "hide-input" in tags(cell)
        assert cell["execution_count"] is not None, f"{notebook.name}: a solution never ran"
        assert "assert" in text(cell), f"{notebook.name}: a solution checks nothing"
