"""The layout manifest: which tensor sits where in a flat weight vector.

A :class:`Layout` is consistent by construction: however it is made (``from_specs``,
``from_json`` or the dataclass itself), ``__post_init__`` checks every field, so code
that receives a Layout never re-checks offsets, sizes or choices.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from math import prod
from numbers import Integral
from typing import Any, Literal, get_args

import numpy as np

Order = Literal["C", "F"]
Include = Literal["trainable", "all"]

# What a tensor may hold (bfloat16 travels as float32), and what the vector may be.
TENSOR_DTYPES = (
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
)
VECTOR_DTYPES = ("float16", "float32", "float64")

# What a tensor is for, as the adapter that made the layout knows it (see TensorEntry).
KINDS = ("weight", "bias", "scale", "shift", "statistic", "bias+weight", "unknown")

# Version 2 added the checksum, which covers order, include, dtype, names, kinds. Each entry's
# "kind" came later, as an optional key: a document whose entries have none (written before
# kinds) is still read, with every kind "unknown"; one with some but not all is refused.
_FORMAT_VERSION = 2
_ENTRY_FIELDS = ("name", "shape", "dtype", "offset", "size", "trainable")
_DOCUMENT_FIELDS = (
    "format_version",
    "framework",
    "include",
    "order",
    "dtype",
    "fingerprint",
    "entries",
    "checksum",
)


class LayoutError(ValueError):
    """A vector, layout and model do not fit together (the message says where)."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor's place in the vector: ``vector[offset : offset + size]``, and its kind.

    ``kind`` says what the tensor is for, as the adapter that made the layout knows it:
    ``"weight"`` (a kernel or weight matrix: dense, convolution, recurrent, embedding),
    ``"bias"``, ``"scale"`` and ``"shift"`` (a normalisation layer's γ and β: a torch
    ``BatchNorm``'s ``weight`` is a scale), ``"statistic"`` (running means, variances and
    counters), ``"bias+weight"`` (an nnet unit: its bias, then its incoming weights) or
    ``"unknown"`` (a dict's arrays, a custom module's tensors). It is a label: the
    fingerprint leaves it out, so a vector saved before kinds existed still fits.

    >>> TensorEntry("bias", (3,), "float32", offset=0, size=3, trainable=True).kind
    'unknown'
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    offset: int
    size: int
    trainable: bool
    kind: str = "unknown"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise LayoutError(f"tensor name: expected a str, got {self.name!r}")
        where = f"tensor {self.name!r}"
        object.__setattr__(self, "shape", checked_shape(self.name, self.shape))
        if self.dtype not in TENSOR_DTYPES:
            raise LayoutError(f"{where}: dtype must be one of {TENSOR_DTYPES}, got {self.dtype!r}")
        object.__setattr__(self, "offset", _checked_count(where, "offset", self.offset))
        size = _checked_count(where, "size", self.size)
        if size != prod(self.shape):
            raise LayoutError(
                f"{where}: size {size} does not match shape {self.shape} "
                f"(expected {prod(self.shape)})"
            )
        object.__setattr__(self, "size", size)
        if not isinstance(self.trainable, bool | np.bool_):
            raise LayoutError(f"{where}: trainable must be True or False, got {self.trainable!r}")
        object.__setattr__(self, "trainable", bool(self.trainable))
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise LayoutError(f"{where}: kind must be one of {KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class Layout:
    """Where each tensor of a model lives in its flat vector, and how to read it back.

    A layout is plain data: it survives a trip through JSON, and its ``fingerprint``
    names the model structure (each tensor's shape, dtype and trainability, in order),
    so a vector is never poured into a model of another shape. The entries lie back to
    back from offset 0, in order; any other arrangement is refused when the layout is made.

    >>> layout = Layout.from_specs([("kernel", (2, 3), "float32", True)], framework="numpy")
    >>> layout.size, layout["kernel"].offset
    (6, 0)
    """

    entries: tuple[TensorEntry, ...]
    framework: str
    include: Include = "trainable"
    order: Order = "C"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if not isinstance(self.entries, tuple | list):
            raise LayoutError(f"entries: expected a tuple of TensorEntry, got {self.entries!r}")
        object.__setattr__(self, "entries", tuple(self.entries))
        if not isinstance(self.framework, str) or not self.framework:
            raise LayoutError(f"framework: expected a framework name, got {self.framework!r}")
        _check_choice("include", self.include, Include)
        _check_choice("order", self.order, Order)
        _check_choice("dtype", self.dtype, VECTOR_DTYPES)
        _check_back_to_back(self.entries)

    @classmethod
    def from_specs(
        cls,
        specs: Sequence[tuple[Any, ...]],
        *,
        framework: str,
        include: Include = "trainable",
        order: Order = "C",
        dtype: str = "float32",
    ) -> Layout:
        """Lay tensors out back to back from ``(name, shape, dtype, trainable[, kind])`` specs.

        >>> Layout.from_specs([("b", (3,), "float32", True, "bias")], framework="numpy").size
        3
        """
        entries, offset = [], 0
        for name, shape, tensor_dtype, trainable, *kind in specs:
            size = prod(checked_shape(name, shape))
            entries.append(TensorEntry(name, shape, tensor_dtype, offset, size, trainable, *kind))
            offset += size
        return cls(tuple(entries), framework, include, order, dtype)

    @property
    def size(self) -> int:
        """Total number of values in the vector."""
        return sum(entry.size for entry in self.entries)

    @property
    def names(self) -> list[str]:
        """Tensor names in vector order."""
        return [entry.name for entry in self.entries]

    @cached_property
    def memo(self) -> dict[Any, Any]:
        """Scratch space for what is derived from this layout alone (it cannot change)."""
        return {}

    @cached_property  # a Layout cannot change, so neither can its fingerprint
    def fingerprint(self) -> str:
        """A short hash of the model structure: each tensor's shape, dtype and trainability.

        Names are left out on purpose: Keras numbers its layers per session
        (``dense``, ``dense_1``, ...), and a vector from one model should go into a
        freshly built twin. The memory order and vector dtype are left out too, so
        the C-order and F-order layouts of one model share a fingerprint; the JSON
        form carries a separate checksum that does cover them.
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
        """Serialise to a JSON string, with the fingerprint and a checksum checked on load.

        >>> layout = Layout.from_specs([("w", (2,), "float32", True)], framework="numpy")
        >>> Layout.from_json(layout.to_json()) == layout
        True
        """
        document = self._document()
        document["checksum"] = _checksum(document)
        return json.dumps(document, indent=1)

    @classmethod
    def from_json(cls, text: str | bytes) -> Layout:
        """Read a layout written by :meth:`to_json`, refusing anything edited or malformed.

        Every field is checked; the fingerprint must match the entries and the checksum
        the whole document (so an edited ``order``, ``include``, ``dtype``, name or kind
        is caught too). Any problem raises :class:`LayoutError` starting ``layout JSON:``.

        >>> layout = Layout.from_specs([("w", (2,), "float32", True)], framework="numpy")
        >>> Layout.from_json(layout.to_json()).fingerprint == layout.fingerprint
        True
        """
        try:
            return cls._from_document(_parse_document(text))
        except LayoutError as error:
            raise LayoutError(f"layout JSON: {error}") from None

    def _document(self, kinds: bool = True) -> dict[str, Any]:
        entries = [{**asdict(entry), "shape": list(entry.shape)} for entry in self.entries]
        if not kinds:  # the form written before kinds, to check such a document's checksum
            for fields in entries:
                del fields["kind"]
        return {
            "format_version": _FORMAT_VERSION,
            "framework": self.framework,
            "include": self.include,
            "order": self.order,
            "dtype": self.dtype,
            "fingerprint": self.fingerprint,
            "entries": entries,
        }

    @classmethod
    def _from_document(cls, document: dict[str, Any]) -> Layout:
        entries = []
        for index, fields in enumerate(document["entries"]):
            try:
                entries.append(TensorEntry(**fields))
            except LayoutError as error:
                raise LayoutError(f"entry #{index}: {error}") from None
        layout = cls(
            tuple(entries),
            document["framework"],
            document["include"],
            document["order"],
            document["dtype"],
        )
        if document["fingerprint"] != layout.fingerprint:
            raise LayoutError(
                f"fingerprint {document['fingerprint']!r}, but its entries give "
                f"{layout.fingerprint!r} (edited or corrupt)"
            )
        expected = _checksum(layout._document(kinds=_has_kinds(document)))
        if document["checksum"] != expected:
            raise LayoutError(
                f"checksum {document['checksum']!r}, but the document gives {expected!r} "
                "(edited or corrupt: its order, include, dtype, a name or a kind was changed)"
            )
        return layout


def checked_shape(name: str, shape: Any) -> tuple[int, ...]:
    """``shape`` as a tuple of Python ints, or :class:`LayoutError` naming the tensor.

    >>> checked_shape("kernel", [2, 3])
    (2, 3)
    """
    if isinstance(shape, tuple | list) and all(
        isinstance(dim, Integral) and not isinstance(dim, bool | np.bool_) and dim >= 0
        for dim in shape
    ):
        return tuple(int(dim) for dim in shape)
    raise LayoutError(
        f"tensor {name!r}: shape must be a tuple of non-negative integers, got {shape!r}"
    )


def _checked_count(where: str, field: str, value: Any) -> int:
    if isinstance(value, Integral) and not isinstance(value, bool | np.bool_) and value >= 0:
        return int(value)
    raise LayoutError(f"{where}: {field} must be a non-negative integer, got {value!r}")


def _check_choice(field: str, value: Any, allowed: Any) -> None:
    choices = get_args(allowed) or allowed
    if not isinstance(value, str) or value not in choices:
        raise LayoutError(f"{field} must be one of {choices}, got {value!r}")


def _check_back_to_back(entries: tuple[TensorEntry, ...]) -> None:
    offset, names = 0, set()
    for entry in entries:
        if not isinstance(entry, TensorEntry):
            raise LayoutError(f"entries: expected TensorEntry objects, got {entry!r}")
        if entry.offset != offset:
            raise LayoutError(
                f"tensor {entry.name!r}: offset {entry.offset}, expected {offset} "
                "(entries lie back to back, in order, from offset 0)"
            )
        if entry.name in names:
            raise LayoutError(f"tensor names must be unique; repeated: {[entry.name]}")
        names.add(entry.name)
        offset += entry.size


def _checksum(document: dict[str, Any]) -> str:
    """A hash of everything in the document but the checksum itself."""
    fields = {key: value for key, value in document.items() if key != "checksum"}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _parse_document(text: Any) -> dict[str, Any]:
    """The JSON document with the right keys and containers; values are checked later."""
    if not isinstance(text, str | bytes | bytearray):
        raise LayoutError(f"expected a JSON string, got {type(text).__name__}")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeError too
        raise LayoutError(f"not valid JSON ({type(error).__name__}: {error})") from None
    if not isinstance(document, dict):
        raise LayoutError(f"expected a JSON object, got {type(document).__name__}")
    version = document.get("format_version")
    if version != _FORMAT_VERSION:
        raise LayoutError(
            f"format_version {version!r}, expected {_FORMAT_VERSION}"
            + (" (written before layouts had a checksum: save it again)" if version == 1 else "")
        )
    _check_keys("the document", document, _DOCUMENT_FIELDS)
    if not isinstance(document["entries"], list):
        raise LayoutError(f"entries: expected a list, got {document['entries']!r}")
    for index, entry in enumerate(document["entries"]):
        if not isinstance(entry, dict):
            raise LayoutError(f"entry #{index}: expected a JSON object, got {entry!r}")
    # Kinds on every entry, or (a document written before kinds) on none.
    fields = (*_ENTRY_FIELDS, "kind") if _has_kinds(document) else _ENTRY_FIELDS
    for index, entry in enumerate(document["entries"]):
        _check_keys(f"entry #{index}", entry, fields)
    return document


def _has_kinds(document: dict[str, Any]) -> bool:
    """Whether the document's entries carry kinds (its first entry says; all must agree)."""
    return bool(document["entries"]) and "kind" in document["entries"][0]


def _check_keys(where: str, fields: dict[str, Any], expected: Sequence[str]) -> None:
    missing = [key for key in expected if key not in fields]
    unknown = sorted(str(key) for key in fields if key not in expected)
    if missing or unknown:
        raise LayoutError(f"{where}: missing keys {missing}, unknown keys {unknown}")
