"""Execute every lesson top to bottom with papermill into build/notebooks/, then build the site.

Usage: python scripts/run_notebooks.py [--site] [NOTEBOOK ...]   (default: notebooks/[0-9]*.ipynb)

Ends with a table of what each lesson cost (CPU seconds, user + sys, of its kernel and of
papermill; wall seconds) and a one-line summary. ``--site`` (what ``make run`` passes) also
builds the HTML site from the executed copies, once every lesson has run. The tests execute
lessons through ``execute`` too.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import papermill

ROOT = Path(__file__).resolve().parents[1]
OUTPUT_DIR = ROOT / "build" / "notebooks"
SITE_DIR = ROOT / "build" / "html"
CPU_BUDGET_S = 120  # each lesson's default run: at most 2 CPU-minutes
# Waits longer than any honest run on a slow machine; only a hung kernel ever reaches them.
HANG_GUARD_S = 30 * 60


@dataclass(frozen=True)
class Cost:
    """CPU seconds (user + sys, kernel and papermill together) and wall seconds of a run."""

    cpu_s: float
    wall_s: float


def execute(notebook: Path, output: Path, **parameters: Any) -> Cost:
    """Run ``notebook`` with ``parameters`` into ``output``; return what the run cost.

    >>> execute(ROOT / "notebooks" / "04_nnet_single_hidden_layer.ipynb", Path("04.ipynb"), SIZE=3)
    ... # doctest: +SKIP
    Cost(cpu_s=7.9, wall_s=9.4)
    """
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    papermill.execute_notebook(
        notebook,
        output,
        parameters=parameters,
        cwd=notebook.parent,
        progress_bar=False,
        # Save the output once at the end, not after every cell (each save re-validates it).
        request_save_on_cell_execute=False,
        execution_timeout=None,  # no limit per cell (papermill's default, made explicit)
        start_timeout=HANG_GUARD_S,  # papermill's default: 60 s for the kernel to start
        iopub_timeout=HANG_GUARD_S,  # nbclient's default: 4 s, then a cell's output is lost
        # What C++ libraries write to the kernel's stderr file descriptor stays out of the
        # lesson, as under pytest (ipykernel does not watch it there): TensorFlow 2.21 prints
        # its absl/oneDNN start-up lines whatever TF_CPP_MIN_LOG_LEVEL says.
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
    )
    wall_s = time.perf_counter() - started
    # The kernel is a child process: its time counts once papermill has shut it down.
    return Cost(_cpu_since(children, resource.RUSAGE_CHILDREN) + _cpu_since(own), wall_s)


def _cpu_since(before: resource.struct_rusage, who: int = resource.RUSAGE_SELF) -> float:
    now = resource.getrusage(who)
    return now.ru_utime - before.ru_utime + now.ru_stime - before.ru_stime


def run_all(notebooks: list[Path]) -> dict[str, Cost]:
    """Run each notebook into OUTPUT_DIR, reporting its start and end; return the costs of those
    that ran (a failure is reported and the next lesson runs)."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    costs = {}
    for number, notebook in enumerate(notebooks, start=1):
        # One line when each notebook starts and one when it ends: the kernel may print its
        # own start-up notice in between.
        progress = f"[{number}/{len(notebooks)}] {notebook.name}"
        print(f"{progress}: running", flush=True)
        started = time.perf_counter()
        try:
            costs[notebook.name] = execute(notebook, OUTPUT_DIR / notebook.name)
        except Exception as error:  # report and go on with the next lesson
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            print(f"{progress}: FAILED after {time.perf_counter() - started:.0f} s: {first_line}")
            continue
        print(f"{progress}: ok in {costs[notebook.name].wall_s:.0f} s", flush=True)
    return costs


def cost_table(costs: dict[str, Cost]) -> str:
    """One row per lesson, CPU and wall seconds, with the lessons over the CPU budget marked."""
    width = max([len("lesson"), *(len(Path(name).stem) for name in costs)])
    rows = [f"{'lesson':<{width}}  {'CPU s':>7}  {'wall s':>7}"]
    for name, cost in costs.items():
        over = f"  over the {CPU_BUDGET_S} CPU-s budget" if cost.cpu_s > CPU_BUDGET_S else ""
        rows.append(f"{Path(name).stem:<{width}}  {cost.cpu_s:>7.1f}  {cost.wall_s:>7.1f}{over}")
    cpu_s, wall_s = sum(c.cpu_s for c in costs.values()), sum(c.wall_s for c in costs.values())
    rows.append(f"{'total':<{width}}  {cpu_s:>7.1f}  {wall_s:>7.1f}")
    rows.append("CPU s: user + sys of the lesson's kernel and of papermill.")
    return "\n".join(rows)


def build_site() -> bool:
    """Build the HTML site from the executed copies; True when Sphinx succeeded."""
    from build_docs import build  # scripts/ is on sys.path when this file runs as a script

    return build(OUTPUT_DIR, SITE_DIR) == 0


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every lesson")
    parser.add_argument("--site", action="store_true", help="then build the site in build/html")
    options = parser.parse_args(arguments)
    # Tiny models: one thread for torch and OpenBLAS is as fast, and on a busy machine their
    # idle worker threads spin for a core. The kernels inherit it; set it to override.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    notebooks = [path.resolve() for path in options.notebooks] or sorted(
        (ROOT / "notebooks").glob("[0-9]*.ipynb")
    )
    costs = run_all(notebooks)
    failed = [notebook.name for notebook in notebooks if notebook.name not in costs]
    built = options.site and not failed and build_site()
    if failed:
        site = f"site not built: {len(failed)} failed ({', '.join(failed)})"
    elif not options.site:
        site = "no site built (pass --site, as make run does)"
    elif built:
        site = f"site built: open {(SITE_DIR / 'index.html').relative_to(ROOT)} in a browser"
    else:
        site = "site build FAILED (see Sphinx's messages above)"
    cpu_s = sum(cost.cpu_s for cost in costs.values())
    print(f"\n{cost_table(costs)}\n")
    print(
        f"{len(costs)} of {len(notebooks)} lessons ran ({cpu_s:.0f} CPU-s) into "
        f"{OUTPUT_DIR.relative_to(ROOT)}/; {site}"
    )
    return 1 if failed or (options.site and not built) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
