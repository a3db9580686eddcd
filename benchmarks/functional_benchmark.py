"""How fast does helpers.functional evaluate a population of weight vectors?

Run: .venv/bin/python benchmarks/functional_benchmark.py

The lesson MLP (784-50-50-10, tanh, softmax: the 2016 Keras MLP of lesson 01 rebuilt in
PyTorch, 42,310 weights) on 1,000 real digits. A population of 100 vectors evaluated in one
call of ``f = helpers.functional(model, layout)`` does the arithmetic of one forward pass of
100,000 rows; the goal is that it costs at most twice that pass (no per-member Python
overhead). The usual alternative, restoring each vector into the model and then running it,
is the baseline to beat.

The same comparison on a mini-batch of 100 digits (what an evolution strategy evaluates per
generation) shows the per-member overhead that one batched call removes.

Every figure is a ratio between methods timed in the same run, interleaved round by round so
that a busy machine slows them alike: the median over the rounds, with the range of the
per-round ratios. Torch runs single-threaded, then with its default number of threads; on a
machine with a CUDA GPU, on the GPU too (the population already there).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

import helpers

ROUNDS = 7
POPULATION = 100
DIGITS = 1_000  # the case; a mini-batch of 100 (as an evolution strategy uses) after it
MINI_BATCH = 100
REFERENCE = "one forward pass of population x digits rows"


def lesson_mlp() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(784, 50),
        torch.nn.Tanh(),
        torch.nn.Linear(50, 50),
        torch.nn.Tanh(),
        torch.nn.Linear(50, 10),
        torch.nn.Softmax(dim=-1),
    ).eval()


def timed_rounds(methods: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    """Seconds per call of each method, ROUNDS times, the methods interleaved in each round."""
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for method in methods.values():
        method()  # warm-up: first-call allocations and lazy initialisation
    for _ in range(ROUNDS):
        for name, method in methods.items():
            started = time.perf_counter()
            method()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def report(title: str, seconds: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    print(f"{'method':<46} {'median ms':>10} {'vs one forward pass':>22} {'vs f(population)':>20}")
    batched = "f(population, digits): one call (vmap)"
    for name, times in seconds.items():
        columns = [f"{name:<46} {1000 * statistics.median(times):>10.2f}"]
        for reference, width in ((REFERENCE, 22), (batched, 20)):
            ratios = [t / r for t, r in zip(times, seconds[reference], strict=True)]
            ratio = statistics.median(times) / statistics.median(seconds[reference])
            columns.append(f"{f'{ratio:.2f}x ({min(ratios):.2f}-{max(ratios):.2f})':>{width}}")
        print(" ".join(columns))


def methods_on(device: str, count: int) -> dict[str, Callable[[], object]]:
    """The four ways to evaluate the population on ``count`` digits, checked to agree first."""
    (x_train, _), _ = helpers.data.load_mnist()
    digits = (x_train[:count].reshape(count, -1) / 255).astype(np.float32)
    model = lesson_mlp().to(device)
    vector, layout = helpers.flatten(model)
    assert layout.size == 42_310
    rng = np.random.default_rng(0)
    population = (vector + 0.01 * rng.standard_normal((POPULATION, layout.size))).astype(np.float32)
    f = helpers.functional(model, layout)
    inputs = torch.from_numpy(digits).to(device)
    rows = inputs.repeat(POPULATION, 1)  # 100,000 rows for 1,000 digits
    # On a GPU the population lives there too; on the CPU it stays NumPy (NumPy in and out).
    members = torch.from_numpy(population).to(device) if device != "cpu" else population

    def finish(outputs: object) -> object:
        if device != "cpu":
            torch.cuda.synchronize()
        return outputs

    def big_batch() -> object:
        with torch.no_grad():
            return finish(model(rows))

    def restore_then_forward() -> object:
        outputs = []
        for member in population:
            helpers.restore(model, member, layout)
            with torch.no_grad():
                outputs.append(model(inputs))
        helpers.restore(model, vector, layout)
        return finish(torch.stack(outputs))

    methods = {
        "f(population, digits): one call (vmap)": lambda: finish(f(members, inputs)),
        REFERENCE: big_batch,
        "restore, then forward, member by member": restore_then_forward,
        "f(member, digits), member by member": lambda: finish([f(m, inputs) for m in members]),
    }
    together = torch.as_tensor(f(members, inputs)).cpu().numpy()
    assert together.shape == (POPULATION, count, 10)
    expected = restore_then_forward().cpu().numpy()
    np.testing.assert_allclose(together, expected, rtol=0, atol=1e-5)
    return methods


def main() -> None:
    print(
        f"lesson MLP 784-50-50-10, 42,310 weights; population {POPULATION}; {ROUNDS} "
        "interleaved rounds: median ms, and the ratio's median (its range over the rounds)"
    )
    default_threads = torch.get_num_threads()
    for count in (DIGITS, MINI_BATCH):
        methods = methods_on("cpu", count)
        for threads in dict.fromkeys([1, default_threads]):
            torch.set_num_threads(threads)
            seconds = timed_rounds(methods)
            report(f"{count:,} digits, torch on the CPU, {threads} thread(s)", seconds)
        torch.set_num_threads(default_threads)
        if torch.cuda.is_available():
            seconds = timed_rounds(methods_on("cuda", count))
            report(f"{count:,} digits, torch on {torch.cuda.get_device_name()}", seconds)


if __name__ == "__main__":
    main()
