"""Save a vector with its layout, and load it back: .npz or .safetensors, never pickle."""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from helpers._core import check_fits
from helpers._layout import Layout, LayoutError

_SUFFIXES = (".npz", ".safetensors")


def save(path: str | os.PathLike, vector: np.ndarray, layout: Layout) -> Path:
    """Write ``vector`` and its ``layout`` to one ``.npz`` or ``.safetensors`` file.

    The layout travels as JSON beside the vector (a string array in ``.npz``, the
    metadata in ``.safetensors``), so the file alone says how to read the vector. Both
    formats carry a CRC-32 of the vector's bytes (the zip's own in ``.npz``, one in the
    metadata in ``.safetensors``), so :func:`load` notices a damaged vector.

    >>> import tempfile, numpy as np
    >>> from helpers import flatten
    >>> vector, layout = flatten({"bias": np.zeros(3)})
    >>> save(Path(tempfile.mkdtemp()) / "weights.npz", vector, layout).name
    'weights.npz'
    """
    path = Path(path)
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


def load(path: str | os.PathLike, model: Any = None) -> tuple[np.ndarray, Layout]:
    """Read a vector and its layout written by :func:`save`.

    With ``model``, also check that the layout fits it (same fingerprint), so the
    mistake surfaces on loading rather than on restoring. A file that is damaged, of
    another kind, or edited raises :class:`LayoutError` starting with the file's name.

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
        vector, layout_json = _read_npz(path) if path.suffix == ".npz" else _read_safetensors(path)
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
    problem = npz_problem(path)
    if problem is not None:
        raise LayoutError(f"{_NOT_OURS}: {problem}")
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
