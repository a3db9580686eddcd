"""The rendered site builds offline, with every lesson and its committed outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_site_builds_with_every_notebook_and_its_outputs(tmp_path):
    output = tmp_path / "html"
    build = subprocess.run(
        [sys.executable, ROOT / "scripts" / "build_docs.py", "--output", output],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    for notebook in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        page = (output / "notebooks" / f"{notebook.stem}.html").read_text()
        title = json.loads(notebook.read_text())["cells"][0]["source"]
        title = "".join(title).splitlines()[0].lstrip("# ").split("·")[0].strip()
        assert title in page, f"{notebook.name}: title {title!r} missing from its page"
        assert "<img" in page, f"{notebook.name}: no figure rendered"
        assert "cell_output" in page, f"{notebook.name}: no outputs rendered"
    api = (output / "api.html").read_text()
    for name in ("helpers.flatten", "helpers.restore", "helpers.Layout"):
        assert name in api
