"""Shard the lessons' 784-50-50-10 MLP with FSDP2 over two CPU processes, and take its
weights as one vector: the full vector on every rank, equal to the unsharded model's.

Run it from the repository root in the project's environment, where ``make`` installed
``helpers`` (about 6 CPU-seconds, most of it starting Python and torch in three processes;
no GPU, no network beyond this machine's loopback):

    .venv/bin/torchrun --standalone --nproc-per-node 2 scripts/fsdp2_vector.py [--seed 0]

torchrun starts two copies of this script, rank 0 and rank 1, which talk over gloo, the
CPU backend of ``torch.distributed``. Each copy builds the same MLP (lesson 09's
``build_mlp(seed)``), shards it with ``fully_shard`` (every tensor cut by rows, dim 0,
each rank keeping its own rows), then

1. prints which rows of each tensor it holds, and checks they are the unsharded model's;
2. calls ``helpers.flatten``: a collective (every rank must call it) that all-gathers each
   tensor, so every rank gets the full 42,310-value vector; it checks that vector against
   the unsharded model's, bit for bit, and shows that ``helpers.flat_view`` refuses the
   sharded model (a rank holds pieces of tensors, not the vector);
3. calls ``helpers.restore`` with another vector (the same on every rank): each rank writes
   its own rows only; it checks its rows, the vector read back, and the sharded model's
   outputs on 100 test digits against an unsharded twin holding the same vector.

Every line it prints starts with ``rank N:``; the ranks print in turn, rank 0 first. It
exits with status 1 if a check failed. Lesson 11 runs it
(notebooks/11_at_scale_flat_view_and_sharding.ipynb).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import socket
import sys

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import fully_shard

import helpers


def build_mlp(seed: int) -> nn.Sequential:
    """The 784-50-50-10 ReLU network of lessons 09 and 11, drawn as in lesson 01.

    >>> sum(p.numel() for p in build_mlp(0).parameters())
    42310
    """
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 50), nn.ReLU(), nn.Linear(50, 10)
    )
    for layer in model[::2]:  # the three Linear layers: N(0, 0.05²) weights, zero biases
        nn.init.normal_(layer.weight, 0.0, 0.05)
        nn.init.zeros_(layer.bias)
    return model


def shard(model: nn.Sequential, mesh: DeviceMesh) -> nn.Sequential:
    """FSDP2: each Linear layer its own unit, then the whole model; parameters become DTensors."""
    for layer in model[::2]:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def held_rows(model: nn.Module) -> dict[str, tuple[int, int, tuple[int, ...]]]:
    """{tensor name: (first row, row after the last, full shape)} of this rank's piece.

    Every rank tells the others how many rows it holds (a collective); rank r's rows
    follow those of ranks 0 .. r - 1.
    """
    rows = {}
    for name, tensor in model.state_dict().items():
        counts: list[int] = [0] * dist.get_world_size()
        dist.all_gather_object(counts, tensor.to_local().shape[0])
        start = sum(counts[: dist.get_rank()])
        rows[name] = (start, start + counts[dist.get_rank()], tuple(tensor.shape))
    return rows


def pieces_match(model: nn.Module, full: dict[str, np.ndarray], rows: dict) -> bool:
    """Whether this rank's piece of every tensor is exactly those rows of ``full``."""
    return all(
        np.array_equal(tensor.to_local().detach().numpy(), full[name][start:stop])
        for name, tensor in model.state_dict().items()
        for start, stop, _ in [rows[name]]
    )


def digest(vector: np.ndarray) -> str:
    """The first 12 hex digits of the vector's SHA-256: equal bits, equal digest."""
    return hashlib.sha256(vector.tobytes()).hexdigest()[:12]


def report(seed: int) -> list[tuple[str, bool]]:
    """Run the checks on this rank; return its lines, each with whether its check passed."""
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    unsharded = build_mlp(seed)
    model = shard(copy.deepcopy(unsharded), mesh)
    lines: list[tuple[str, bool]] = []

    rows = held_rows(model)
    unsharded_arrays = {k: v.detach().numpy() for k, v in unsharded.state_dict().items()}
    for name, (start, stop, shape) in rows.items():
        piece = " × ".join(str(n) for n in (stop - start, *shape[1:]))
        held_here = f"rows {start}-{stop - 1}" if stop > start else "no rows"
        lines.append((f"{name} {held_here} of {shape[0]} ({piece})", True))
    held = sum(t.to_local().numel() for t in model.state_dict().values())
    total = sum(t.numel() for t in model.state_dict().values())
    lines.append((f"stores {held:,} of the {total:,} values", held < total))
    same = pieces_match(model, unsharded_arrays, rows)
    lines.append((f"its rows are the unsharded model's: {same}", same))

    vector, layout = helpers.flatten(model)  # collective: all-gathers every tensor
    expected, expected_layout = helpers.flatten(unsharded)
    equal = bool(np.array_equal(vector, expected)) and layout == expected_layout
    text = f"flatten gave {vector.size:,} values, sha256 {digest(vector)}"
    lines.append((f"{text}, the unsharded model's bit for bit: {equal}", equal))
    refusal = flat_view_refusal(model)
    lines.append((refusal, "refuses" in refusal))

    # Another vector, the same on every rank (a seeded draw): each rank writes its rows.
    target = np.random.default_rng(seed + 1).normal(0, 0.05, layout.size).astype(np.float32)
    helpers.restore(model, target, layout)
    arrays = helpers.unflatten(target, layout)
    same = pieces_match(model, arrays, rows)
    lines.append((f"restore wrote its rows of a new vector: {same}", same))
    read_back = helpers.flatten(model)[0]
    same = bool(np.array_equal(read_back, target))
    lines.append((f"flatten gives the new vector back, sha256 {digest(read_back)}: {same}", same))
    same = outputs_match(model, unsharded, target, layout)
    lines.append((f"outputs equal an unsharded twin holding it: {same}", same))
    return lines


def flat_view_refusal(model: nn.Module) -> str:
    """What ``helpers.flat_view`` says of a sharded model: one rank holds pieces, not a vector."""
    try:
        helpers.flat_view(model)
    except TypeError as error:
        return "flat_view refuses it: " + str(error).split(";")[0].removeprefix("flat_view: ")
    return "flat_view accepted it"


def outputs_match(model: nn.Module, twin: nn.Module, vector: np.ndarray, layout) -> bool:
    """Whether the sharded model and ``twin`` restored to ``vector`` agree on 100 test digits."""
    (_, _), (images, _) = helpers.data.load_mnist()
    digits = torch.from_numpy(images[:100].reshape(100, -1).astype(np.float32) / 255)
    helpers.restore(twin, vector, layout)
    with torch.no_grad():
        return torch.equal(model(digits), twin(digits))  # FSDP2 gathers for the forward pass


def use_loopback() -> None:
    """All ranks run on this machine: let gloo talk over loopback, not the host's network."""
    loopback = [name for _, name in socket.if_nameindex() if name.startswith("lo")]
    if loopback:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", loopback[0])


def main(arguments: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="the MLP's initial weights")
    seed = parser.parse_args(arguments).seed
    use_loopback()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    try:
        lines = report(seed)
        rank = dist.get_rank()
        for turn in range(dist.get_world_size()):  # one rank at a time: lines stay whole
            if turn == rank:
                sys.stdout.write("".join(f"rank {rank}: {text}\n" for text, _ in lines))
                sys.stdout.flush()
            dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0 if all(passed for _, passed in lines) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
