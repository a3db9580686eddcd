"""Lesson 11 (a flat view of the weights, sharded models, and big files): its default run,
and a cheap one with another seed, fewer and smaller steps, and no distributed run (section 7
starts three Python processes; tests/test_distributed.py runs the same machinery already)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("papermill")

from notebook_runner import LessonRun, lesson_fixture  # noqa: E402

run = lesson_fixture(
    "11_at_scale_flat_view_and_sharding.ipynb", SEED=1, STEPS=2, BATCH=50, RUN_DISTRIBUTED=False
)

N_WEIGHTS = 784 * 50 + 50 + 50 * 50 + 50 + 50 * 10 + 10


def test_parameters_reach_the_notebook(run: LessonRun) -> None:
    p, r = run.parameters, run.results
    assert [r[key] for key in ("SEED", "STEPS", "BATCH", "RUN_DISTRIBUTED")] == [
        p[key] for key in ("SEED", "STEPS", "BATCH", "RUN_DISTRIBUTED")
    ]
    assert r["n_weights"] == N_WEIGHTS == 42_310
    assert all(len(losses) == p["STEPS"] for losses in r["losses"].values())


def test_flatten_copies_and_vector_to_parameters_aliases(run: LessonRun) -> None:
    r = run.results
    assert r["flatten_copies"] is True
    assert r["v2p_aliased"] is True
    assert r["v2p_dtype_after"] == "float64" and r["forward_error_names_dtype"] is True


def test_the_flat_view_is_the_weights(run: LessonRun) -> None:
    r = run.results
    for key in ("view_places", "view_same_objects", "view_equals_flatten"):
        assert r[key] is True, key
    assert r["reading_copies_nothing"] is True and r["write_halved"] is True
    assert r["undo"] == {"own_memory": True, "values_kept": True}
    assert r["moved_refused"] is True  # .half() moved the model out of the buffer


def test_training_through_the_vector_equals_an_unviewed_twin(run: LessonRun) -> None:
    r = run.results
    assert r["grad_views"] is True and r["sgd_step_bit_equal"] is True
    assert r["two_roundings_below_1e-7"] is True
    viewed, twin = r["losses"]["flat-viewed"], r["losses"]["un-viewed twin"]
    assert viewed == twin and all(1.5 < loss < 3.0 for loss in viewed)  # near ln 10 = 2.30
    assert r["trained_equal"] is True and r["still_views"] is True


def test_set_to_none_drops_the_views_and_reading_again_gathers_them(run: LessonRun) -> None:
    assert run.results["set_to_none"] == {
        "dropped": True,
        "outside": True,
        "stale": True,
        "regathered": True,
    }


def test_a_write_between_forward_and_backward(run: LessonRun) -> None:
    off_theta, off_scaled = run.results["mixed_off"]
    assert min(off_theta, off_scaled) > 0.01  # silently neither gradient
    assert run.results["parameter_write_refused"] is True  # through a parameter: refused


def test_fsdp2_run_gives_every_rank_the_unsharded_vector(run: LessonRun) -> None:
    r = run.results
    if not run.parameters["RUN_DISTRIBUTED"]:
        assert r["rank_lines"] == 0 and r["rank_rows"] == {} and r["stored_per_rank"] == []
        return
    assert r["rank_lines"] == 26  # 13 lines from each rank
    assert r["gathered_is_notebook_vector"] is True and r["rank_checks_pass"] is True
    assert r["stored_per_rank"] == [N_WEIGHTS // 2] * 2
    for rank, first in (("rank 0", 0), ("rank 1", 1)):
        held = r["rank_rows"][rank]
        assert sorted(held) == ["0.bias", "0.weight", "2.bias", "2.weight", "4.bias", "4.weight"]
        for name, (start, stop, total) in held.items():
            assert total == (10 if name.startswith("4.") else 50)
            assert (start, stop) == (first * total // 2, (first + 1) * total // 2), name


def test_saving_from_the_model_writes_flattens_file_within_one_tensor(run: LessonRun) -> None:
    r = run.results
    assert r["save_model_equals_flatten"] == {".npz": True, ".safetensors": True}
    assert r["save_model_below_largest_tensor"] is True
    assert r["save_flatten_at_least_vector"] is True  # flattening first holds the whole vector


def test_a_mapped_vector_is_read_only_checked_and_restores(run: LessonRun) -> None:
    r = run.results
    assert r["mapped"] == {
        "memmap": True,
        "owns_memory": False,
        "writeable": False,
        "write_refused": True,
    }
    assert r["load_mmap_below_largest_tensor"] is True and r["load_read_at_least_vector"] is True
    assert r["compressed_npz_refused"] is True
    assert r["restored_outputs"] == {"differed": True, "equal": True}
