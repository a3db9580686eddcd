"""Timing and memory tools shared by the benchmarks: interleaved rounds, ratios, peak memory.

Every figure a benchmark prints is a ratio between methods timed in the same run,
interleaved (each round times every method once, in turn), so a slow spell on a shared
machine hits all of them alike. A row shows the median of the per-round ratios and, in
brackets, the lowest and highest.
"""

from __future__ import annotations

import gc
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

Methods = dict[str, Callable[[], object]]


def rounds(methods: Methods, repeats: int, calls: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each method, one entry per round; methods interleaved."""
    for method in methods.values():  # warm up (allocators, caches, lazy initialisation)
        method()
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, method in methods.items():
            gc.collect()
            started = time.perf_counter()
            for _ in range(calls):
                method()
            seconds[name].append((time.perf_counter() - started) / calls)
    return seconds


def ratio_row(times: list[float], base: list[float]) -> str:
    """``median [lowest-highest]`` of the per-round ratios of ``times`` to ``base``."""
    ratios = [mine / theirs for mine, theirs in zip(times, base, strict=True)]
    return f"{statistics.median(ratios):6.2f}x [{min(ratios):.2f}-{max(ratios):.2f}]"


def print_table(
    title: str,
    seconds: dict[str, list[float]],
    baselines: list[str],
    memory: dict[str, float] | None = None,
    memory_label: str = "peak extra / model",
) -> None:
    """One row per method: its median time and its ratio to each baseline (and memory)."""
    print(f"\n{title}")
    header = f"{'method':<44} {'median':>10}"
    for baseline in baselines:
        header += f" {'vs ' + baseline[:24]:>28}"
    if memory is not None:
        header += f" {memory_label:>20}"
    print(header)
    for name, times in seconds.items():
        row = f"{name:<44} {_human(statistics.median(times)):>10}"
        for baseline in baselines:
            row += f" {ratio_row(times, seconds[baseline]):>28}"
        if memory is not None:
            row += f" {memory[name]:>19.2f}x" if name in memory else f" {'':>20}"
        print(row)


def _human(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f}us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f}ms"
    return f"{seconds:.2f}s"


def anonymous_bytes() -> int:
    """The process's anonymous resident memory (its own, not the page cache), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


def peak_extra_bytes(method: Callable[[], object], interval: float = 0.001) -> int:
    """How far the process's anonymous memory rose above where it started, during one call.

    A thread samples /proc/self/status every ``interval`` seconds (copies of any size
    release the GIL, so it runs alongside them); whatever the call returns is dropped
    before the end. Page cache (a file written or mapped) is not counted.
    """
    gc.collect()
    start = anonymous_bytes()
    peak, done = [start], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], anonymous_bytes())
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = method()
    peak[0] = max(peak[0], anonymous_bytes())
    done.set()
    sampler.join()
    del result
    return max(0, peak[0] - start)
