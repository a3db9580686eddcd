"""The rendered site builds offline, with every lesson and its committed outputs."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_site_builds_with_every_notebook_and_its_outputs(built_site):
    # built_site: scripts/build_docs.py ran once for the session (conftest.py); -W fails warnings.
    for notebook in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        page = (built_site / "notebooks" / f"{notebook.stem}.html").read_text()
        title = json.loads(notebook.read_text())["cells"][0]["source"]
        title = "".join(title).splitlines()[0].lstrip("# ").split("·")[0].strip()
        assert title in page, f"{notebook.name}: title {title!r} missing from its page"
        assert "<img" in page, f"{notebook.name}: no figure rendered"
        assert "cell_output" in page, f"{notebook.name}: no outputs rendered"
    api = (built_site / "api.html").read_text()
    for name in ("helpers.flatten", "helpers.restore", "helpers.Layout"):
        assert name in api
