"""scripts/run_notebooks.py: what make run writes into an executed lesson, and what not."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

pytest.importorskip("papermill")

from run_notebooks import execute  # noqa: E402  (scripts/, on pytest's pythonpath)


def test_what_c_code_writes_to_stderr_stays_out_of_the_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TensorFlow's C++ start-up lines go to file descriptor 2, not through sys.stderr.
    # Under pytest ipykernel never watches that descriptor, so run as make run does.
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("import os\n_ = os.write(2, b'C++ start-up line\\n')"),
        nbformat.v4.new_code_cell("import sys\nprint('stdout'); print('stderr', file=sys.stderr)"),
    ]
    notebook.metadata.kernelspec = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, tmp_path / "lesson.ipynb")
    cost = execute(tmp_path / "lesson.ipynb", tmp_path / "executed.ipynb")
    executed = nbformat.read(tmp_path / "executed.ipynb", as_version=4)
    texts = [[out.get("text", "") for out in cell.outputs] for cell in executed.cells]
    assert texts == [[], ["stdout\n", "stderr\n"]]
    assert cost.cpu_s > 0 and cost.wall_s > 0
