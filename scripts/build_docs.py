"""Build the lessons as an HTML site in build/html (offline; notebooks are not re-run).

Usage: python scripts/build_docs.py [--notebooks DIR] [--output DIR]

The notebooks come from DIR if given (make run passes build/notebooks, the copies
papermill just executed), else from notebooks/ with their committed outputs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from sphinx.cmd.build import build_main

ROOT = Path(__file__).resolve().parents[1]


def assemble_sources(notebooks: Path, sources: Path) -> None:
    """Copy docs/, the notebooks and the data README into one Sphinx source folder."""
    if sources.exists():
        shutil.rmtree(sources)
    shutil.copytree(ROOT / "docs", sources)
    (sources / "notebooks").mkdir()
    for notebook in sorted(notebooks.glob("[0-9]*.ipynb")):
        shutil.copy2(notebook, sources / "notebooks" / notebook.name)
    # The data page links to the licence file beside it; MyST wants such links as downloads.
    data_page = (ROOT / "data" / "README.md").read_text()
    (sources / "data.md").write_text(data_page.replace("](LICENSE-", "](path:LICENSE-"))
    for licence in (ROOT / "data").glob("LICENSE-*"):
        shutil.copy2(licence, sources / licence.name)


def build(notebooks: Path, output: Path) -> int:
    """Assemble the sources next to ``output`` and run Sphinx; return its exit status."""
    sources = output.parent / f"{output.name}-sources"
    assemble_sources(notebooks, sources)
    # -W: a broken link or a missing notebook fails the build instead of passing quietly.
    return build_main(["-b", "html", "-q", "-W", "--keep-going", str(sources), str(output)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--output", type=Path, default=ROOT / "build" / "html")
    arguments = parser.parse_args()
    status = build(arguments.notebooks.resolve(), arguments.output.resolve())
    if status == 0:
        print(f"site built: {arguments.output.name}/index.html")
    sys.exit(status)
