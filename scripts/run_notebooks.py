"""Execute every lesson top to bottom with papermill, into build/notebooks/.

Usage: python scripts/run_notebooks.py [NOTEBOOK ...]   (default: notebooks/[0-9]*.ipynb)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import papermill

ROOT = Path(__file__).resolve().parents[1]
OUTPUT_DIR = ROOT / "build" / "notebooks"


def run_all(notebooks: list[Path]) -> int:
    """Run each notebook, report its start and end, then a summary; return the failures."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    failures = []
    for number, notebook in enumerate(notebooks, start=1):
        # One line when each notebook starts and one when it ends: the kernel may print its
        # own start-up notice in between.
        progress = f"[{number}/{len(notebooks)}] {notebook.name}"
        print(f"{progress}: running", flush=True)
        started = time.perf_counter()
        try:
            papermill.execute_notebook(
                notebook, OUTPUT_DIR / notebook.name, cwd=notebook.parent, progress_bar=False
            )
        except Exception as error:  # report and go on with the next lesson
            failures.append(notebook.name)
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            print(f"{progress}: FAILED after {time.perf_counter() - started:.0f} s: {first_line}")
            continue
        print(f"{progress}: ok in {time.perf_counter() - started:.0f} s", flush=True)
    passed = len(notebooks) - len(failures)
    print(f"\n{passed} of {len(notebooks)} notebooks ran; executed copies are in {OUTPUT_DIR}")
    if failures:
        print("failed:", ", ".join(failures))
    return len(failures)


if __name__ == "__main__":
    chosen = [Path(arg).resolve() for arg in sys.argv[1:]]
    sys.exit(1 if run_all(chosen or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))) else 0)
