"""Save a vector with its layout, and load it back: .npz or .safetensors, never pickle."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from helpers._core import check_fits
from helpers._layout import Layout, LayoutError

_SUFFIXES = (".npz", ".safetensors")


def save(path: str | os.PathLike, vector: np.ndarray, layout: Layout) -> Path:
    """Write ``vector`` and its ``layout`` to one ``.npz`` or ``.safetensors`` file.

    The layout travels as JSON beside the vector (a string array in ``.npz``, the
    metadata in ``.safetensors``), so the file alone says how to read the vector.

    >>> import tempfile, numpy as np
    >>> from helpers import flatten
    >>> vector, layout = flatten({"bias": np.zeros(3)})
    >>> save(Path(tempfile.mkdtemp()) / "weights.npz", vector, layout).name
    'weights.npz'
    """
    path = Path(path)
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

        save_file({"vector": vector}, path, metadata={"layout": layout.to_json()})
    else:
        raise ValueError(f"{path.name}: expected a name ending in {_SUFFIXES}, got {path.suffix!r}")
    return path


def load(path: str | os.PathLike, model: Any = None) -> tuple[np.ndarray, Layout]:
    """Read a vector and its layout written by :func:`save`.

    With ``model``, also check that the layout fits it (same fingerprint), so the
    mistake surfaces on loading rather than on restoring.

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
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    vector, layout_json = _read_npz(path) if path.suffix == ".npz" else _read_safetensors(path)
    layout = Layout.from_json(layout_json)
    if vector.shape != (layout.size,) or str(vector.dtype) != layout.dtype:
        raise LayoutError(
            f"{path.name}: the layout expects {layout.size:,} values of {layout.dtype}, "
            f"the file holds shape {vector.shape} of {vector.dtype}"
        )
    if model is not None:
        try:
            check_fits(model, layout)
        except LayoutError as error:
            raise LayoutError(f"{path.name}: {error}") from None
    return vector, layout


def _read_npz(path: Path) -> tuple[np.ndarray, str]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"vector", "layout"} - set(archive.files)
            if missing:
                raise LayoutError(
                    f"{path.name}: expected arrays 'vector' and 'layout', missing {sorted(missing)}"
                )
            return archive["vector"], str(archive["layout"])
    except ValueError as error:
        if isinstance(error, LayoutError):
            raise
        raise LayoutError(
            f"{path.name}: not a vector file written by helpers.save ({error})"
        ) from error


def _read_safetensors(path: Path) -> tuple[np.ndarray, str]:
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as archive:
        metadata, tensor_names = archive.metadata() or {}, archive.keys()
        if "layout" not in metadata or "vector" not in tensor_names:
            raise LayoutError(f"{path.name}: expected a 'vector' tensor and 'layout' metadata")
        return archive.get_tensor("vector"), metadata["layout"]
