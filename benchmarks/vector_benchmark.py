"""flatten, restore, save and load against a plain copy and the usual one-liners.

Run: .venv/bin/python benchmarks/vector_benchmark.py [--quick] [--keras-backend torch]
(about 4 minutes on 2 CPU cores; --quick, small models only, well under a minute)

Every figure is a ratio between methods timed in the same run, interleaved (see
benchmarks/timing.py): the median of the per-round ratios, and in brackets the lowest
and highest. "memcpy" is a fresh copy of the model's bytes (``vector.copy()``: it
allocates, as a copy into new memory must). Peak memory is the rise of the process's
anonymous resident memory during one call (page cache not counted), as a multiple of
the model's bytes (or, for save and load, of its largest tensor).

- torch: the lessons' 784-50-50-10 MLP (42,310 parameters) and 6 x Linear(4096, 4096)
  (100.7M float32): flatten and restore against memcpy, parameters_to_vector and
  vector_to_parameters (which re-points the parameters at the vector, no copy; timed on
  a twin of the model, which it leaves aliasing the vector).
- Keras (the lessons' TensorFlow backend unless --keras-backend): the same two shapes,
  against get_weights (+ concatenate) and set_weights.
- save and load: a 537M-parameter torch model (2.1 GB; largest tensor 8192 x 8192,
  268 MB) streamed by helpers.save(path, model=...) against torch.save and safetensors'
  save_file of the state_dict; helpers.load(mmap=True) against torch.load(mmap=True),
  safetensors' load_file and helpers.load.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from timing import peak_extra_bytes, print_table, rounds
from torch import nn

import helpers


def mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def torch_case(title: str, model: nn.Module, repeats: int, calls: int) -> None:
    vector, layout = helpers.flatten(model)
    other = vector + 1  # restore something else than what is there
    source = torch.from_numpy(other)
    # vector_to_parameters makes the parameters views of `source`, so it runs on a twin:
    # on the model itself, every later restore would find the vector aliasing the model
    # (and pay for a defensive copy of it), and flatten would read `other`'s memory.
    twin = copy.deepcopy(model)
    methods = {
        "memcpy (vector.copy())": vector.copy,
        "helpers.flatten": lambda: helpers.flatten(model),
        "parameters_to_vector(...).numpy()": lambda: (
            nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
        ),
        "helpers.restore": lambda: helpers.restore(model, other, layout),
        "vector_to_parameters (re-points, no copy)": lambda: nn.utils.vector_to_parameters(
            source, twin.parameters()
        ),
    }
    seconds = rounds(methods, repeats, calls)
    memory = {
        name: peak_extra_bytes(methods[name]) / vector.nbytes
        for name in ("memcpy (vector.copy())", "helpers.flatten", "helpers.restore")
    }
    memory["helpers.restore(atomic=False)"] = (
        peak_extra_bytes(lambda: helpers.restore(model, other, layout, atomic=False))
        / vector.nbytes
    )
    print_table(
        f"{title}: {layout.size:,} float32 parameters ({vector.nbytes / 2**20:.1f} MiB)",
        seconds,
        ["memcpy (vector.copy())", "helpers.flatten", "parameters_to_vector(...).numpy()"],
        memory if vector.nbytes > 2**24 else None,
    )
    if vector.nbytes > 2**24:
        print(
            f"{'helpers.restore(atomic=False)':<44} {'':>10} "
            f"{'':>28} {'':>28} {'':>28} {memory['helpers.restore(atomic=False)']:>19.2f}x"
        )


def keras_model(widths: list[int]):  # noqa: ANN201 (keras is imported late)
    import keras

    keras.utils.set_random_seed(0)
    layers = [keras.layers.Dense(width) for width in widths[1:]]
    return keras.Sequential([keras.Input((widths[0],)), *layers])


def keras_case(title: str, widths: list[int], repeats: int, calls: int) -> None:
    import keras

    model = keras_model(widths)
    vector, layout = helpers.flatten(model)
    other = vector + 1
    weights = model.get_weights()
    methods = {
        "memcpy (vector.copy())": vector.copy,
        "helpers.flatten": lambda: helpers.flatten(model),
        "get_weights() + np.concatenate": lambda: np.concatenate(
            [array.ravel() for array in model.get_weights()]
        ),
        "helpers.restore": lambda: helpers.restore(model, other, layout),
        "set_weights": lambda: model.set_weights(weights),
    }
    seconds = rounds(methods, repeats, calls)
    big = vector.nbytes > 2**24
    memory = (
        {
            name: peak_extra_bytes(methods[name]) / vector.nbytes
            for name in ("helpers.restore", "set_weights")
        }
        if big
        else None
    )
    print_table(
        f"{title} (Keras {keras.__version__}, {keras.backend.backend()} backend): "
        f"{layout.size:,} float32 parameters ({vector.nbytes / 2**20:.1f} MiB)",
        seconds,
        ["memcpy (vector.copy())", "get_weights() + np.concatenate", "set_weights"],
        memory,
    )


def scale_model(width: int, depth: int) -> nn.Sequential:
    """depth x Linear(width, width) without biases, made fast: filled, not initialised."""
    with torch.device("meta"):
        model = nn.Sequential(*[nn.Linear(width, width, bias=False) for _ in range(depth)])
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for index, parameter in enumerate(model.parameters()):
            parameter.fill_(0.01 * (index + 1))
    return model


def save_and_load(width: int, depth: int, repeats: int) -> None:
    from safetensors.torch import load_file, save_file

    model = scale_model(width, depth)
    largest = max(p.numel() * p.element_size() for p in model.parameters())
    size = sum(p.numel() for p in model.parameters())
    folder = Path(tempfile.mkdtemp(prefix="vector-benchmark-"))
    files = {
        "helpers.save(.safetensors, model=)": folder / "helpers.safetensors",
        "helpers.save(.npz, model=)": folder / "helpers.npz",
        "torch.save(state_dict)": folder / "torch.pt",
        "safetensors save_file(state_dict)": folder / "plain.safetensors",
    }
    state = model.state_dict()
    savers = {
        "helpers.save(.safetensors, model=)": lambda: helpers.save(
            files["helpers.save(.safetensors, model=)"], model=model
        ),
        "helpers.save(.npz, model=)": lambda: helpers.save(
            files["helpers.save(.npz, model=)"], model=model
        ),
        "torch.save(state_dict)": lambda: torch.save(state, files["torch.save(state_dict)"]),
        "safetensors save_file(state_dict)": lambda: save_file(
            state, files["safetensors save_file(state_dict)"]
        ),
    }
    try:
        seconds = rounds(savers, repeats)
        memory = {name: peak_extra_bytes(method) / largest for name, method in savers.items()}
        title = (
            f"save at scale: {size / 1e6:,.0f}M float32 parameters "
            f"({size * 4 / 2**30:.2f} GiB; largest tensor {largest / 2**20:.0f} MiB)"
        )
        print_table(
            title,
            seconds,
            ["torch.save(state_dict)", "safetensors save_file(state_dict)"],
            memory,
            "peak extra / largest",
        )
        helpers_file = files["helpers.save(.safetensors, model=)"]
        loaders = {
            "helpers.load(mmap=True) (+ CRC check)": lambda: helpers.load(helpers_file, mmap=True),
            "helpers.load(.npz, mmap=True)": lambda: helpers.load(
                files["helpers.save(.npz, model=)"], mmap=True
            ),
            "helpers.load (into memory)": lambda: helpers.load(helpers_file),
            "torch.load(mmap=True)": lambda: torch.load(
                files["torch.save(state_dict)"], mmap=True, weights_only=True
            ),
            "safetensors load_file": lambda: load_file(files["safetensors save_file(state_dict)"]),
        }
        seconds = rounds(loaders, repeats)
        memory = {name: peak_extra_bytes(method) / largest for name, method in loaders.items()}
        print_table(
            "load at scale (the files above; the page cache is warm after the first round)",
            seconds,
            ["torch.load(mmap=True)", "safetensors load_file"],
            memory,
            "peak extra / largest",
        )
        vector, layout = helpers.load(helpers_file, mmap=True)
        restore_from_file = peak_extra_bytes(lambda: helpers.restore(model, vector, layout))
        print(
            f"restore from the memory-mapped vector: peak extra {restore_from_file / largest:.2f}x "
            "the largest tensor"
        )
    finally:
        for path in files.values():
            path.unlink(missing_ok=True)
        folder.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small models, few rounds (CI)")
    parser.add_argument(
        "--keras-backend", default="tensorflow", help="KERAS_BACKEND (default: tensorflow)"
    )
    arguments = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", arguments.keras_backend)
    torch.manual_seed(0)
    quick = arguments.quick
    repeats, small_calls = (3, 50) if quick else (7, 300)
    big_widths = [1024, 1024] if quick else [4096] * 7  # 1M or 100.7M weights
    print(
        f"vector_benchmark: torch {torch.__version__}, NumPy {np.__version__}, "
        f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}"
    )
    torch_case("torch, lesson MLP 784-50-50-10", mlp([784, 50, 50, 10]), repeats, small_calls)
    big = mlp(big_widths)
    torch_case(f"torch, {len(big_widths) - 1} x Linear", big, 3 if quick else 5, 1)
    del big
    keras_case("Keras, lesson MLP 784-50-50-10", [784, 50, 50, 10], repeats, small_calls // 5)
    keras_case(f"Keras, {len(big_widths) - 1} x Dense", big_widths, 3 if quick else 5, 1)
    if quick:
        save_and_load(1024, 4, 2)
    else:
        save_and_load(8192, 8, 3)
    print(f"\n(ratios: median [lowest-highest] of {repeats} or fewer interleaved rounds)")


if __name__ == "__main__":
    main()
