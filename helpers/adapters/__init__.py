"""One adapter per framework, each imported only when a model of its kind turns up.

An adapter turns a model into a list of :class:`TensorHandle` objects: a name, the
tensor's shape and dtype, and two callables that read it as a NumPy array and write a
NumPy array back in place. The core in ``helpers._core`` does everything else.

An adapter may also offer ``probe(model, include)``: a cheap look at the live tensors
(their identities, shapes, dtypes, memory) from which :func:`model_tensors` decides
whether the handles it built for this model last time still describe it, so that
building them (and checking them: names, kinds, shared memory) is paid once per
structure, not once per call.
"""

from __future__ import annotations

import importlib
import weakref
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.array_utils import byte_bounds

from helpers._layout import TENSOR_DTYPES, Include, LayoutError


@dataclass(frozen=True)
class TensorHandle:
    """A framework tensor seen through NumPy: read it, or write an array into it.

    ``kind`` is what the tensor is for (one of ``helpers._layout.KINDS``), as far as the
    adapter can tell; ``"unknown"`` when it cannot.

    ``write`` takes an array of the tensor's shape, in any dtype that casts to the
    tensor's without loss (the core checks the values first), and may keep no reference
    to it. ``check_writable`` raises :class:`LayoutError` now if a write would be refused
    (a read-only array, an inference tensor). ``fallible`` says whether a write may still
    fail after that check passed (a device copy, a framework's assign); only those are
    backed up, through ``snapshot`` (a copy that ``write`` takes back; by default a NumPy
    copy of ``read()``). ``host_bytes`` is the range of host memory the tensor's elements
    occupy, where a vector could alias them (None where it cannot).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool
    read: Callable[[], np.ndarray]
    write: Callable[[Any], None]
    kind: str = "unknown"
    fallible: bool = True
    check_writable: Callable[[], None] = field(default=lambda: None, repr=False)
    snapshot: Callable[[], Any] | None = field(default=None, repr=False)
    host_bytes: tuple[int, int] | None = None

    def backup(self) -> Any:
        """A copy of the tensor's values that :attr:`write` can put back."""
        return self.snapshot() if self.snapshot is not None else np.array(self.read(), copy=True)


def live_reference(name: str, tensor: Any) -> Callable[[], Any]:
    """A function that returns ``tensor`` while it lives, else raises naming it.

    Handles are cached per model, so they hold a tensor weakly: a tensor the model has
    dropped is neither kept alive nor written into.

    >>> class Tensor: ...
    >>> tensor = Tensor()
    >>> live = live_reference("bias", tensor)
    >>> live() is tensor
    True
    >>> del tensor
    >>> live()
    Traceback (most recent call last):
    helpers._layout.LayoutError: tensor 'bias' no longer exists: the model let go of it
    """
    reference = weakref.ref(tensor)

    def live() -> Any:
        current = reference()
        if current is None:
            raise LayoutError(f"tensor {name!r} no longer exists: the model let go of it")
        return current

    return live


def write_all(
    plan: list[tuple[TensorHandle, Any]],
    *,
    atomic: bool = True,
    scatter: Callable[[list[Any]], None] | None = None,
) -> None:
    """Write each array through its handle, all or nothing.

    First every array's shape is checked against its handle (a write must never
    broadcast or reshape: this is the one shape check of every writer) and every handle's
    ``check_writable`` runs; nothing is written unless all pass. Then the writes that can
    fail (``handle.fallible``) go first, each tensor backed up just before, and if one
    fails all that were touched are put back; the writes that cannot fail follow. A
    KeyboardInterrupt (Ctrl-C) among those finishes them before it is raised, so it cannot
    leave the model half-written either. ``atomic=False`` takes no backups: a failure
    leaves earlier tensors written. ``scatter``, if given, writes all of the plan's
    arrays at once (its handles, in order, all infallible: ``ModelTensors.scatter``);
    being one call, nothing can stop it half-way.

    >>> weights = {"bias": np.zeros(2)}
    >>> write_all([(handles_for(weights, "all")[1][0], np.ones(2))])
    >>> weights["bias"].tolist()
    [1.0, 1.0]
    """
    for handle, array in plan:
        shape = array.shape if isinstance(array, np.ndarray) else tuple(np.shape(array))
        if shape != tuple(handle.shape):
            raise LayoutError(
                f"tensor {handle.name!r}: expected shape {tuple(handle.shape)}, "
                f"got {tuple(np.shape(array))}"
            )
    for handle, _ in plan:
        handle.check_writable()
    if scatter is not None:
        scatter([array for _, array in plan])
        return
    fallible = [(handle, array) for handle, array in plan if handle.fallible]
    certain = [(handle, array) for handle, array in plan if not handle.fallible]
    if not atomic:
        for handle, array in fallible + certain:
            handle.write(array)
        return
    progress = {"fallible done": False, "certain written": 0}
    try:
        _write_or_put_back(fallible, progress)
        for handle, array in certain:
            handle.write(array)
            progress["certain written"] += 1
    except KeyboardInterrupt:
        if progress["fallible done"]:  # too late to go back: go forward
            _finish(certain, progress)
        raise


def _write_or_put_back(plan: list[tuple[TensorHandle, Any]], progress: dict[str, Any]) -> None:
    backups: list[Any] = []
    try:
        for handle, array in plan:
            backups.append(handle.backup())
            handle.write(array)
        progress["fallible done"] = True
    except BaseException:
        if not progress["fallible done"]:
            for (handle, _), backup in zip(plan, backups, strict=False):
                handle.write(backup)
        raise


def _finish(certain: list[tuple[TensorHandle, Any]], progress: dict[str, Any]) -> None:
    """Make the writes that cannot fail, after a Ctrl-C: writing one twice is harmless."""
    while progress["certain written"] < len(certain):
        try:
            handle, array = certain[progress["certain written"]]
            handle.write(array)
            progress["certain written"] += 1
        except KeyboardInterrupt:
            continue


# (framework name, module prefix of a base class, adapter module)
_ADAPTERS = [
    ("keras", "keras", "helpers.adapters.keras_adapter"),
    ("torch", "torch.nn", "helpers.adapters.torch_adapter"),
    ("sklearn", "sklearn.neural_network", "helpers.adapters.sklearn_adapter"),
    ("nnet", "helpers.nnet", "helpers.adapters.nnet_adapter"),
]


# The framework of each model class seen (weakly: classes made on the fly may go).
_FRAMEWORKS: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()


def framework_of(model: Any) -> str:
    """Name the framework a model belongs to, without importing any framework.

    >>> framework_of({"kernel": np.zeros((2, 3))})
    'numpy'
    """
    if isinstance(model, Mapping):
        return "numpy"
    framework = _FRAMEWORKS.get(type(model))
    if framework is not None:
        return framework
    modules = [cls.__module__ for cls in type(model).__mro__]
    for framework, prefix, _ in _ADAPTERS:
        if any(module == prefix or module.startswith(prefix + ".") for module in modules):
            _FRAMEWORKS[type(model)] = framework
            return framework
    raise TypeError(
        f"no adapter for {type(model).__module__}.{type(model).__qualname__}; expected a Keras "
        "model, a torch.nn.Module, a scikit-learn MLP, a helpers.nnet fit, or a dict of arrays"
    )


def handles_for(model: Any, include: Include) -> tuple[str, list[TensorHandle]]:
    """Return the model's framework name and its tensors as handles, in vector order."""
    tensors = model_tensors(model, include)
    return tensors.framework, tensors.handles


@dataclass
class ModelTensors:
    """A model's tensors as handles, and a memo for what depends only on them.

    The memo (the core keeps the model's layouts there) lives as long as the handles:
    it is dropped with them when the model's structure changes.
    """

    framework: str
    handles: list[TensorHandle]
    memo: dict[Hashable, Any] = field(default_factory=dict)
    # Where the adapter has them, one call for all tensors (cheaper than one per tensor):
    # gather() gives every tensor's values, in order, in one new 1-D array of their common
    # dtype; scatter(arrays) writes arrays[i] into tensor i, as write_all would.
    gather: Callable[[], np.ndarray] | None = None
    scatter: Callable[[list[np.ndarray]], None] | None = None


@dataclass
class _Cached:
    key: object  # shapes, dtypes, strides, memory, trainability, names, as probed
    ids: list[int]  # id() of each probed object: all alive while this entry is cached
    referents: list[weakref.ref]  # whose callbacks drop this entry once one of them dies
    tensors: ModelTensors


# id(model) -> (a weak reference to the model, {include: _Cached}); an entry goes when
# its model is collected. Keyed by identity: a model's own __eq__/__hash__ is never asked.
_CACHE: dict[int, tuple[weakref.ref, dict[str, _Cached]]] = {}


def model_tensors(model: Any, include: Include) -> ModelTensors:
    """The model's tensors as handles, reused from the last call while they still fit.

    Reuse needs the adapter's probe to give the same key (every tensor's shape, dtype,
    strides, memory address, trainability and name) and the very same tensor objects;
    a tensor replaced, resized, moved or frozen makes new handles.

    >>> model_tensors({"bias": np.zeros(2)}, "all").handles[0].shape
    (2,)
    """
    framework = framework_of(model)
    if framework == "numpy":
        return ModelTensors(framework, _nonempty(_array_handles(model), model, include))
    adapter = _adapter(framework)
    probe = getattr(adapter, "probe", None)
    probed = probe(model, include) if probe is not None else None
    if probed is None:  # nothing cheap to compare: build afresh
        return _built(adapter, framework, model, include)
    key, objects = probed
    per_include = _cache_of(model)
    cached = per_include.get(include) if per_include is not None else None
    ids = list(map(id, objects))
    # Equal ids are the same objects: none of the cached ones has died (that would have
    # dropped the entry), so no other object can have been given one of their ids.
    if cached is not None and cached.ids == ids and cached.key == key:
        return cached.tensors
    tensors = _built(adapter, framework, model, include)
    if per_include is not None:
        per_include[include] = _cached(id(model), include, key, objects, tensors)
    return tensors


def _built(adapter: Any, framework: str, model: Any, include: Include) -> ModelTensors:
    handles = _nonempty(adapter.handles(model, include), model, include)
    gatherer = getattr(adapter, "gatherer", None)
    scatterer = getattr(adapter, "scatterer", None)
    return ModelTensors(
        framework,
        handles,
        gather=gatherer(model, handles) if gatherer is not None else None,
        scatter=scatterer(model, handles) if scatterer is not None else None,
    )


def _nonempty(handles: list[TensorHandle], model: Any, include: Include) -> list[TensorHandle]:
    """The handles, or a clear error where there are none (a vector of nothing helps no one)."""
    if handles:
        return handles
    hint = "; frozen weights and buffers count only with include='all'"
    raise LayoutError(
        f"{type(model).__name__} has no tensors to take with include={include!r}: expected "
        f"at least one weight, got none{hint if include == 'trainable' else ''}"
    )


def _cached(
    model_key: int, include: str, key: object, objects: list[Any], tensors: ModelTensors
) -> _Cached:
    entry = _Cached(key, list(map(id, objects)), [], tensors)

    def forget(_: weakref.ref) -> None:  # one of the probed objects is being collected
        per_include = _CACHE.get(model_key, (None, {}))[1]
        current = entry_reference()
        if current is not None and per_include.get(include) is current:
            del per_include[include]

    entry_reference = weakref.ref(entry)  # a weak one: the entry must not keep itself
    entry.referents = [weakref.ref(obj, forget) for obj in objects]
    return entry


def _adapter(framework: str) -> Any:
    adapter = _LOADED.get(framework)
    if adapter is None:
        module_name = next(module for name, _, module in _ADAPTERS if name == framework)
        adapter = _LOADED[framework] = importlib.import_module(module_name)
    return adapter


_LOADED: dict[str, Any] = {}  # framework name -> its adapter module, once imported


def _cache_of(model: Any) -> dict[str, _Cached] | None:
    key = id(model)
    entry = _CACHE.get(key)
    if entry is not None and entry[0]() is model:
        return entry[1]
    try:
        reference = weakref.ref(model, lambda _, key=key: _CACHE.pop(key, None))
    except TypeError:  # not weakly referenceable: no caching
        return None
    _CACHE[key] = (reference, {})
    return _CACHE[key][1]


def _array_handles(arrays: Mapping[str, np.ndarray]) -> list[TensorHandle]:
    """A dict of NumPy arrays is the simplest model: every array is trainable.

    Their kinds are ``"unknown"``: a name is the caller's choice, and guessing from it
    ("kernel", "w", "beta"?) could be wrong in silence; select a dict's tensors by name.

    The same array under two names is one tensor, kept under its first name (like tied
    weights in torch); two different arrays that share memory (overlapping views) are
    refused, since writing one would change the other.
    """
    handles, seen = [], set()
    for name, array in arrays.items():
        if not isinstance(name, str):
            raise TypeError(
                f"{name!r}: expected str names for the arrays, got {type(name).__name__}"
            )
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name!r}: expected a numpy.ndarray, got {type(array).__name__}")
        if str(array.dtype) not in TENSOR_DTYPES:
            raise TypeError(
                f"tensor {name!r}: dtype {array.dtype} cannot travel in a real-valued vector "
                "(expected a float, integer or bool dtype)"
            )
        if id(array) in seen:
            continue
        seen.add(id(array))
        handles.append(
            TensorHandle(
                name=name,
                shape=array.shape,
                dtype=str(array.dtype),
                trainable=True,
                read=lambda array=array: array,
                write=lambda values, name=name, array=array: _write_array(name, array, values),
                fallible=False,
                check_writable=lambda name=name, array=array: check_writable_array(name, array),
                host_bytes=byte_bounds(array),
            )
        )
    regions = [(h.name, *byte_bounds(arrays[h.name]), arrays[h.name]) for h in handles]
    check_no_shared_memory(regions, arrays_share_memory)
    return handles


def _write_array(name: str, array: np.ndarray, values: np.ndarray) -> None:
    check_writable_array(name, array)
    # The core checked the values (whole numbers for an integer array), so no cast loses.
    np.copyto(array, values, casting="unsafe")


def check_writable_array(name: str, array: np.ndarray) -> None:
    """Refuse, naming the tensor, a NumPy array that cannot take values in place."""
    if not array.flags.writeable:
        raise LayoutError(
            f"tensor {name!r}: the array is read-only (flags.writeable is False), "
            "so it cannot be restored in place"
        )
    if may_overlap_itself(array.shape, array.strides, array.itemsize):
        raise LayoutError(
            f"tensor {name!r}: several elements share one memory location (strides "
            f"{array.strides}, e.g. a broadcast view); give it its own memory with .copy()"
        )


def may_overlap_itself(shape: tuple[int, ...], strides: tuple[int, ...], itemsize: int) -> bool:
    """Whether two elements of a strided tensor may sit at one address (stride 0, say).

    ``strides`` and ``itemsize`` in one unit (bytes for NumPy, elements for torch with
    ``itemsize=1``). Each stride, smallest first, must step past all that the smaller
    dimensions span; that is sufficient for no overlap, and true of every ordinary tensor.

    >>> may_overlap_itself((2, 3), (24, 8), 8), may_overlap_itself((2, 3), (0, 8), 8)
    (False, True)
    """
    if 0 in shape:
        return False
    reach = itemsize
    for stride, size in sorted(
        (abs(st), size) for size, st in zip(shape, strides, strict=True) if size > 1
    ):
        if stride < reach:
            return True
        reach += stride * (size - 1)
    return False


def check_no_shared_memory(
    regions: list[tuple[str, int, int, Any]], share: Callable[[Any, Any], bool]
) -> None:
    """Refuse two distinct tensors whose memory overlaps: writing one would change the other.

    ``regions`` holds ``(name, first byte, byte past the end, tensor)``; only pairs whose
    byte ranges overlap are passed to ``share`` for an exact answer, so the cost is a
    sort, not a comparison of every pair.
    """
    open_regions: list[tuple[int, int, Any]] = []  # (end, index, tensor) of earlier ranges
    by_start = sorted(range(len(regions)), key=lambda index: regions[index][1])
    for index in by_start:
        _, start, stop, tensor = regions[index]
        if stop <= start:
            continue  # no elements, no memory
        open_regions = [region for region in open_regions if region[0] > start]
        for _, other_index, other in open_regions:
            if share(other, tensor):
                first, second = sorted((index, other_index))
                raise LayoutError(
                    f"tensors {regions[first][0]!r} and {regions[second][0]!r} share memory but "
                    "are different tensors (overlapping views), so one vector cannot hold both: "
                    "give each its own memory (.copy() / .clone()), or use one tensor for both"
                )
        open_regions.append((stop, index, tensor))


def arrays_share_memory(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two arrays have an element in common (exact, within a bounded effort)."""
    try:
        return bool(np.shares_memory(first, second, max_work=10_000))
    except np.exceptions.TooHardError:
        return True  # cannot rule it out: refuse rather than risk a silent overwrite
