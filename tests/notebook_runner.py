"""Each lesson's two runs, and what they computed.

Every lesson ends with a code cell tagged ``results`` that prints one JSON object of the
figures the lesson computed. ``make test`` executes each lesson exactly twice:

- nbval runs it at its default parameters and checks every output against the committed
  one, so the committed ``results`` are what a fresh default run prints (no third run);
- papermill runs it once at cheap, non-default parameters (another seed, fewer epochs,
  other sizes, Keras on the other backend): the parameters must reach the code and the
  figures must follow from them.

A lesson's test module checks its claims on both runs with one fixture::

    run = lesson_fixture("02_keras_get_weights_and_order.ipynb", EPOCHS=1, SEED=7)

    def test_counts(run: LessonRun) -> None:
        assert run.results["n_weights"] == 25_450

Each test then runs twice, ``[defaults]`` (the committed outputs) and ``[cheap]`` (the
papermill run, executed once per module), so claims are written in terms of
``run.parameters`` rather than of the literal values of either run.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from run_notebooks import execute  # scripts/, on pytest's pythonpath

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@dataclass(frozen=True)
class LessonRun:
    """One run of a lesson: every parameter it ran with, and the figures it printed."""

    parameters: dict[str, Any]
    results: dict[str, Any]


def lesson_fixture(name: str, **cheap: Any) -> Callable[..., LessonRun]:
    """A module-scoped fixture giving the ``defaults`` run, then the ``cheap`` run of a lesson."""
    defaults = default_parameters(name)
    assert cheap, f"{name}: give the cheap run parameters other than the defaults"
    unknown = set(cheap) - set(defaults)
    assert not unknown, f"{name} has no parameters {sorted(unknown)}"
    unchanged = sorted(key for key, value in cheap.items() if defaults[key] == value)
    assert not unchanged, f"{name}: {unchanged} are the defaults, which nbval already runs"

    @pytest.fixture(scope="module", params=["defaults", "cheap"])
    def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
        if request.param == "defaults":
            return LessonRun(defaults, committed_results(name))
        results = run_notebook(name, tmp_path_factory.mktemp(Path(name).stem), **cheap)
        return LessonRun({**defaults, **cheap}, results)

    return run


def run_notebook(name: str, output_dir: Path, **parameters: Any) -> dict[str, Any]:
    """Execute ``notebooks/<name>`` with ``parameters``; return its ``results`` JSON."""
    output = output_dir / name
    execute(NOTEBOOKS / name, output, **parameters)  # as make run does; no limit per cell
    return results_of(nbformat.read(output, as_version=4))


def default_parameters(name: str) -> dict[str, Any]:
    """The assignments in the cell of ``notebooks/<name>`` tagged ``parameters``."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    return {
        statement.targets[0].id: ast.literal_eval(statement.value)
        for statement in ast.parse(cell.source).body
        if isinstance(statement, ast.Assign)
    }


def committed_results(name: str) -> dict[str, Any]:
    """The ``results`` JSON of the committed ``notebooks/<name>``: its default parameters."""
    return results_of(nbformat.read(NOTEBOOKS / name, as_version=4))


def results_of(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    """The JSON printed by the cell tagged ``results``."""
    cells = [c for c in notebook.cells if "results" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged 'results', found {len(cells)}"
    text = "".join(out.get("text", "") for out in cells[0].outputs if out.output_type == "stream")
    return json.loads(text)
