"""Shared pytest configuration: no wall-clock limits, single-threaded torch, a CPU-time report.

A test must not fail because the machine is slow or busy, so nothing here or in the tests
limits wall-clock time below a hang guard of 30 minutes (``HANG_GUARD_S``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The suite's models are tiny: one thread for torch and OpenBLAS is as fast, and on a busy
# machine their idle worker threads spin for a core and multiply the suite's CPU time (a
# Keras-on-PyTorch epoch: 5x). Notebook kernels and subprocesses inherit it. TensorFlow keeps
# its threads: lesson 07 prints differences at float precision that depend on their number.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Longer than any honest run on a slow machine; only a hung process ever reaches it.
HANG_GUARD_S = 30 * 60

# Hypothesis times each example (deadline) and each draw (health check too_slow): both are
# wall-clock limits a busy machine can hit, so every property test runs without them.
settings.register_profile(
    "weights-vector", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("weights-vector")

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "r: compares with R (needs Rscript and R's nnet; skipped without them unless CI=true)",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # nbval waits at most 5 s (hard-coded) for a cell's output messages after the cell has
    # run; a busy machine can take longer to deliver them.
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = HANG_GUARD_S


@pytest.hookimpl(wrapper=True, tryfirst=True)  # last: after --durations and the -ra summary
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter):
    """Print the CPU time (user + sys) of pytest and of every child process it waited for."""
    yield
    times = os.times()
    own = times.user + times.system
    children = times.children_user + times.children_system  # kernels, R, Sphinx, interpreters
    terminalreporter.write_sep("=", "CPU time")
    terminalreporter.write_line(
        f"{own + children:.0f} CPU-s (user + sys): pytest {own:.0f} s, "
        "its child processes (notebook kernels, R, Sphinx, Chromium, fresh interpreters) "
        f"{children:.0f} s"
    )


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test drew, if it drew any (matplotlib is not imported for it)."""
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML site, built once per test session for every test that reads it."""
    output = tmp_path_factory.mktemp("site") / "html"
    build = subprocess.run(
        [sys.executable, ROOT / "scripts" / "build_docs.py", "--output", output],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    return output
