"""The benchmark runs (--quick) and prints its tables; its figures are not checked here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_vector_benchmark_runs_quickly_and_prints_every_table():
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "vector_benchmark.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3"),
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for title in (
        "torch, lesson MLP 784-50-50-10: 42,310 float32 parameters",
        "torch, 1 x Linear",
        "Keras, lesson MLP 784-50-50-10",
        "Keras, 1 x Dense",
        "save at scale",
        "load at scale",
        "restore from the memory-mapped vector",
    ):
        assert title in run.stdout
    for row in ("helpers.restore ", "set_weights ", "torch.load(mmap=True) "):
        assert any(line.startswith(row) and "x [" in line for line in run.stdout.splitlines())
