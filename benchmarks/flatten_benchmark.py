"""How fast, and how much memory, is helpers.flatten compared with the usual one-liners?

Run: .venv/bin/python benchmarks/flatten_benchmark.py

Every figure is a ratio between methods measured in the same run on the same model, so
it means something on a shared, noisy machine where absolute seconds do not. Peak memory
is NumPy's (tracemalloc sees NumPy allocations, not torch's or TensorFlow's).
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

import helpers

REPEATS = 5


def measure(flatten_somehow: Callable[[], np.ndarray]) -> tuple[float, int]:
    """Best-of-REPEATS seconds, and the peak bytes NumPy held during one call."""
    seconds = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        flatten_somehow()
        seconds.append(time.perf_counter() - started)
    tracemalloc.start()
    flatten_somehow()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return min(seconds), peak


def report(title: str, methods: dict[str, Callable[[], np.ndarray]], vector_bytes: int) -> None:
    results = {name: measure(method) for name, method in methods.items()}
    base_seconds, _ = results["helpers.flatten"]
    print(f"\n{title} ({vector_bytes / 2**20:.1f} MiB of weights)")
    print(f"{'method':<44} {'time vs helpers':>16} {'peak / vector size':>19}")
    for name, (seconds, peak) in results.items():
        memory = (
            f"{peak / vector_bytes:>18.2f}x" if peak > vector_bytes / 100 else "   (outside NumPy)"
        )
        print(f"{name:<44} {seconds / base_seconds:>15.2f}x {memory}")


def torch_case() -> None:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024) for _ in range(8)])
    vector, _ = helpers.flatten(model)
    report(
        "PyTorch, 8 x Linear(1024, 1024)",
        {
            "helpers.flatten": lambda: helpers.flatten(model)[0],
            "parameters_to_vector(...).numpy()": lambda: (
                torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
            ),
            "np.concatenate of each .numpy().ravel()": lambda: np.concatenate(
                [p.detach().numpy().ravel() for p in model.parameters()]
            ),
        },
        vector.nbytes,
    )


def keras_case() -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1024,))] + [keras.layers.Dense(1024) for _ in range(8)])
    vector, _ = helpers.flatten(model)
    report(
        "Keras, 8 x Dense(1024)",
        {
            "helpers.flatten": lambda: helpers.flatten(model)[0],
            "np.concatenate of get_weights() ravelled": lambda: np.concatenate(
                [array.ravel() for array in model.get_weights()]
            ),
        },
        vector.nbytes,
    )


if __name__ == "__main__":
    torch_case()
    keras_case()
