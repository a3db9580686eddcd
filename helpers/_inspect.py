"""Look inside weight files people already have, and compare two: ``python -m helpers``.

Four kinds of file are read, each without running code from the file:

- ``.safetensors``: any safetensors file (its JSON header is parsed here, so dtypes that
  NumPy lacks, such as bfloat16, are described too);
- ``.pt`` / ``.pth`` / ``.bin``: a ``state_dict`` saved with ``torch.save``, loaded with
  ``weights_only=True`` (PyTorch refuses anything but tensors and plain containers);
- ``.keras`` / ``.weights.h5``: Keras 3's HDF5 weights, read with h5py (no TensorFlow);
- ``.npz``: NumPy arrays, read with ``allow_pickle=False``.

A vector file written by :func:`helpers.save` carries its layout and is shown with it;
any other file is shown as the layout :func:`helpers.flatten` gives a dict of its
tensors. Anything that cannot be read raises :class:`InspectError` naming the file.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import helpers
from helpers._io import npz_problem
from helpers._layout import TENSOR_DTYPES, Layout

# safetensors dtype codes, by the names NumPy and PyTorch use. Tensors of dtypes outside
# TENSOR_DTYPES (float8, complex, strings) are listed apart from the layout.
_SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U64": "uint64",
    "U32": "uint32",
    "U16": "uint16",
    "U8": "uint8",
    "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "C64": "complex64",
}
_ITEMSIZES = {"bfloat16": 2, "bool": 1, "float8_e4m3fn": 1, "float8_e5m2": 1, "complex64": 8}
_HEADER_LIMIT = 100_000_000  # bytes; safetensors itself refuses larger headers
_TORCH_SUFFIXES = (".pt", ".pth", ".bin")
SUFFIXES = (".safetensors", ".npz", ".keras", ".weights.h5", *_TORCH_SUFFIXES)


class InspectError(ValueError):
    """A file could not be read as weights; the message starts with the file's name."""


@dataclass(frozen=True)
class Tensor:
    """One named array of a file: shape, dtype, bytes stored, and (if read) its values.

    ``values`` is ``None`` until asked for; bfloat16 values come back as float32.
    """

    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    values: np.ndarray | None = None


@dataclass(frozen=True)
class OtherEntry:
    """Something in the file that is not a tensor a layout can hold, and its raw content.

    ``content`` (bytes, or ``None`` until asked for) is what ``diff`` compares.
    """

    what: str
    content: bytes | None = None


@dataclass(frozen=True)
class WeightFile:
    """What :func:`read_weights` found in one file.

    ``layout`` is the file's own layout for a :func:`helpers.save` vector file
    (``trainable_recorded`` is then True), else the layout ``helpers.flatten`` gives a
    dict of the file's tensors, in the file's order, every tensor trainable.
    """

    path: Path
    format: str
    tensors: dict[str, Tensor]
    layout: Layout
    trainable_recorded: bool
    others: dict[str, OtherEntry] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


def read_weights(path: str | Path, values: bool = False) -> WeightFile:
    """Read a weight file's tensors (shapes and dtypes; their values too if ``values``).

    >>> import tempfile, numpy as np
    >>> file = Path(tempfile.mkdtemp()) / "weights.npz"
    >>> np.savez(file, kernel=np.ones((2, 3), np.float32))
    >>> read_weights(file).layout.size
    6
    """
    path = Path(path)
    reader = _reader_for(path)
    if path.is_dir():
        raise InspectError(f"{path.name}: is a directory, expected a weight file")
    if not path.is_file():
        raise InspectError(f"{path}: no such file")
    return reader(path, values)


def _reader_for(path: Path) -> Callable[[Path, bool], WeightFile]:
    name = path.name.lower()
    readers = {
        ".safetensors": _read_safetensors,
        ".npz": _read_npz,
        ".keras": _read_keras_archive,
        ".weights.h5": _read_keras_weights,
        **dict.fromkeys(_TORCH_SUFFIXES, _read_torch),
    }
    for suffix, reader in readers.items():
        if name.endswith(suffix):
            return reader
    raise InspectError(
        f"{path.name}: expected a name ending in one of {', '.join(SUFFIXES)}, "
        f"got {path.suffix or 'no suffix'!r}"
    )


def _from_tensors(
    path: Path,
    format_name: str,
    tensors: dict[str, Tensor],
    others: dict[str, OtherEntry] | None = None,
    metadata: dict[str, str] | None = None,
) -> WeightFile:
    """A file without a recorded layout: lay its tensors out as flatten lays out a dict."""
    floats = [np.dtype("float32" if t.dtype == "bfloat16" else t.dtype) for t in tensors.values()]
    floats = [dtype for dtype in floats if dtype.kind == "f"]
    vector_dtype = np.result_type(*floats) if floats else np.dtype("float64")
    specs = [(name, tensor.shape, tensor.dtype, True) for name, tensor in tensors.items()]
    layout = Layout.from_specs(specs, framework="numpy", dtype=str(vector_dtype))
    return WeightFile(path, format_name, tensors, layout, False, others or {}, metadata or {})


def _from_vector_file(path: Path, format_name: str, metadata: dict[str, str]) -> WeightFile:
    """A file written by helpers.save: its own layout, its tensors cut from the vector."""
    try:
        vector, layout = helpers.load(path)
        arrays = helpers.unflatten(vector, layout)
    except Exception as error:  # load names what is wrong; any damage ends up here
        reason = str(error).removeprefix(f"{path.name}: ")
        raise InspectError(
            f"{path.name}: holds a vector and a layout, as helpers.save writes, but "
            f"helpers.load refuses it: {reason}"
        ) from error
    # Each tensor's bytes are its share of the stored vector (in the vector's dtype).
    itemsize = np.dtype(layout.dtype).itemsize
    tensors = {
        entry.name: Tensor(entry.shape, entry.dtype, entry.size * itemsize, array)
        for entry, array in zip(layout, arrays.values(), strict=True)
    }
    format_name = f"vector file written by helpers.save ({format_name})"
    return WeightFile(path, format_name, tensors, layout, True, {}, metadata)


def _widen_bfloat16(raw: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32: shift its 16 bits into place."""
    return (raw.astype("<u4") << 16).view("<f4").astype(np.float32)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(error).__name__}: {line[:200]}"


# --- safetensors -----------------------------------------------------------------------


def _read_safetensors(path: Path, values: bool) -> WeightFile:
    with path.open("rb") as stream:
        size = path.stat().st_size
        header, data_start = _safetensors_header(path, stream, size)
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise InspectError(f"{path.name}: __metadata__ must map strings to strings")
        entries = _safetensors_entries(path, header, size - data_start)
        if set(entries) == {"vector"} and "layout" in metadata:
            return _from_vector_file(path, "safetensors", metadata)
        tensors, others = {}, {}
        for name, (dtype, shape, begin, end) in entries.items():
            raw = _read_range(stream, data_start + begin, end - begin) if values else None
            if dtype in TENSOR_DTYPES:
                array = _safetensors_array(raw, dtype, shape) if raw is not None else None
                tensors[name] = Tensor(shape, dtype, end - begin, array)
            else:
                others[name] = OtherEntry(f"tensor of {dtype}, shape {shape}", raw)
    return _from_tensors(path, "safetensors", tensors, others, metadata)


def _safetensors_header(path: Path, stream: Any, size: int) -> tuple[dict[str, Any], int]:
    if size < 8:
        raise InspectError(
            f"{path.name}: expected at least 8 bytes (a safetensors header), got {size}"
        )
    length = int.from_bytes(stream.read(8), "little")
    if length > min(size - 8, _HEADER_LIMIT):
        raise InspectError(
            f"{path.name}: the header says it is {length:,} bytes long, but the file holds "
            f"{size - 8:,} bytes after its first 8 (truncated, or not a safetensors file)"
        )
    try:
        header = json.loads(stream.read(length).decode("utf-8"), object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as error:  # JSON and UTF-8 errors
        raise InspectError(
            f"{path.name}: damaged safetensors header ({_first_line(error)})"
        ) from None
    if not isinstance(header, dict):
        raise InspectError(
            f"{path.name}: expected a JSON object as the header, got {type(header).__name__}"
        )
    return header, 8 + length


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"repeated names {repeated}")
    return dict(pairs)


def _safetensors_entries(
    path: Path, header: dict[str, Any], data_size: int
) -> dict[str, tuple[str, tuple[int, ...], int, int]]:
    """Each tensor's dtype, shape and byte range, checked to tile the data exactly."""
    entries = {}
    for name, spec in header.items():
        where = f"{path.name}: tensor {name!r}"
        if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data_offsets"}:
            raise InspectError(
                f"{where}: expected keys dtype, shape, data_offsets, got {spec!r}"[:300]
            )
        dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
        if not isinstance(shape, list) or not all(_is_count(dim) for dim in shape):
            raise InspectError(
                f"{where}: shape must be a list of non-negative integers, got {shape!r}"
            )
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
            raise InspectError(f"{where}: data_offsets must be [begin, end], got {offsets!r}")
        begin, end = offsets
        dtype = _SAFETENSORS_DTYPES.get(dtype, str(dtype))
        itemsize = _ITEMSIZES.get(dtype) or (
            np.dtype(dtype).itemsize if dtype in TENSOR_DTYPES else None
        )
        expected = None if itemsize is None else math.prod(shape) * itemsize
        if begin > end or (expected is not None and end - begin != expected):
            raise InspectError(
                f"{where}: shape {tuple(shape)} of {dtype} needs {expected} bytes, "
                f"its data_offsets [{begin}, {end}] give {end - begin}"
            )
        entries[name] = (dtype, tuple(shape), begin, end)
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin != position:
            raise InspectError(
                f"{path.name}: tensor {name!r} starts at byte {begin:,} of the data, "
                f"expected {position:,} (tensors must lie back to back)"
            )
        position = end
    if position != data_size:
        raise InspectError(
            f"{path.name}: the header describes {position:,} bytes of tensor data, "
            f"the file holds {data_size:,} (truncated or damaged)"
        )
    return dict(sorted(entries.items(), key=lambda item: item[1][2:]))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read_range(stream: Any, start: int, length: int) -> bytes:
    stream.seek(start)
    return stream.read(length)


def _safetensors_array(raw: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "bfloat16":
        return _widen_bfloat16(np.frombuffer(raw, "<u2")).reshape(shape)
    return np.frombuffer(raw, np.dtype(dtype).newbyteorder("<")).reshape(shape).astype(dtype)


# --- .npz ------------------------------------------------------------------------------


def _read_npz(path: Path, values: bool) -> WeightFile:
    problem = npz_problem(path)
    if problem is not None:
        raise InspectError(f"{path.name}: {problem}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if set(archive.files) == {"vector", "layout"}:
                return _from_vector_file(path, ".npz", {})
            arrays = {name: archive[name] for name in archive.files}
    except InspectError:
        raise
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise InspectError(
                f"{path.name}: holds an array of Python objects, which only unpickling "
                "could read; refused (inspect never unpickles)"
            ) from None
        raise InspectError(f"{path.name}: damaged .npz ({_first_line(error)})") from None
    except Exception as error:  # zipfile, zlib and NumPy's errors, for any damage
        raise InspectError(f"{path.name}: damaged .npz ({_first_line(error)})") from None
    tensors, others = {}, {}
    for name, array in arrays.items():
        if str(array.dtype) in TENSOR_DTYPES:
            kept = array if values else None
            tensors[name] = Tensor(array.shape, str(array.dtype), array.nbytes, kept)
        else:
            content = array.tobytes() if values else None
            others[name] = OtherEntry(f"array of {array.dtype}, shape {array.shape}", content)
    return _from_tensors(path, ".npz", tensors, others)


# --- PyTorch ---------------------------------------------------------------------------


def _read_torch(path: Path, values: bool) -> WeightFile:
    import pickle

    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = re.search(r"WeightsUnpickler error: (.*?)(\.\s|\n|$)", str(error))
        if reason is None:
            raise InspectError(f"{path.name}: damaged torch file ({_first_line(error)})") from None
        raise InspectError(
            f"{path.name}: refused: it holds more than tensors and plain containers, and "
            f"loading it would run code from the file (PyTorch's weights_only check says: "
            f"{reason[1].strip()}); save model.state_dict() rather than the model"
        ) from None
    except Exception as error:  # zip, pickle-stream and storage errors, for any damage
        raise InspectError(
            f"{path.name}: not a file torch.save wrote, or damaged ({_first_line(error)})"
        ) from None
    if not isinstance(loaded, Mapping):
        raise InspectError(
            f"{path.name}: expected a state_dict (a mapping of names to tensors), "
            f"got {type(loaded).__name__}"
        )
    tensors, others = {}, {}
    for name, item in _walk(loaded):
        if (
            isinstance(item, torch.Tensor)
            and not item.is_sparse
            and _torch_dtype(item) in TENSOR_DTYPES
        ):
            dtype = _torch_dtype(item)
            array = _torch_array(item) if values else None
            tensors[name] = Tensor(
                tuple(item.shape), dtype, item.numel() * item.element_size(), array
            )
        else:
            others[name] = _torch_other(item, values)
    return _from_tensors(path, "PyTorch state_dict (torch.save)", tensors, others)


def _walk(container: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Leaves of nested dicts, lists and tuples, named by their keys joined with dots."""
    items = container.items() if isinstance(container, Mapping) else enumerate(container)
    for key, item in items:
        name = f"{prefix}{key}"
        if isinstance(item, Mapping | list | tuple) and item:
            yield from _walk(item, name + ".")
        else:
            yield name, item


def _torch_dtype(tensor: Any) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _torch_array(tensor: Any) -> np.ndarray:
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        return tensor.float().numpy()
    return tensor.numpy().copy()


def _torch_other(item: Any, values: bool) -> OtherEntry:
    import torch

    if isinstance(item, torch.Tensor):
        what = f"tensor of {_torch_dtype(item)}, shape {tuple(item.shape)}"
        if item.is_sparse:
            what = f"sparse {what}"
            item = item.to_dense()
        content = item.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        return OtherEntry(what, content if values else None)
    text = repr(item)
    what = f"{type(item).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
    return OtherEntry(what, text.encode() if values else None)


# --- Keras -----------------------------------------------------------------------------


def _read_keras_weights(path: Path, values: bool) -> WeightFile:
    with path.open("rb") as stream:
        tensors, others = _read_h5(path, stream, values)
    return _from_tensors(path, "Keras weights (.weights.h5)", tensors, others)


def _read_keras_archive(path: Path, values: bool) -> WeightFile:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "model.weights.h5" not in names:
                raise InspectError(
                    f"{path.name}: expected a Keras 3 archive with model.weights.h5, "
                    f"it holds {names[:10]}"
                )
            metadata = _keras_metadata(path, archive, names)
            with archive.open("model.weights.h5") as stream:
                tensors, others = _read_h5(path, stream, values)
    except InspectError:
        raise
    except Exception as error:  # zipfile and zlib errors, for any damage
        raise InspectError(f"{path.name}: damaged .keras archive ({_first_line(error)})") from None
    version = metadata.get("keras_version")
    format_name = f"Keras model (.keras{f', saved by Keras {version}' if version else ''})"
    return _from_tensors(path, format_name, tensors, others, metadata)


def _keras_metadata(path: Path, archive: zipfile.ZipFile, names: list[str]) -> dict[str, str]:
    if "metadata.json" not in names:
        return {}
    try:
        metadata = json.loads(archive.read("metadata.json"))
    except ValueError as error:
        raise InspectError(f"{path.name}: damaged metadata.json ({_first_line(error)})") from None
    if not isinstance(metadata, dict):
        return {}
    return {str(key): str(value) for key, value in metadata.items()}


def _read_h5(
    path: Path, stream: Any, values: bool
) -> tuple[dict[str, Tensor], dict[str, OtherEntry]]:
    import h5py

    try:
        with h5py.File(stream, "r") as h5:
            found = list(_h5_datasets(path, h5, h5py))
            tensors, others = {}, {}
            for name, dataset in found:
                _add_h5_dataset(name, dataset, values, tensors, others)
    except InspectError:
        raise
    except Exception as error:  # h5py raises OSError, KeyError, RuntimeError... on damage
        raise InspectError(
            f"{path.name}: not an HDF5 file, or damaged ({_first_line(error)})"
        ) from None
    return tensors, others


def _h5_datasets(path: Path, group: Any, h5py: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every dataset, in Keras's order (names sorted with numbers as numbers), no links."""
    for key in sorted(group.keys(), key=_natural_key):
        link = group.get(key, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise InspectError(
                f"{path.name}: {prefix}{key} is a {type(link).__name__}; refused "
                "(Keras writes no links, and following one could read other files)"
            )
        item = group[key]
        if isinstance(item, h5py.Group):
            yield from _h5_datasets(path, item, h5py, f"{prefix}{key}/")
        elif item.is_virtual or item.external:
            raise InspectError(
                f"{path.name}: {prefix}{key} keeps its data outside the file; refused"
            )
        else:
            yield f"{prefix}{key}", item


def _natural_key(name: str) -> list[Any]:
    """'vars/10' after 'vars/2', 'dense_10' after 'dense_2'."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)
    ]


def _add_h5_dataset(
    name: str, dataset: Any, values: bool, tensors: dict[str, Tensor], others: dict[str, OtherEntry]
) -> None:
    shape = tuple(int(dim) for dim in dataset.shape or ())
    # Keras stores bfloat16 as 2-byte opaque values with the attribute dtype="bfloat16".
    stored = dataset.attrs.get("dtype")
    if stored == "bfloat16" and dataset.dtype.itemsize == 2:
        raw = np.frombuffer(dataset[()].tobytes(), "<u2") if values else None
        array = _widen_bfloat16(raw).reshape(shape) if raw is not None else None
        tensors[name] = Tensor(shape, "bfloat16", 2 * math.prod(shape), array)
    elif dataset.shape is not None and str(dataset.dtype) in TENSOR_DTYPES:
        array = np.asarray(dataset[()]) if values else None
        tensors[name] = Tensor(
            shape, str(dataset.dtype), dataset.dtype.itemsize * math.prod(shape), array
        )
    else:
        content = np.asarray(dataset[()]).tobytes() if values and dataset.shape is not None else b""
        others[name] = OtherEntry(
            f"dataset of {dataset.dtype}, shape {dataset.shape}", content if values else None
        )


# --- what inspect prints -----------------------------------------------------------------


def summary(weights: WeightFile) -> dict[str, Any]:
    """Totals: tensors, parameters (values), bytes of tensor data, and a count per dtype.

    >>> import tempfile, numpy as np
    >>> file = Path(tempfile.mkdtemp()) / "weights.npz"
    >>> np.savez(file, kernel=np.ones((2, 3), np.float32), steps=np.array(7))
    >>> summary(read_weights(file))["dtypes"]
    {'float32': {'tensors': 1, 'values': 6}, 'int64': {'tensors': 1, 'values': 1}}
    """
    dtypes: dict[str, dict[str, int]] = {}
    for tensor in weights.tensors.values():
        counts = dtypes.setdefault(tensor.dtype, {"tensors": 0, "values": 0})
        counts["tensors"] += 1
        counts["values"] += math.prod(tensor.shape)
    return {
        "tensors": len(weights.tensors),
        "parameters": weights.layout.size,
        "bytes": sum(tensor.nbytes for tensor in weights.tensors.values()),
        "dtypes": dtypes,
    }


def describe(weights: WeightFile) -> str:
    """The layout table and a summary, as ``python -m helpers inspect FILE`` prints them."""
    lines = [
        f"{weights.path.name}: {weights.format}, {weights.path.stat().st_size:,} bytes on disk",
        str(weights.layout),
    ]
    if not weights.trainable_recorded:
        lines.append(
            f"trainable: not recorded in a {weights.format.split(' (')[0]}; this is the "
            "layout helpers.flatten gives a dict of these tensors (each one trainable)"
        )
    if weights.others:
        listed = "; ".join(f"{name} ({other.what})" for name, other in weights.others.items())
        lines.append(f"not in the layout ({len(weights.others)}): {listed}")
    shown = {key: value for key, value in weights.metadata.items() if key != "layout"}
    if shown:
        lines.append("metadata: " + ", ".join(f"{k}={_short(v)}" for k, v in shown.items()))
    totals = summary(weights)
    per_dtype = ", ".join(
        f"{dtype} ({counts['tensors']} {_plural(counts['tensors'], 'tensor')}, "
        f"{counts['values']:,} {_plural(counts['values'], 'value')})"
        for dtype, counts in totals["dtypes"].items()
    )
    lines.append(
        f"total: {totals['parameters']:,} parameters in {totals['tensors']} "
        f"{_plural(totals['tensors'], 'tensor')}, {totals['bytes']:,} bytes of tensor data"
        + (f"; dtypes: {per_dtype}" if per_dtype else "")
    )
    return "\n".join(lines)


def as_json(weights: WeightFile) -> dict[str, Any]:
    """What ``inspect --json`` prints: the layout as :meth:`Layout.to_json` writes it, and more."""
    return {
        "file": str(weights.path),
        "format": weights.format,
        "file_bytes": weights.path.stat().st_size,
        "trainable_recorded": weights.trainable_recorded,
        "layout": json.loads(weights.layout.to_json()),
        "summary": summary(weights),
        "not_in_layout": [{"name": name, "what": o.what} for name, o in weights.others.items()],
        "metadata": weights.metadata,
    }


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


# --- diff ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorComparison:
    """How one name compares across files A and B.

    ``status`` is ``same``, ``differs`` (same shape and dtype, other values), ``dtype``,
    ``shape``, ``only in A`` or ``only in B``. ``max_abs`` is max |B − A| and
    ``relative`` is ‖B − A‖ / ‖A‖, where both shapes agree (positions NaN in both count
    as equal; NaN in one only makes both NaN).
    """

    name: str
    status: str
    shape_a: tuple[int, ...] | None = None
    shape_b: tuple[int, ...] | None = None
    dtype_a: str | None = None
    dtype_b: str | None = None
    max_abs: float | None = None
    relative: float | None = None


@dataclass(frozen=True)
class Comparison:
    """Every tensor and other entry of two files compared, and layout differences."""

    a: WeightFile
    b: WeightFile
    tensors: list[TensorComparison]
    others: list[tuple[str, str]]  # (name, how it differs)
    layout_notes: list[str]

    @property
    def same(self) -> bool:
        """True when nothing differs: names, shapes, dtypes, every value, other entries."""
        differing = [row for row in self.tensors if row.status != "same"]
        return not (differing or self.others or self.layout_notes)


def compare(a: WeightFile, b: WeightFile) -> Comparison:
    """Compare two files read with ``values=True``, tensor by tensor (matched by name).

    >>> import tempfile, numpy as np
    >>> folder = Path(tempfile.mkdtemp())
    >>> np.savez(folder / "a.npz", w=np.zeros(3)); np.savez(folder / "b.npz", w=np.ones(3))
    >>> comparison = compare(*(read_weights(folder / n, values=True) for n in ("a.npz", "b.npz")))
    >>> comparison.same, comparison.tensors[0].max_abs
    (False, 1.0)
    """
    names = list(a.tensors) + [name for name in b.tensors if name not in a.tensors]
    tensors = [_compare_tensor(name, a.tensors.get(name), b.tensors.get(name)) for name in names]
    others = []
    for name in list(a.others) + [name for name in b.others if name not in a.others]:
        other_a, other_b = a.others.get(name), b.others.get(name)
        if other_a is None or other_b is None:
            others.append((name, "only in A" if other_b is None else "only in B"))
        elif other_a != other_b:
            others.append((name, f"{other_a.what} vs {other_b.what}, content differs"))
    return Comparison(a, b, tensors, others, _layout_notes(a, b))


def _compare_tensor(name: str, a: Tensor | None, b: Tensor | None) -> TensorComparison:
    if a is None or b is None:
        present = a or b
        status = "only in A" if b is None else "only in B"
        shapes = (present.shape, None) if b is None else (None, present.shape)
        dtypes = (present.dtype, None) if b is None else (None, present.dtype)
        return TensorComparison(name, status, *shapes, *dtypes)
    if a.values is None or b.values is None:
        raise ValueError("compare needs files read with values=True")
    fields = (a.shape, b.shape, a.dtype, b.dtype)
    if a.shape != b.shape:
        return TensorComparison(name, "shape", *fields)
    max_abs, relative = _measure(a.values, b.values)
    if a.dtype != b.dtype:
        return TensorComparison(name, "dtype", *fields, max_abs, relative)
    status = "same" if _identical(a.values, b.values) else "differs"
    return TensorComparison(name, status, *fields, max_abs, relative)


def _identical(a: np.ndarray, b: np.ndarray) -> bool:
    equal = a == b
    if a.dtype.kind == "f":
        equal |= np.isnan(a) & np.isnan(b)
    return bool(np.all(equal))


def _measure(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """max |b − a| and ‖b − a‖ / ‖a‖ in float64 (0 when equal, inf when ‖a‖ is 0)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        equal = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
        delta = np.where(equal, 0.0, b64 - a64)
        max_abs = float(np.max(np.abs(delta))) if delta.size else 0.0
        norm_delta, norm_a = float(np.linalg.norm(delta)), float(np.linalg.norm(a64))
    if norm_delta == 0 or math.isnan(norm_delta):
        return max_abs, norm_delta  # 0.0, or NaN where a NaN stands against a number
    return max_abs, norm_delta / norm_a if norm_a > 0 else math.inf


def _layout_notes(a: WeightFile, b: WeightFile) -> list[str]:
    """For two helpers.save files the layout itself is content: order and settings."""
    if not (a.trainable_recorded and b.trainable_recorded):
        return []
    notes = [
        f"{field_name}: {getattr(a.layout, field_name)} vs {getattr(b.layout, field_name)}"
        for field_name in ("framework", "include", "order", "dtype")
        if getattr(a.layout, field_name) != getattr(b.layout, field_name)
    ]
    common = [name for name in a.layout.names if name in b.tensors]
    if common != [name for name in b.layout.names if name in a.tensors]:
        notes.append("tensor order differs (so the vectors differ)")
    for name in common:
        if a.layout[name].trainable != b.layout[name].trainable:
            notes.append(
                f"{name}: trainable {a.layout[name].trainable} vs {b.layout[name].trainable}"
            )
    return notes


def describe_comparison(comparison: Comparison) -> str:
    """What ``python -m helpers diff A B`` prints: only what differs, then the counts."""
    a, b = comparison.a, comparison.b
    lines = [f"A = {a.path.name} ({a.format})", f"B = {b.path.name} ({b.format})"]
    differing = [row for row in comparison.tensors if row.status != "same"]
    if differing:
        width = max(len(row.name) for row in differing)
        lines.append(f"{'status':<10} {'name':<{width}}  {'shape (A, B)':<24} dtype (A, B)")
        lines += [_describe_row(row, width) for row in differing]
    lines += [f"not in the layout: {name}: {how}" for name, how in comparison.others]
    lines += [f"layout: {note}" for note in comparison.layout_notes]
    counts = {}
    for row in comparison.tensors:
        counts[row.status] = counts.get(row.status, 0) + 1
    tally = ", ".join(f"{count} {status}" for status, count in counts.items())
    verdict = "no differences" if comparison.same else "the files differ"
    lines.append(f"{len(comparison.tensors)} tensors: {tally or 'none'}; {verdict}")
    return "\n".join(lines)


def _describe_row(row: TensorComparison, width: int) -> str:
    shapes = _either(row.shape_a, row.shape_b)
    dtypes = _either(row.dtype_a, row.dtype_b)
    text = f"{row.status:<10} {row.name:<{width}}  {shapes:<24} {dtypes}"
    if row.max_abs is not None:
        text += f"  max|Δ| {row.max_abs:.3g}  ‖Δ‖/‖A‖ {row.relative:.3g}"
    return text


def _either(a: Any, b: Any) -> str:
    if a == b or b is None:
        return str(a)
    return str(b) if a is None else f"{a} vs {b}"


def comparison_as_json(comparison: Comparison) -> dict[str, Any]:
    """What ``diff --json`` prints (infinities and NaN as the strings "inf" and "nan")."""
    rows = []
    for row in comparison.tensors:
        fields = {key: value for key, value in row.__dict__.items()}
        for key in ("max_abs", "relative"):
            if fields[key] is not None and not math.isfinite(fields[key]):
                fields[key] = str(fields[key])
        rows.append(fields)
    return {
        "a": str(comparison.a.path),
        "b": str(comparison.b.path),
        "same": comparison.same,
        "tensors": rows,
        "not_in_layout": [{"name": name, "difference": how} for name, how in comparison.others],
        "layout": comparison.layout_notes,
    }
