"""python -m helpers inspect / diff on the four kinds of weight file, and on damaged ones."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import helpers
from helpers.__main__ import main
from helpers._inspect import InspectError, compare, describe, read_weights

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(12)
WEIGHTS = {
    "dense.kernel": RNG.normal(size=(4, 3)).astype(np.float32),
    "dense.bias": RNG.normal(size=3).astype(np.float32),
    "steps": np.array(7, dtype=np.int64),
}


def write_keras_like_h5(path: Path, layers: dict[str, list[np.ndarray]]) -> Path:
    """Lay arrays out as Keras 3 save_weights does: layers/<layer>/vars/<index>.

    test_real_keras_files_read_like_the_h5py_written_ones checks this against Keras.
    """
    with h5py.File(path, "w") as h5:
        h5.create_group("vars").attrs["name"] = "sequential"
        for layer, arrays in layers.items():
            variables = h5.create_group(f"layers/{layer}/vars")
            variables.attrs["name"] = layer
            for index, array in enumerate(arrays):
                variables[str(index)] = array
    return path


def keras_layers() -> dict[str, list[np.ndarray]]:
    """Dense(3), BatchNormalization(), Dense(2) on 4 inputs, as Keras names their groups."""
    rng = np.random.default_rng(5)
    shapes = [(4, 3), (3,), (3,), (3,), (3,), (3,), (3, 2), (2,)]
    arrays = [rng.normal(size=shape).astype(np.float32) for shape in shapes]
    return {"dense": arrays[:2], "batch_normalization": arrays[2:6], "dense_1": arrays[6:]}


def test_a_helpers_vector_file_shows_its_own_layout(tmp_path):
    vector, layout = helpers.flatten(WEIGHTS, order="F")
    for suffix in (".npz", ".safetensors"):
        weights = read_weights(helpers.save(tmp_path / f"v{suffix}", vector, layout), values=True)
        assert weights.layout == layout and weights.trainable_recorded
        text = describe(weights)
        assert str(layout) in text and "trainable: not recorded" not in text
        for name, array in WEIGHTS.items():
            np.testing.assert_array_equal(weights.tensors[name].values, array, strict=True)
        assert weights.tensors["dense.kernel"].nbytes == 12 * 4  # its share of the vector


def test_a_vector_file_that_helpers_load_refuses_is_refused_with_its_reason(tmp_path):
    vector, layout = helpers.flatten(WEIGHTS)
    document = json.loads(layout.to_json())
    document["entries"][0]["shape"] = [3, 4]
    np.savez(tmp_path / "edited.npz", vector=vector, layout=np.array(json.dumps(document)))
    with pytest.raises(InspectError, match=r"^edited.npz: holds a vector and a layout, .*refuses"):
        read_weights(tmp_path / "edited.npz")


def test_a_plain_safetensors_file_is_laid_out_as_flatten_lays_out_its_dict(tmp_path):
    from safetensors.numpy import save_file

    save_file(WEIGHTS, tmp_path / "plain.safetensors", metadata={"source": "test"})
    weights = read_weights(tmp_path / "plain.safetensors", values=True)
    expected = helpers.flatten({name: WEIGHTS[name] for name in weights.tensors})[1]
    assert weights.layout == expected and not weights.trainable_recorded
    assert sorted(weights.tensors) == sorted(WEIGHTS)
    text = describe(weights)
    assert str(expected) in text and "trainable: not recorded in a safetensors" in text
    assert "metadata: source=test" in text
    assert "total: 16 parameters in 3 tensors, 68 bytes of tensor data" in text
    for name, array in WEIGHTS.items():
        np.testing.assert_array_equal(weights.tensors[name].values, array, strict=True)


def test_bfloat16_and_float8_safetensors_are_described_and_read(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    values = torch.tensor([[1.5, -2.25], [3.0, 0.0078125]], dtype=torch.bfloat16)
    tensors = {"half": values, "eight": torch.zeros(3, dtype=torch.float8_e4m3fn)}
    save_file(tensors, tmp_path / "low.safetensors")
    weights = read_weights(tmp_path / "low.safetensors", values=True)
    assert weights.tensors["half"].dtype == "bfloat16" and weights.tensors["half"].nbytes == 8
    np.testing.assert_array_equal(weights.tensors["half"].values, values.float().numpy())
    assert weights.others["eight"].what == "tensor of float8_e4m3fn, shape (3,)"
    assert weights.layout.names == ["half"] and weights.layout.dtype == "float32"


def test_a_torch_state_dict_and_a_nested_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    state = net.state_dict()
    torch.save(state, tmp_path / "net.pt")
    weights = read_weights(tmp_path / "net.pt", values=True)
    assert list(weights.tensors) == list(state)
    assert weights.tensors["1.num_batches_tracked"].dtype == "int64"
    for name, tensor in state.items():
        np.testing.assert_array_equal(weights.tensors[name].values, tensor.numpy(), strict=True)
    checkpoint = {"model": state, "epoch": 3, "optimizer": {"param_groups": [{"lr": 0.1}]}}
    torch.save(checkpoint, tmp_path / "checkpoint.pth")
    nested = read_weights(tmp_path / "checkpoint.pth")
    assert list(nested.tensors) == [f"model.{name}" for name in state]
    assert {name: other.what for name, other in nested.others.items()} == {
        "epoch": "int 3",
        "optimizer.param_groups.0.lr": "float 0.1",
    }


def test_torch_files_holding_objects_are_refused_without_unpickling(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.Linear(2, 1), tmp_path / "model.pt")
    with pytest.raises(InspectError, match=r"model.pt: refused: .*torch.nn.modules.linear.Linear"):
        read_weights(tmp_path / "model.pt")
    torch.save(torch.zeros(3), tmp_path / "bare.bin")
    with pytest.raises(InspectError, match=r"bare.bin: expected a state_dict .*, got Tensor"):
        read_weights(tmp_path / "bare.bin")


def test_a_keras_weights_file_written_with_h5py(tmp_path):
    layers = keras_layers()
    weights = read_weights(write_keras_like_h5(tmp_path / "m.weights.h5", layers), values=True)
    expected = [f"layers/{layer}/vars/{i}" for layer in layers for i in range(len(layers[layer]))]
    assert sorted(weights.tensors) == sorted(expected)
    # Natural order: the batch-norm layer's group sorts first, and vars/10 would follow vars/9.
    assert list(weights.tensors)[:2] == ["layers/batch_normalization/vars/0"] + [
        "layers/batch_normalization/vars/1"
    ]
    for layer, arrays in layers.items():
        for index, array in enumerate(arrays):
            np.testing.assert_array_equal(
                weights.tensors[f"layers/{layer}/vars/{index}"].values, array
            )
    assert weights.layout.size == 4 * 3 + 3 + 4 * 3 + 3 * 2 + 2


def test_keras_h5_numbers_sort_as_numbers_and_links_are_refused(tmp_path):
    path = tmp_path / "many.weights.h5"
    write_keras_like_h5(path, {"dense": [np.full(1, i, np.float32) for i in range(12)]})
    names = list(read_weights(path).tensors)
    assert names == [f"layers/dense/vars/{i}" for i in range(12)]
    with h5py.File(path, "a") as h5:
        h5["layers/other"] = h5py.ExternalLink("/etc/passwd", "/")
    with pytest.raises(InspectError, match=r"many.weights.h5: layers/other is a ExternalLink"):
        read_weights(path)


# Keras's own saving code calls np.array on TensorFlow tensors, which NumPy 2 warns about.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_real_keras_files_read_like_the_h5py_written_ones(tmp_path):
    keras = pytest.importorskip("keras")
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()]
        + [keras.layers.Dense(2)]
    )
    layers = keras_layers()
    arrays = [array for arrays in layers.values() for array in arrays]
    for variable, array in zip(model.weights, arrays, strict=True):
        variable.assign(array)
    model.save_weights(tmp_path / "real.weights.h5")
    model.save(tmp_path / "real.keras")
    mimic = read_weights(write_keras_like_h5(tmp_path / "mimic.weights.h5", layers), values=True)
    for name in ("real.weights.h5", "real.keras"):
        real = read_weights(tmp_path / name, values=True)
        assert compare(real, mimic).same, describe(real)
    archive = read_weights(tmp_path / "real.keras")
    assert archive.format == f"Keras model (.keras, saved by Keras {keras.__version__})"


def test_a_plain_npz_and_one_holding_python_objects(tmp_path):
    np.savez(tmp_path / "plain.npz", **WEIGHTS, label=np.array("not a number"))
    weights = read_weights(tmp_path / "plain.npz", values=True)
    assert list(weights.tensors) == list(WEIGHTS) and weights.layout.dtype == "float32"
    assert weights.others["label"].what == "array of <U12, shape ()"
    np.savez(tmp_path / "objects.npz", bad=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InspectError, match="objects.npz: holds an array of Python objects"):
        read_weights(tmp_path / "objects.npz", values=True)


def test_diff_reports_each_kind_of_difference_with_its_size(tmp_path, capsys):
    from safetensors.numpy import save_file

    changed = dict(WEIGHTS, **{"dense.kernel": WEIGHTS["dense.kernel"] * 1.5})
    changed["dense.bias"] = WEIGHTS["dense.bias"].astype(np.float64)
    del changed["steps"]
    changed["extra"] = np.zeros((2, 2), np.float32)
    save_file(WEIGHTS, tmp_path / "a.safetensors")
    save_file(changed, tmp_path / "b.safetensors")
    a, b = (read_weights(tmp_path / f"{n}.safetensors", values=True) for n in "ab")
    rows = {row.name: row for row in compare(a, b).tensors}
    kernel = WEIGHTS["dense.kernel"].astype(np.float64)
    assert rows["dense.kernel"].status == "differs"
    assert rows["dense.kernel"].max_abs == pytest.approx(np.abs(kernel * 0.5).max(), rel=1e-6)
    assert rows["dense.kernel"].relative == pytest.approx(0.5, rel=1e-6)
    assert (rows["dense.bias"].status, rows["dense.bias"].max_abs) == ("dtype", 0.0)
    assert rows["steps"].status == "only in A" and rows["extra"].status == "only in B"
    assert main(["diff", str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")]) == 1
    printed = capsys.readouterr().out
    assert "differs    dense.kernel" in printed and "float32 vs float64" in printed
    assert main(["diff", str(tmp_path / "a.safetensors"), str(tmp_path / "a.safetensors")]) == 0
    assert capsys.readouterr().out.endswith("3 tensors: 3 same; no differences\n")


def test_diff_counts_shared_nan_as_equal_and_shape_changes_without_numbers(tmp_path, capsys):
    np.savez(tmp_path / "a.npz", w=np.array([np.nan, 1.0]), v=np.zeros(3), z=np.zeros(2))
    np.savez(tmp_path / "b.npz", w=np.array([np.nan, 1.0]), v=np.zeros(4), z=[0.0, np.nan])
    assert main(["diff", "--json", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]) == 1
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["tensors"]}
    assert rows["w"]["status"] == "same"
    assert (rows["v"]["status"], rows["v"]["max_abs"]) == ("shape", None)
    assert rows["z"]["max_abs"] == "nan" and rows["z"]["relative"] == "nan"


def test_diff_of_two_vector_files_compares_their_layouts_too(tmp_path):
    vector, layout = helpers.flatten(WEIGHTS)
    helpers.save(tmp_path / "c.npz", vector, layout)
    helpers.save(tmp_path / "f.npz", *helpers.flatten(WEIGHTS, order="F"))
    comparison = compare(*(read_weights(tmp_path / n, values=True) for n in ("c.npz", "f.npz")))
    assert comparison.layout_notes == ["order: C vs F"] and not comparison.same
    assert {row.status for row in comparison.tensors} == {"same"}


def test_inspect_json_carries_the_layout_and_the_summary(tmp_path, capsys):
    np.savez(tmp_path / "w.npz", **WEIGHTS)
    assert main(["inspect", "--json", str(tmp_path / "w.npz")]) == 0
    shown = json.loads(capsys.readouterr().out)
    layout = helpers.Layout.from_json(json.dumps(shown["layout"]))
    assert layout.names == list(WEIGHTS) and [e.offset for e in layout] == [0, 12, 15]
    assert shown["summary"] == {
        "tensors": 3,
        "parameters": 16,
        "bytes": 12 * 4 + 3 * 4 + 8,
        "dtypes": {"float32": {"tensors": 2, "values": 15}, "int64": {"tensors": 1, "values": 1}},
    }


def test_the_module_runs_as_a_command_and_imports_no_framework_for_npz(tmp_path):
    np.savez(tmp_path / "w.npz", **WEIGHTS)
    # python -m helpers inspect FILE, then a look at what it imported.
    script = (
        "import runpy, sys\n"
        "sys.argv = ['helpers', 'inspect', sys.argv[1]]\n"
        "try:\n    runpy.run_module('helpers', run_name='__main__')\n"
        "except SystemExit as done:\n"
        "    frameworks = ('torch', 'tensorflow', 'keras', 'h5py', 'safetensors')\n"
        "    print('imported:', [name for name in frameworks if name in sys.modules])\n"
        "    raise\n"
    )
    command = [sys.executable, "-c", script, str(tmp_path / "w.npz")]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "w.npz: .npz," in done.stdout and "imported: []" in done.stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("weights.txt", r"weights.txt: expected a name ending in one of .safetensors, .npz"),
        ("absent.pt", r"absent.pt: no such file"),
        ("folder.npz", r"folder.npz: is a directory"),
    ],
)
def test_unknown_missing_and_directory_paths_are_named(tmp_path, capsys, name, message):
    (tmp_path / "weights.txt").write_text("hello")
    (tmp_path / "folder.npz").mkdir()
    with pytest.raises(InspectError, match=message):
        read_weights(tmp_path / name)
    assert main(["inspect", str(tmp_path / name)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_an_npz_that_is_not_a_zip_says_what_it_is(tmp_path):
    with (tmp_path / "single.npz").open("wb") as stream:
        np.save(stream, np.zeros(3))
    (tmp_path / "text.npz").write_text("kernel,bias")
    with pytest.raises(InspectError, match=r"^single.npz: it holds a single array \(np.save\)"):
        read_weights(tmp_path / "single.npz")
    with pytest.raises(InspectError, match=r"^text.npz: not a zip archive .* b'kernel,b'"):
        read_weights(tmp_path / "text.npz")


# --- damaged files: every format, random, truncated and mutated bytes ---------------------


def valid_files() -> dict[str, bytes]:
    """One small valid file of each kind, as bytes."""
    import torch
    from safetensors.numpy import save_file

    folder = Path(tempfile.mkdtemp())
    vector, layout = helpers.flatten(WEIGHTS)
    helpers.save(folder / "vector.npz", vector, layout)
    helpers.save(folder / "vector.safetensors", vector, layout)
    save_file(WEIGHTS, folder / "plain.safetensors")
    np.savez(folder / "plain.npz", **WEIGHTS)
    torch.save({name: torch.from_numpy(array) for name, array in WEIGHTS.items()}, folder / "w.pt")
    write_keras_like_h5(folder / "w.weights.h5", keras_layers())
    with __import__("zipfile").ZipFile(folder / "w.keras", "w") as archive:
        archive.writestr("metadata.json", '{"keras_version": "3.15.1"}')
        archive.write(folder / "w.weights.h5", "model.weights.h5")
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


VALID = valid_files()
FUZZ = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def read_damaged(folder: Path, name: str, content: bytes) -> None:
    """Reading must either succeed or raise InspectError naming the file; nothing else."""
    path = folder / name
    path.write_bytes(content)
    try:
        weights = read_weights(path, values=True)
    except InspectError as error:
        assert str(error).startswith(f"{name}:"), str(error)
        return
    assert all(t.values is not None and t.values.shape == t.shape for t in weights.tensors.values())
    assert weights.layout.size == sum(math.prod(t.shape) for t in weights.tensors.values())


@pytest.mark.parametrize("name", sorted(VALID))
@FUZZ
@given(data=st.data())
def test_damaged_files_raise_a_clear_error_naming_the_file(tmp_path, name, data):
    valid = VALID[name]
    kind = data.draw(st.sampled_from(["random", "truncated", "mutated"]))
    if kind == "random":
        content = data.draw(st.binary(max_size=300))
    elif kind == "truncated":
        content = valid[: data.draw(st.integers(0, len(valid) - 1))]
    else:
        content = bytearray(valid)
        for _ in range(data.draw(st.integers(1, 8))):
            content[data.draw(st.integers(0, len(valid) - 1))] = data.draw(st.integers(0, 255))
        content = bytes(content)
    read_damaged(tmp_path, name, content)


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_truncation_point_of_the_header_is_refused_or_read(tmp_path, name):
    # The first bytes hold each format's signature and header: try every cut there.
    for cut in range(0, min(len(VALID[name]), 96), 3):
        read_damaged(tmp_path, name, VALID[name][:cut])
