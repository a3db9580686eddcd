"""FSDP2 on two CPU processes: flatten and restore of a sharded model equal the unsharded one's.

The test launches ``torchrun --nproc-per-node 2 tests/distributed_worker.py`` on the gloo
backend, on 127.0.0.1 only, and asserts on the facts each rank writes (see the worker).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
    pytest.skip("needs torch.distributed with the gloo backend", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD_SECONDS = 30 * 60  # only against a deadlock; a normal run takes seconds
SHARDED = ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias"]
ROWS = {"0": 3, "1": 3, "3": 7, "5": 1}  # rows of each layer's tensors, split over the ranks


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def loopback_interface() -> str | None:
    """gloo connects over the interface it finds for the host name unless told: use loopback."""
    names = [name for _, name in socket.if_nameindex() if name.startswith("lo")]
    return names[0] if names else None


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    output = tmp_path_factory.mktemp("fsdp2")
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    if loopback_interface():
        environment["GLOO_SOCKET_IFNAME"] = loopback_interface()
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",  # what the torchrun command runs
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        str(ROOT / "tests" / "distributed_worker.py"),
        str(output),
    ]
    finished = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=HANG_GUARD_SECONDS,
    )
    assert finished.returncode == 0, finished.stdout[-4000:] + finished.stderr[-8000:]
    return [json.loads((output / f"rank{rank}.json").read_text()) for rank in (0, 1)]


def test_each_rank_holds_only_its_rows(ranks):
    assert [facts["rank"] for facts in ranks] == [0, 1] and ranks[0]["world"] == 2
    for name in SHARDED:
        rows = ROWS[name.split(".")[0]]
        shapes = [facts["local_shapes"][name] for facts in ranks]
        assert shapes[0][0] + shapes[1][0] == rows  # 3 rows: 2 + 1; 7: 4 + 3; 1: 1 + 0
        assert shapes[0][0] == -(-rows // 2)
    assert ranks[1]["local_shapes"]["5.weight"] == [0, 7]  # rank 1 holds none of it


def test_flatten_gives_every_rank_the_unsharded_vector_bit_for_bit(ranks):
    for facts in ranks:
        assert facts["flatten_equals_unsharded"] is True
        assert facts["layout_equals_unsharded"] is True
        assert facts["flatten_all_equals_unsharded"] is True
    assert ranks[0]["vector_sha256"] == ranks[1]["vector_sha256"]


def test_torch_full_state_dict_gathers_the_same_values_on_rank_0_only(ranks):
    assert ranks[0]["torch_full_state_dict_keys"] == 11  # 8 parameters and 3 buffers
    assert ranks[0]["torch_gather_equals_flatten"] is True
    assert ranks[1]["torch_full_state_dict_keys"] == 0


def test_restore_writes_each_rank_its_rows_as_torch_broadcast_load_does(ranks):
    for facts in ranks:
        assert facts["restore_then_flatten_equals_target"] is True
        assert facts["local_shards_are_chunks_of_target"] is True
        assert facts["forward_equals_restored_twin"] is True
        assert facts["torch_broadcast_load_equals_restore"] is True
        assert facts["trained_equals_unsharded_twin"] is True


def test_what_is_ambiguous_is_refused_on_every_rank_and_changes_nothing(ranks):
    for facts in ranks:
        assert facts["different_vectors"] == (
            "LayoutError: tensor '0.weight': the ranks hold different values "
            "(every rank must pass the same vector to restore)"
        )
        assert facts["wrong_length"] == (
            "LayoutError: vector: expected 60 values for this layout, got 59"
        )
        assert facts["unchanged_after_refusals"] is True
        for key in ("buffers_differ", "restore_all_with_buffers_differing"):
            assert facts[key].startswith(
                "LayoutError: tensor '1.running_mean': the ranks hold different values "
                "(it is not sharded"
            )
        assert facts["buffers_in_step_flatten_all_again"] is True
        assert facts["flat_view"].startswith("TypeError: flat_view: tensor '0.weight' is a DTensor")
