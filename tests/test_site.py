"""The built site, read the way a reader reads it: every page in a real browser.

Headless Chromium (Debian's ``chromium`` package, installed by scripts/install-chromium.sh)
is driven by Playwright, launched from the system binary (Playwright's own browser
download is never used). The site is served from 127.0.0.1 on a free port. One pass over
every page records what the tests below check; a screenshot of each page is written to
build/site-screenshots/ for a person to look at. Without Chromium or Playwright the tests
skip with the reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest
from conftest import HANG_GUARD_S

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("CHROMIUM_BINARY", "/usr/lib/chromium/chromium"))
SCREENSHOTS = ROOT / "build" / "site-screenshots"
# Hang guards only, never a speed limit (conftest.py): a slow machine takes seconds here.
HANG_GUARD_MS = HANG_GUARD_S * 1000

# The DOM, read in the page: images (loaded eagerly and decoded), links, ids, code blocks.
READ_PAGE = """async () => {
  // Formulas are typeset by MathJax after the page loads: wait for it where a page has any.
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  const images = [];
  for (const image of document.images) {
    image.loading = "eager";
    try { await image.decode(); } catch (error) { /* a broken image: reported below */ }
    images.push({src: image.currentSrc || image.src, width: image.naturalWidth,
                 height: image.naturalHeight, complete: image.complete});
  }
  // A code block wider than its box, or a table wider than the box around it (a table in
  // a cell's output may scroll: it is data, not text to read).
  const blocks = [...document.querySelectorAll(".bd-article pre")]
    .map((block) => [block, block.scrollWidth, block.clientWidth]);
  const tables = [...document.querySelectorAll(".bd-article table")]
    .filter((table) => !table.closest(".cell_output"))
    .map((table) => [table, table.scrollWidth, table.parentElement.clientWidth]);
  const wide = blocks.concat(tables)
    .filter(([, width, room]) => width > room)
    .map(([element, width, room]) => `${element.tagName} ${width} > ${room}: `
                    + element.textContent.trim().split("\\n")[0].slice(0, 80));
  return {
    images,
    links: [...document.querySelectorAll("a[href]")].map((link) => link.href),
    ids: [...document.querySelectorAll("[id]")].map((element) => element.id),
    cells: [...document.querySelectorAll("div.cell")]
      .map((cell) => cell.querySelector(".cell_output") !== null),
    wide,
    formulas: document.querySelectorAll(".bd-article .math").length,
    typeset: document.querySelectorAll(".bd-article .math mjx-container").length,
    formula_errors: [...document.querySelectorAll("mjx-merror")].map((e) => e.textContent),
  };
}"""


def browser_path_or_skip() -> Path:
    """The Chromium binary; skip (fail under CI=true) with the reason when there is none."""
    problem = None
    if not CHROMIUM.is_file():
        problem = (
            f"no Chromium at {CHROMIUM} (run scripts/install-chromium.sh, or set CHROMIUM_BINARY)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = problem or "Playwright is not installed (pip install -e '.[test]')"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser test cannot run under CI: {problem}")
        pytest.skip(problem)
    return CHROMIUM


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        pass


@dataclass
class PageVisit:
    """What one page showed: problems the browser logged, and what its DOM held."""

    path: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    dom: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def site_server(built_site):
    handler = functools.partial(QuietHandler, directory=str(built_site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join()
    server.server_close()


def site_pages(built_site: Path) -> list[str]:
    """Every HTML page of the site (not Sphinx's own folders: _static, _sources...)."""
    pages = [page.relative_to(built_site) for page in built_site.rglob("*.html")]
    return sorted(str(page) for page in pages if not page.parts[0].startswith("_"))


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, the system's binary, for this module's tests."""
    executable = browser_path_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(executable))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def visits(built_site, site_server, browser) -> dict[str, PageVisit]:
    """Load every page once in one tab; record its problems and its DOM; screenshot it."""
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    # One tab for all pages (a new tab per page costs a renderer each); what the browser
    # reports goes to the page being visited, the last record.
    records: list[PageVisit] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(HANG_GUARD_MS)
    page.on("console", lambda message: report_console(records[-1], message))
    page.on("pageerror", lambda error: records[-1].console_errors.append(f"uncaught: {error}"))
    page.on("requestfailed", lambda request: records[-1].failed_requests.append(request.url))
    page.on("response", lambda response: report_response(records[-1], response))
    try:
        for path in site_pages(built_site):
            records.append(PageVisit(path))
            page.goto(site_server + path, wait_until="load")
            records[-1].dom = page.evaluate(READ_PAGE)
            page.screenshot(path=SCREENSHOTS / (path.replace("/", "__") + ".png"), full_page=True)
            # The next page starts as on a first visit: nothing remembered from this one.
            page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
    finally:
        page.close()
    return {record.path: record for record in records}


def report_console(record: PageVisit, message) -> None:
    if message.type == "error":
        record.console_errors.append(f"{message.text} ({message.location.get('url')})")


def report_response(record: PageVisit, response) -> None:
    if response.status >= 400:
        record.failed_requests.append(f"{response.status} {response.url}")


def test_every_page_loads_without_console_errors_or_failed_requests(visits):
    problems = {
        path: record.console_errors + record.failed_requests
        for path, record in visits.items()
        if record.console_errors or record.failed_requests
    }
    assert problems == {}
    assert {"index.html", "api.html", "search.html"} <= set(visits)


def test_every_image_loads_with_a_size(visits):
    broken = [
        f"{path}: {image['src']} ({image['width']}x{image['height']})"
        for path, record in visits.items()
        for image in record.dom["images"]
        if not (image["complete"] and image["width"] > 0 and image["height"] > 0)
    ]
    assert broken == []
    assert sum(len(record.dom["images"]) for record in visits.values()) > 0


def test_every_internal_link_resolves(visits, site_server):
    ids = {path: set(record.dom["ids"]) for path, record in visits.items()}
    targets = {link for record in visits.values() for link in record.dom["links"]}
    internal = sorted(link for link in targets if link.startswith(site_server))
    broken, fetched = [], {}
    for link in internal:
        address, fragment = urldefrag(link)
        if address not in fetched:
            fetched[address] = status_of(address)
        path = urlsplit(address).path.lstrip("/") or "index.html"
        if fetched[address] != 200:
            broken.append(f"{link}: HTTP {fetched[address]}")
        elif fragment and path in ids and fragment not in ids[path]:
            broken.append(f"{link}: no element with id {fragment!r} on {path}")
    assert broken == []
    assert len(internal) > len(visits)  # the check saw the navigation and the lessons' links


def status_of(address: str) -> int:
    try:
        with urllib.request.urlopen(address) as response:  # loopback only: our own server
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_code_cells_keep_their_outputs(visits):
    for notebook in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        shown = [
            bool(cell.get("outputs"))
            for cell in cells
            if cell["cell_type"] == "code"
            and not {"remove-cell", "remove_cell"} & set(cell.get("metadata", {}).get("tags", []))
        ]
        hidden_outputs = [
            "remove-output" in cell.get("metadata", {}).get("tags", []) for cell in cells
        ]
        rendered = visits[f"notebooks/{notebook.stem}.html"].dom["cells"]
        assert len(rendered) == len(shown), f"{notebook.name}: {len(rendered)} cells on the page"
        if not any(hidden_outputs):
            assert rendered == shown, f"{notebook.name}: cells whose outputs are lost"
        assert sum(rendered) > 0


def test_no_code_block_or_table_scrolls_sideways(visits):
    wide = {path: record.dom["wide"] for path, record in visits.items() if record.dom["wide"]}
    assert wide == {}


def test_every_formula_is_typeset_from_the_site_itself(visits):
    # MathJax comes from the site's own _static/ (docs/conf.py), never a CDN: a failed load
    # would also show in the console test above; here every formula must have rendered.
    untypeset = {
        path: f"{record.dom['typeset']} of {record.dom['formulas']} typeset"
        for path, record in visits.items()
        if record.dom["typeset"] < record.dom["formulas"] or record.dom["formula_errors"]
    }
    assert untypeset == {}
    assert sum(record.dom["formulas"] for record in visits.values()) > 0


def test_search_finds_fingerprint(site_server, browser):
    page = browser.new_page()
    page.set_default_timeout(HANG_GUARD_MS)
    try:
        page.goto(site_server + "search.html?q=fingerprint", wait_until="load")
        # Sphinx searches in JavaScript: poll until it says it has finished, then read.
        page.wait_for_function(
            "document.querySelector('#search-results .search-summary')"
            "?.textContent.includes('Search finished')"
        )
        found = page.eval_on_selector_all(
            "#search-results li a", "(links) => links.map((a) => a.getAttribute('href'))"
        )
    finally:
        page.close()
    assert "api.html#helpers.Layout.fingerprint" in found
    assert any(link.startswith("notebooks/") for link in found), found


def test_a_screenshot_of_every_page_is_left_for_a_person(visits):
    shots = sorted(SCREENSHOTS.glob("*.png"))
    assert len(shots) == len(visits)
    assert all(shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for shot in shots)


def test_without_a_browser_it_skips_or_under_ci_fails(monkeypatch, tmp_path):
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="cannot run under CI: no Chromium at"):
        browser_path_or_skip()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no Chromium at .*no-chromium"):
        browser_path_or_skip()
