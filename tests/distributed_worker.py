"""One rank of the FSDP2 check: run by tests/test_distributed.py under torchrun, 2 CPU ranks.

    torchrun --nproc-per-node 2 tests/distributed_worker.py OUTPUT_FOLDER

Each rank shards a small model with ``fully_shard`` (gloo), compares what helpers.flatten
and helpers.restore do with the unsharded twin and with torch's own full state dict, and
writes what it saw to OUTPUT_FOLDER/rank<N>.json for the test to assert on.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    set_model_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

import helpers


def build() -> nn.Sequential:
    """Rows that do not split evenly over 2 ranks, a 1-row weight (rank 1 holds none of it),
    and batch-norm buffers, which FSDP leaves unsharded."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 7), nn.Tanh(), nn.Linear(7, 1)
    )


def shard(model: nn.Sequential, mesh: Any) -> nn.Sequential:
    for layer in model:
        if isinstance(layer, nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def local_digest(model: nn.Module) -> str:
    """A hash of this rank's own pieces (local shards and buffers): no collective."""
    hasher = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
        hasher.update(name.encode() + local.detach().contiguous().numpy().tobytes())
    return hasher.hexdigest()


def expected_shard(array: np.ndarray, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s rows under fully_shard's dim-0 split (torch.chunk; maybe none)."""
    chunks = torch.from_numpy(array).chunk(world)
    return chunks[rank] if rank < len(chunks) else torch.from_numpy(array)[:0]


def message_of(action: Any) -> str:
    try:
        action()
    except (helpers.LayoutError, TypeError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    return "no error"


def main(output: Path) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    mesh = init_device_mesh("cpu", (world,))
    reference = build().train()
    batch = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference(batch)  # batch-norm statistics, the same on both ranks
    model = shard(copy.deepcopy(reference), mesh)
    facts: dict[str, Any] = {"rank": rank, "world": world}
    facts["local_shapes"] = {
        name: list(tensor.to_local().shape)
        for name, tensor in model.state_dict().items()
        if hasattr(tensor, "to_local")
    }

    # flatten: the full vector on every rank, equal to the unsharded model's, bit for bit.
    vector, layout = helpers.flatten(model)
    expected, expected_layout = helpers.flatten(reference)
    facts["flatten_equals_unsharded"] = bool(np.array_equal(vector, expected))
    facts["layout_equals_unsharded"] = layout == expected_layout
    facts["vector_sha256"] = hashlib.sha256(vector.tobytes()).hexdigest()
    everything, everything_layout = helpers.flatten(model, include="all")
    facts["flatten_all_equals_unsharded"] = bool(
        np.array_equal(everything, helpers.flatten(reference, include="all")[0])
    )

    # torch's own gather: the full state dict lands on rank 0 only (cpu_offload).
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = get_model_state_dict(model, options=options)
    facts["torch_full_state_dict_keys"] = len(state)
    if state:
        gathered = torch.cat([state[name].reshape(-1) for name in layout.names]).numpy()
        facts["torch_gather_equals_flatten"] = bool(np.array_equal(gathered, vector))

    # restore: every rank passes the same vector and keeps its own piece of it.
    target = np.random.default_rng(7).standard_normal(layout.size).astype(np.float32)
    helpers.restore(model, target, layout)
    facts["restore_then_flatten_equals_target"] = bool(
        np.array_equal(helpers.flatten(model)[0], target)
    )
    arrays = helpers.unflatten(target, layout)
    facts["local_shards_are_chunks_of_target"] = all(
        torch.equal(tensor.to_local(), expected_shard(arrays[name], rank, world))
        for name, tensor in model.state_dict().items()
        if hasattr(tensor, "to_local")
    )
    twin = copy.deepcopy(reference)
    helpers.restore(twin, target, layout)
    with torch.no_grad():
        facts["forward_equals_restored_twin"] = bool(
            torch.equal(model.eval()(batch), twin.eval()(batch))
        )

    # The same vector through torch's loader (rank 0's full state dict, broadcast).
    other = shard(build(), mesh)
    full = {name: torch.from_numpy(array) for name, array in arrays.items()} if rank == 0 else {}
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False)
    set_model_state_dict(other, full, options=options)  # strict=False: no buffers given
    facts["torch_broadcast_load_equals_restore"] = all(
        torch.equal(ours.to_local(), other.state_dict()[name].to_local())
        for name, ours in model.state_dict().items()  # state_dict() reshards first
        if hasattr(ours, "to_local")
    )

    # Refusals: together on both ranks, nothing written.
    before = local_digest(model)
    differing = target + np.float32(rank)  # a rank-dependent vector
    facts["different_vectors"] = message_of(lambda: helpers.restore(model, differing, layout))
    facts["wrong_length"] = message_of(lambda: helpers.restore(model, target[:-1], layout))
    facts["unchanged_after_refusals"] = local_digest(model) == before
    with torch.no_grad():
        model[1].running_mean.add_(rank)  # FSDP does not keep buffers in step across ranks
    facts["buffers_differ"] = message_of(lambda: helpers.flatten(model, include="all"))
    facts["restore_all_with_buffers_differing"] = message_of(
        lambda: helpers.restore(model, everything, everything_layout)
    )
    dist.broadcast(model[1].running_mean, src=0)  # in step again (rank 0 added 0)
    again = helpers.unflatten(helpers.flatten(model, include="all")[0], everything_layout)
    before_buffers = helpers.unflatten(everything, everything_layout)
    facts["buffers_in_step_flatten_all_again"] = all(
        np.array_equal(again[e.name], before_buffers[e.name])
        for e in everything_layout
        if not e.trainable
    )
    facts["flat_view"] = message_of(lambda: helpers.flat_view(model))

    # Train both, the same batch on each rank: the vectors stay equal, bit for bit.
    twin = build()
    helpers.restore(twin, *helpers.flatten(model, include="all"))
    for network in (model, twin):
        network.train()
        optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9)
        for _ in range(2):
            optimizer.zero_grad()
            network(batch).square().mean().backward()
            optimizer.step()
    facts["trained_equals_unsharded_twin"] = bool(
        np.array_equal(helpers.flatten(model, include="all")[0], helpers.flatten(twin, "all")[0])
    )

    (output / f"rank{rank}.json").write_text(json.dumps(facts, indent=1))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
