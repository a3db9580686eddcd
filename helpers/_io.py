"""Save a vector with its layout, and load it back: .npz or .safetensors, never pickle.

Both formats are written by hand here, tensor by tensor, when a model is saved without
its vector in memory; the bytes are those NumPy's ``savez`` and safetensors' ``save_file``
write (safetensors orders its metadata keys at random; ours are sorted), so every file
loads either way. ``load(..., mmap=True)`` maps the vector's bytes from the file.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from helpers._core import (
    _check_choice,
    _model_layout,
    _warn_if_the_vector_changed,
    check_fits,
)
from helpers._layout import Include, Layout, LayoutError, Order
from helpers.adapters import model_tensors

_SUFFIXES = (".npz", ".safetensors")


def save(
    path: str | os.PathLike,
    vector: np.ndarray | None = None,
    layout: Layout | None = None,
    *,
    model: Any = None,
    include: Include = "trainable",
    order: Order = "C",
    dtype: str | np.dtype | None = None,
) -> Path:
    """Write ``vector`` and its ``layout`` (or a model's) to one ``.npz``/``.safetensors`` file.

    The layout travels as JSON beside the vector (a string array in ``.npz``, the
    metadata in ``.safetensors``), so the file alone says how to read the vector. Both
    formats carry a CRC-32 of the vector's bytes (the zip's own in ``.npz``, one in the
    metadata in ``.safetensors``), so :func:`load` notices a damaged vector.

    ``save(path, model=model)`` writes what ``save(path, *flatten(model, include, order,
    dtype))`` would, byte for byte, without the vector in memory: each tensor is converted
    and written in turn, so it needs about one tensor's worth of memory, not the model's.

    >>> import tempfile, numpy as np
    >>> from helpers import flatten
    >>> vector, layout = flatten({"bias": np.zeros(3)})
    >>> save(Path(tempfile.mkdtemp()) / "weights.npz", vector, layout).name
    'weights.npz'
    >>> save(Path(tempfile.mkdtemp()) / "weights.safetensors", model={"bias": np.zeros(3)}).name
    'weights.safetensors'
    """
    path = Path(path)
    if model is not None:
        if vector is not None or layout is not None:
            raise TypeError("save: pass a vector and its layout, or model=..., not both")
        return _save_model(path, model, include, order, dtype)
    if vector is None or layout is None:
        raise TypeError("save: expected a vector and its layout, or model=...")
    if not isinstance(layout, Layout):
        raise TypeError(f"layout: expected a helpers.Layout, got {type(layout).__name__}")
    vector = np.ascontiguousarray(vector)
    if vector.shape != (layout.size,) or str(vector.dtype) != layout.dtype:
        raise LayoutError(
            f"vector: expected shape ({layout.size},) and dtype {layout.dtype}, "
            f"got {vector.shape} and {vector.dtype}"
        )
    if path.suffix == ".npz":
        np.savez(path, vector=vector, layout=np.array(layout.to_json()))
    elif path.suffix == ".safetensors":
        from safetensors.numpy import save_file

        metadata = {"layout": layout.to_json(), "vector_crc32": _crc32(vector)}
        save_file({"vector": vector}, path, metadata=metadata)
    else:
        raise ValueError(f"{path.name}: expected a name ending in {_SUFFIXES}, got {path.suffix!r}")
    return path


def load(
    path: str | os.PathLike, model: Any = None, *, mmap: bool = False
) -> tuple[np.ndarray, Layout]:
    """Read a vector and its layout written by :func:`save`.

    With ``model``, also check that the layout fits it (same fingerprint), so the
    mistake surfaces on loading rather than on restoring. A file that is damaged, of
    another kind, or edited raises :class:`LayoutError` starting with the file's name.

    ``mmap=True`` maps the vector's bytes from the file instead of reading them into
    memory: the vector is read-only, costs the page cache rather than the process's own
    memory, and can go straight into :func:`~helpers.restore`. Every check is made as
    without it (the CRC-32 reads the file once). An ``.npz`` vector must be stored
    uncompressed (as ``save`` writes it; not ``np.savez_compressed``).

    >>> import tempfile, numpy as np
    >>> from helpers import flatten
    >>> weights = {"bias": np.zeros(3)}
    >>> file = save(Path(tempfile.mkdtemp()) / "weights.npz", *flatten(weights))
    >>> vector, layout = load(file, model=weights)
    >>> vector.shape
    (3,)
    """
    path = Path(path)
    if path.suffix not in _SUFFIXES:
        raise ValueError(f"{path.name}: expected a name ending in {_SUFFIXES}, got {path.suffix!r}")
    if path.is_dir():
        raise IsADirectoryError(f"{path.name}: is a directory, expected a file written by save")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if mmap:
            reader = _map_npz if path.suffix == ".npz" else _map_safetensors
        else:
            reader = _read_npz if path.suffix == ".npz" else _read_safetensors
        vector, layout_json = reader(path)
        layout = Layout.from_json(layout_json)
        if vector.shape != (layout.size,) or str(vector.dtype) != layout.dtype:
            raise LayoutError(
                f"the layout expects {layout.size:,} values of {layout.dtype}, "
                f"the file holds shape {vector.shape} of {vector.dtype}"
            )
        if model is not None:
            check_fits(model, layout)
    except LayoutError as error:
        raise LayoutError(f"{path.name}: {error}") from None
    return vector, layout


_NOT_OURS = "not a vector file written by helpers.save"
_ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first entry, or an empty zip


def npz_problem(path: Path) -> str | None:
    """Why ``path`` cannot be an ``.npz`` archive, from its first bytes; None if it may be one.

    NumPy guesses at a pickle for a file that is neither a zip nor an ``.npy``; this says
    what the file is instead. ``helpers.data`` and ``inspect`` read ``.npz`` files too.

    >>> import tempfile
    >>> text = Path(tempfile.mkdtemp()) / "weights.npz"
    >>> _ = text.write_text("kernel,bias")
    >>> npz_problem(text)
    "not a zip archive (an .npz is one); it starts with b'kernel,b'"
    """
    with path.open("rb") as stream:
        head = stream.read(8)
    if head.startswith(b"\x93NUMPY"):
        return "it holds a single array (np.save), not an .npz archive"
    if not head.startswith(_ZIP_STARTS):
        return f"not a zip archive (an .npz is one); it starts with {head!r}"
    return None


def _read_npz(path: Path) -> tuple[np.ndarray, str]:
    _read_npz_head(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"vector", "layout"} - set(archive.files)
            if missing:
                raise LayoutError(
                    f"expected arrays 'vector' and 'layout', missing {sorted(missing)}"
                )
            vector, layout = archive["vector"], archive["layout"]
    except LayoutError:
        raise
    except Exception as error:  # zipfile, zlib and NumPy's own errors, for any damage
        raise LayoutError(f"{_NOT_OURS} ({type(error).__name__}: {error})") from error
    if layout.ndim != 0 or layout.dtype.kind != "U":
        raise LayoutError(
            f"'layout' must be one JSON string, got shape {layout.shape} of {layout.dtype}"
        )
    return vector, str(layout)


def _read_safetensors(path: Path) -> tuple[np.ndarray, str]:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="numpy") as archive:
            metadata, tensor_names = archive.metadata() or {}, archive.keys()
            missing = {"layout", "vector_crc32"} - set(metadata)
            if missing or "vector" not in tensor_names:
                raise LayoutError(
                    "expected a 'vector' tensor and 'layout' and 'vector_crc32' metadata"
                )
            vector = archive.get_tensor("vector")
    except LayoutError:
        raise
    except Exception as error:  # SafetensorError and NumPy's errors, for any damage
        raise LayoutError(f"{_NOT_OURS} ({type(error).__name__}: {error})") from error
    if _crc32(vector) != metadata["vector_crc32"]:
        raise LayoutError(
            f"the vector's CRC-32 is {_crc32(vector)}, the file says "
            f"{metadata['vector_crc32']!r}: the vector is damaged"
        )
    return vector, metadata["layout"]


def _crc32(vector: np.ndarray) -> str:
    """The CRC-32 of the vector's bytes, read in place (no copy of the vector)."""
    return f"{zlib.crc32(memoryview(np.ascontiguousarray(vector)).cast('B')):08x}"


# --- writing a model tensor by tensor ------------------------------------------------


def _save_model(
    path: Path, model: Any, include: Include, order: Order, dtype: str | np.dtype | None
) -> Path:
    if path.suffix not in _SUFFIXES:
        raise ValueError(f"{path.name}: expected a name ending in {_SUFFIXES}, got {path.suffix!r}")
    _check_choice("include", include, ("trainable", "all"))
    _check_choice("order", order, ("C", "F"))
    tensors = model_tensors(model, include)
    layout = _model_layout(tensors, include, order, dtype)
    chunks = _vector_chunks(tensors.handles, layout)
    if path.suffix == ".npz":
        _write_npz(path, layout, chunks)
    else:
        _write_safetensors(path, layout, chunks)
    return path


def _vector_chunks(handles: list, layout: Layout) -> Iterator[np.ndarray]:
    """Each tensor's part of the vector, in turn, as flatten would write it (and warn)."""
    vector_dtype = np.dtype(layout.dtype)
    for handle, entry in zip(handles, layout, strict=True):
        array = np.asarray(handle.read())
        if array.dtype == vector_dtype and layout.order == "C" and array.flags.c_contiguous:
            yield array.reshape(-1)  # the tensor's own memory: no copy
            continue
        part = np.empty(entry.size, vector_dtype)
        shaped = part.reshape(entry.shape, order=layout.order)  # a view: writes land in part
        with np.errstate(over="ignore", invalid="ignore"):
            np.copyto(shaped, array, casting="unsafe")
        _warn_if_the_vector_changed(entry, shaped, array)
        yield part


def _npy_header(layout: Layout) -> bytes:
    """The .npy header np.save writes for the vector (format 1.0 while it fits, as there)."""
    header = {"descr": np.dtype(layout.dtype).str, "fortran_order": False, "shape": (layout.size,)}
    stream = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(stream, header)
    except ValueError:  # too long for 1.0
        stream = io.BytesIO()
        np.lib.format.write_array_header_2_0(stream, header)
    return stream.getvalue()


def _write_npz(path: Path, layout: Layout, chunks: Iterator[np.ndarray]) -> None:
    # As np.savez does: a stored (uncompressed) zip, each member opened with zip64.
    with zipfile.ZipFile(path, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open("vector.npy", "w", force_zip64=True) as member:
            member.write(_npy_header(layout))
            for chunk in chunks:
                member.write(memoryview(chunk).cast("B"))
        with zf.open("layout.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array(member, np.array(layout.to_json()), allow_pickle=False)


def _safetensors_header(layout: Layout, crc: str) -> bytes:
    nbytes = layout.size * np.dtype(layout.dtype).itemsize
    document = {
        "__metadata__": {"layout": layout.to_json(), "vector_crc32": crc},
        "vector": {
            "dtype": _SAFETENSORS_DTYPES[layout.dtype],
            "shape": [layout.size],
            "data_offsets": [0, nbytes],
        },
    }
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8 bytes
    return struct.pack("<Q", len(text)) + text


_SAFETENSORS_DTYPES = {"float16": "F16", "float32": "F32", "float64": "F64"}


def _write_safetensors(path: Path, layout: Layout, chunks: Iterator[np.ndarray]) -> None:
    # The CRC is known only at the end: write a header of the same length first (the CRC
    # is always 8 hex digits), then the data, then the real header over the first.
    header = _safetensors_header(layout, "0" * 8)
    crc = 0
    with path.open("wb") as stream:
        stream.write(header)
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            crc = zlib.crc32(view, crc)
            stream.write(view)
        stream.seek(0)
        stream.write(_safetensors_header(layout, f"{crc:08x}"))


# --- mapping a vector from a file ----------------------------------------------------


def _map_safetensors(path: Path) -> tuple[np.ndarray, str]:
    with path.open("rb") as stream:
        header = _safetensors_document(stream, path.stat().st_size)
    header_length = header.pop("__header_length__")
    metadata = header.get("__metadata__") or {}
    tensor = header.get("vector")
    if not isinstance(metadata, dict) or not {"layout", "vector_crc32"} <= set(metadata):
        raise LayoutError("expected a 'vector' tensor and 'layout' and 'vector_crc32' metadata")
    if not isinstance(tensor, dict) or set(header) != {"__metadata__", "vector"}:
        raise LayoutError("expected a 'vector' tensor and 'layout' and 'vector_crc32' metadata")
    dtype = {code: name for name, code in _SAFETENSORS_DTYPES.items()}.get(tensor.get("dtype"))
    shape, offsets = tensor.get("shape"), tensor.get("data_offsets")
    if dtype is None or not _is_counts(shape, 1) or not _is_counts(offsets, 2):
        raise LayoutError(f"{_NOT_OURS}: the 'vector' entry is malformed: {tensor!r}")
    start = 8 + header_length + offsets[0]
    if offsets[1] - offsets[0] != shape[0] * np.dtype(dtype).itemsize or (
        start + shape[0] * np.dtype(dtype).itemsize > path.stat().st_size
    ):
        raise LayoutError(f"{_NOT_OURS}: the 'vector' entry does not fit the file: {tensor!r}")
    vector = _mapped(path, dtype, start, shape[0])
    if _crc32(vector) != metadata["vector_crc32"]:
        raise LayoutError(
            f"the vector's CRC-32 is {_crc32(vector)}, the file says "
            f"{metadata['vector_crc32']!r}: the vector is damaged"
        )
    return vector, metadata["layout"]


def _safetensors_document(stream: IO[bytes], file_size: int) -> dict[str, Any]:
    head = stream.read(8)
    if len(head) < 8:
        raise LayoutError(f"{_NOT_OURS}: shorter than a safetensors header")
    (length,) = struct.unpack("<Q", head)
    if length > min(file_size - 8, 100_000_000):
        raise LayoutError(f"{_NOT_OURS}: its header length {length} does not fit the file")
    try:
        document = json.loads(stream.read(length))
    except (ValueError, RecursionError) as error:
        raise LayoutError(f"{_NOT_OURS} (header: {type(error).__name__}: {error})") from None
    if not isinstance(document, dict):
        raise LayoutError(f"{_NOT_OURS}: its header is not a JSON object")
    document["__header_length__"] = length
    return document


def _is_counts(value: Any, length: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == length
        and all(
            isinstance(item, int) and not isinstance(item, bool) and item >= 0 for item in value
        )
    )


def _map_npz(path: Path) -> tuple[np.ndarray, str]:
    _read_npz_head(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if not {"vector.npy", "layout.npy"} <= names:
                missing = sorted({"vector", "layout"} - {name[:-4] for name in names})
                raise LayoutError(f"expected arrays 'vector' and 'layout', missing {missing}")
            info = archive.getinfo("vector.npy")
            if info.compress_type != zipfile.ZIP_STORED:
                raise LayoutError(
                    "the vector is compressed in this .npz (np.savez_compressed), so it "
                    "cannot be memory-mapped: load it with mmap=False"
                )
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(member)
                npy_header = member.tell() if member.seekable() else None
            layout = _layout_member(archive)
            member_start = _member_data_start(path, info)
    except LayoutError:
        raise
    except Exception as error:  # zipfile and NumPy's own errors, for any damage
        raise LayoutError(f"{_NOT_OURS} ({type(error).__name__}: {error})") from error
    if fortran or len(shape) != 1 or dtype.hasobject or npy_header is None:
        raise LayoutError(f"'vector' must be a 1-D array of numbers, got shape {shape} of {dtype}")
    if npy_header + shape[0] * dtype.itemsize != info.file_size:
        raise LayoutError(f"{_NOT_OURS}: the 'vector' member's size does not match its header")
    member_bytes = np.memmap(path, np.uint8, mode="r", offset=member_start, shape=info.file_size)
    if zlib.crc32(member_bytes) != info.CRC:
        raise LayoutError("the vector's CRC-32 does not match the zip's: the vector is damaged")
    vector = _mapped(path, dtype, member_start + npy_header, shape[0])
    return vector, layout


def _read_npz_head(path: Path) -> None:
    problem = npz_problem(path)
    if problem is not None:
        raise LayoutError(f"{_NOT_OURS}: {problem}")


def _layout_member(archive: zipfile.ZipFile) -> str:
    with archive.open("layout.npy") as member:
        layout = np.lib.format.read_array(member, allow_pickle=False)
    if layout.ndim != 0 or layout.dtype.kind != "U":
        raise LayoutError(
            f"'layout' must be one JSON string, got shape {layout.shape} of {layout.dtype}"
        )
    return str(layout)


def _member_data_start(path: Path, info: zipfile.ZipInfo) -> int:
    """Where a stored zip member's bytes begin: after its local header (30 bytes, its
    name and its extra field, whose lengths the local header gives)."""
    with path.open("rb") as stream:
        stream.seek(info.header_offset)
        local = stream.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise LayoutError(f"{_NOT_OURS}: the 'vector' member's local header is damaged")
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_length + extra_length


def _mapped(path: Path, dtype: Any, offset: int, size: int) -> np.ndarray:
    if size == 0:
        return np.empty(0, dtype)  # mmap cannot map nothing
    return np.memmap(path, dtype=np.dtype(dtype), mode="r", offset=offset, shape=(size,))
