"""The layout manifest: which tensor sits where in a flat weight vector."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from math import prod
from typing import Literal

Order = Literal["C", "F"]
Include = Literal["trainable", "all"]

_FORMAT_VERSION = 1


class LayoutError(ValueError):
    """A vector, layout and model do not fit together (the message says where)."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor's place in the vector: ``vector[offset : offset + size]``."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    offset: int
    size: int
    trainable: bool


@dataclass(frozen=True)
class Layout:
    """Where each tensor of a model lives in its flat vector, and how to read it back.

    A layout is plain data: it survives a trip through JSON, and its ``fingerprint``
    names the model structure (each tensor's shape, dtype and trainability, in order),
    so a vector is never poured into a model of another shape.

    >>> layout = Layout.from_specs([("kernel", (2, 3), "float32", True)], framework="numpy")
    >>> layout.size, layout["kernel"].offset
    (6, 0)
    """

    entries: tuple[TensorEntry, ...]
    framework: str
    include: Include = "trainable"
    order: Order = "C"
    dtype: str = "float32"

    @classmethod
    def from_specs(
        cls,
        specs: Sequence[tuple[str, tuple[int, ...], str, bool]],
        *,
        framework: str,
        include: Include = "trainable",
        order: Order = "C",
        dtype: str = "float32",
    ) -> Layout:
        """Lay tensors out back to back from ``(name, shape, dtype, trainable)`` specs.

        >>> Layout.from_specs([("b", (3,), "float32", True)], framework="numpy").size
        3
        """
        entries, offset = [], 0
        for name, shape, tensor_dtype, trainable in specs:
            size = prod(shape)
            entries.append(TensorEntry(name, tuple(shape), tensor_dtype, offset, size, trainable))
            offset += size
        names = [entry.name for entry in entries]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise LayoutError(f"tensor names must be unique; repeated: {repeated}")
        return cls(tuple(entries), framework, include, order, dtype)

    @property
    def size(self) -> int:
        """Total number of values in the vector."""
        return sum(entry.size for entry in self.entries)

    @property
    def names(self) -> list[str]:
        """Tensor names in vector order."""
        return [entry.name for entry in self.entries]

    @property
    def fingerprint(self) -> str:
        """A short hash of the model structure: each tensor's shape, dtype and trainability.

        Names are left out on purpose: Keras numbers its layers per session
        (``dense``, ``dense_1``, ...), and a vector from one model should go into a
        freshly built twin. The memory order and vector dtype are left out too, so
        the C-order and F-order layouts of one model share a fingerprint.
        """
        structure = [self.framework] + [
            [list(entry.shape), entry.dtype, entry.trainable] for entry in self.entries
        ]
        return hashlib.sha256(json.dumps(structure).encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[TensorEntry]:
        return iter(self.entries)

    def __getitem__(self, name: str) -> TensorEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(f"no tensor named {name!r}; the layout has {self.names}")

    def __str__(self) -> str:
        width = max([len("name")] + [len(entry.name) for entry in self.entries])
        lines = [
            f"{self.framework} layout: {len(self)} tensors, {self.size:,} values, "
            f"order={self.order}, dtype={self.dtype}, fingerprint={self.fingerprint}",
            f"{'name':<{width}}  {'shape':<16} {'dtype':<9} {'offset':>9} {'size':>9}  trainable",
        ]
        for entry in self.entries:
            lines.append(
                f"{entry.name:<{width}}  {str(entry.shape):<16} {entry.dtype:<9} "
                f"{entry.offset:>9,} {entry.size:>9,}  {entry.trainable}"
            )
        return "\n".join(lines)

    def to_json(self) -> str:
        """Serialise to a JSON string (with the fingerprint, checked on load).

        >>> layout = Layout.from_specs([("w", (2,), "float32", True)], framework="numpy")
        >>> Layout.from_json(layout.to_json()) == layout
        True
        """
        document = {
            "format_version": _FORMAT_VERSION,
            "framework": self.framework,
            "include": self.include,
            "order": self.order,
            "dtype": self.dtype,
            "fingerprint": self.fingerprint,
            "entries": [asdict(entry) for entry in self.entries],
        }
        return json.dumps(document, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Layout:
        """Read a layout written by :meth:`to_json`, checking that it is intact.

        >>> layout = Layout.from_specs([("w", (2,), "float32", True)], framework="numpy")
        >>> Layout.from_json(layout.to_json()).fingerprint == layout.fingerprint
        True
        """
        document = json.loads(text)
        version = document.get("format_version")
        if version != _FORMAT_VERSION:
            raise LayoutError(
                f"layout JSON: format_version {version!r}, expected {_FORMAT_VERSION}"
            )
        specs = [
            (entry["name"], tuple(entry["shape"]), entry["dtype"], entry["trainable"])
            for entry in document["entries"]
        ]
        layout = cls.from_specs(
            specs,
            framework=document["framework"],
            include=document["include"],
            order=document["order"],
            dtype=document["dtype"],
        )
        stored = [(entry["offset"], entry["size"]) for entry in document["entries"]]
        if stored != [(entry.offset, entry.size) for entry in layout.entries]:
            raise LayoutError("layout JSON: offsets/sizes do not match the shapes")
        if document["fingerprint"] != layout.fingerprint:
            raise LayoutError(
                f"layout JSON: fingerprint {document['fingerprint']}, "
                f"but its entries give {layout.fingerprint} (edited or corrupt)"
            )
        return layout
