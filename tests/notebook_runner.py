"""Run a lesson under papermill with chosen parameters and read back what it computed.

Every lesson ends with a code cell tagged ``results`` that prints one JSON object of
the figures the lesson computed. The papermill tests run a notebook with non-default
parameters and check those figures, not merely that the notebook ran.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import papermill

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(name: str, output_dir: Path, **parameters: Any) -> dict[str, Any]:
    """Execute ``notebooks/<name>`` with ``parameters``; return its ``results`` JSON."""
    output = output_dir / name
    papermill.execute_notebook(
        NOTEBOOKS / name,
        output,
        parameters=parameters,
        cwd=NOTEBOOKS,
        progress_bar=False,
        kernel_name="weights-vector",
    )
    return results_of(nbformat.read(output, as_version=4))


def results_of(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    """The JSON printed by the cell tagged ``results``."""
    cells = [c for c in notebook.cells if "results" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged 'results', found {len(cells)}"
    text = "".join(out.get("text", "") for out in cells[0].outputs if out.output_type == "stream")
    return json.loads(text)
