"""What does a flat view buy? Reading, writing and optimiser steps, against copying peers.

Run: .venv/bin/python benchmarks/flat_view_benchmark.py [--quick] [--device cuda]
(about 2 minutes on 2 CPU cores; --quick about 30 s)

Every figure is a ratio between methods timed in the same run, interleaved (each round
times every method once, in turn), so slow spells on a shared machine hit all of them
alike. A row prints the median of the per-round ratios and, in brackets, their lowest
and highest value.

- read: ``view.vector`` (no copy; a per-tensor check that the model still lives in it)
  against ``helpers.flatten`` and ``parameters_to_vector``, on a small and a big model:
  the flat view's time should not grow with the number of weights.
- write: ``view.vector.copy_(new)`` against ``helpers.restore`` and ``vector_to_parameters``
  (which, despite its docstring, does not copy: it re-points each parameter at the vector).
- step: an optimiser step (and forward + backward + step) on a flat-viewed model against its
  un-viewed twin (should be 1x), and SGD as one ``add_`` on the flat vector with the flat
  gradient, against ``torch.optim.SGD`` over the separate tensors.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

import helpers


def mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rounds(
    methods: dict[str, Callable[[], object]], device: torch.device, repeats: int, calls: int
) -> dict[str, list[float]]:
    """Seconds per call of each method, one entry per round; methods interleaved."""
    for method in methods.values():  # warm up (allocators, lazy initialisation)
        method()
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, method in methods.items():
            synchronise(device)
            started = time.perf_counter()
            for _ in range(calls):
                method()
            synchronise(device)
            seconds[name].append((time.perf_counter() - started) / calls)
    return seconds


def report(title: str, seconds: dict[str, list[float]], baseline: str) -> None:
    print(f"\n{title}")
    print(f"{'method':<52} {'median':>11} {'vs ' + baseline[:22]:>26}")
    base = seconds[baseline]
    for name, times in seconds.items():
        ratios = [mine / theirs for mine, theirs in zip(times, base, strict=True)]
        median = statistics.median(times)
        print(
            f"{name:<52} {median * 1e6:>9.1f}us {statistics.median(ratios):>9.3f}x "
            f"[{min(ratios):.3f}-{max(ratios):.3f}]"
        )


def read_and_write(model: nn.Module, label: str, repeats: int, calls: int) -> None:
    device = next(model.parameters()).device
    plain = copy.deepcopy(model)
    view = helpers.flat_view(model)
    vector, layout = helpers.flatten(plain)
    print(f"\n== {label}: {layout.size:,} weights in {len(layout)} tensors on {device} ==")
    report(
        "read the weights as one vector",
        rounds(
            {
                "view.vector (no copy)": lambda: view.vector,
                "helpers.flatten(model) (host copy)": lambda: helpers.flatten(plain),
                "parameters_to_vector(model.parameters())": lambda: nn.utils.parameters_to_vector(
                    plain.parameters()
                ),
            },
            device,
            repeats,
            calls,
        ),
        baseline="parameters_to_vector(model.parameters())",
    )
    new_values = torch.from_numpy(vector).to(device)
    twin = copy.deepcopy(plain)
    report(
        "write a vector into the model",
        rounds(
            {
                "view.vector.copy_(new)": lambda: view.vector.copy_(new_values),
                "helpers.restore(model, vector, layout)": lambda: helpers.restore(
                    plain, vector, layout
                ),
                "vector_to_parameters(new, params) (aliases!)": lambda: (
                    nn.utils.vector_to_parameters(new_values, twin.parameters())
                ),
            },
            device,
            repeats,
            calls,
        ),
        baseline="view.vector.copy_(new)",
    )
    view.undo()


def steps(model: nn.Module, repeats: int, calls: int) -> None:
    device = next(model.parameters()).device
    print(f"\n== optimiser steps, {sum(p.numel() for p in model.parameters()):,} weights ==")
    twin = copy.deepcopy(model)
    view = helpers.flat_view(model)
    batch = torch.randn(16, model[0].in_features, device=device)
    for network in (model, twin):  # gradients in place before timing
        network(batch).square().mean().backward()
    view.grad  # noqa: B018 - each .grad becomes a view into the flat gradient
    adam_viewed = torch.optim.Adam(model.parameters())
    adam_plain = torch.optim.Adam(twin.parameters())
    sgd_plain = torch.optim.SGD(twin.parameters(), lr=1e-3)

    def train(network: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=False)  # keep the flat gradient's views
        network(batch).square().mean().backward()
        optimizer.step()

    def flat_sgd() -> None:
        with torch.no_grad():
            view.vector.add_(view.grad, alpha=-1e-3)

    report(
        "time per step",
        rounds(
            {
                "Adam.step(), un-viewed twin": adam_plain.step,
                "Adam.step(), flat-viewed model": adam_viewed.step,
                "forward+backward+Adam step, un-viewed twin": lambda: train(twin, adam_plain),
                "forward+backward+Adam step, flat-viewed model": lambda: train(model, adam_viewed),
                "torch.optim.SGD.step() over the tensors": sgd_plain.step,
                "SGD as one add_ on view.vector with view.grad": flat_sgd,
            },
            device,
            repeats,
            calls,
        ),
        baseline="Adam.step(), un-viewed twin",
    )
    view.undo()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small models, few rounds (CI smoke)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, mps")
    arguments = parser.parse_args()
    device = torch.device(arguments.device)
    # rounds; calls per round on the small model; calls per round on the big one
    repeats, small_calls, big_calls = (3, 5, 1) if arguments.quick else (7, 20, 3)
    big = [1024, 1024] if arguments.quick else [1024] * 9  # 1M or 8.4M weights
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, numpy {np.__version__}, {torch.get_num_threads()} threads")
    lesson = mlp([784, 50, 50, 10]).to(device)  # the lessons' 42,310-weight MLP
    read_and_write(lesson, "the lessons' MLP", repeats, small_calls)
    read_and_write(mlp(big).to(device), "a bigger MLP", repeats, big_calls)
    steps(mlp([784, 50, 50, 10]).to(device), repeats, small_calls)
    steps(mlp(big).to(device), repeats, big_calls)


if __name__ == "__main__":
    main()
