"""Saving scikit-learn heads without pickle: ``head.skops`` with an explicit allow-list.

Why skops rather than the fitted arrays in ``.npz`` plus parameters in JSON: a fitted head is
a tree of estimators (pipeline → scaler → calibrated SVC → its libsvm state …) whose fitted
attributes are private to scikit-learn and change between its versions. Writing that tree by
hand means one serialiser per class to keep in step with scikit-learn; skops.io is the
maintained library that does exactly this (scikit-learn's documentation points to it as the
secure alternative to pickle). A ``.skops`` file is a zip of ``schema.json`` (the tree: each
node's loader, module and class, and its state) and ``.npy`` arrays read with
``allow_pickle=False``; loading builds objects from that state and never unpickles.

skops trusts every public scikit-learn estimator by default. This module is stricter: before
skops sees a file, :func:`refused_types` walks its ``schema.json`` and refuses any node whose
type is not on the format's allow-list (the classes the heads are built of, builtin
containers and scalars, numeric numpy arrays) or whose loader is not a plain data loader
(no functions, methods, ``__reduce__`` or operator nodes).
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from bottleneck.heads.registry import HeadFileError, HeadFormat
from bottleneck.storage.atomic import atomic_write

SKOPS_FILE = "head.skops"
# skops node loaders that rebuild plain data or an object of an allowed class from its state.
DATA_LOADERS = frozenset({"ObjectNode", "DictNode", "ListNode", "TupleNode", "JsonNode",
                          "NdArrayNode", "TypeNode", "CachedNode"})
BUILTIN_TYPES = frozenset(f"builtins.{name}" for name in (
    "dict", "list", "tuple", "str", "int", "float", "bool", "NoneType"))
NUMPY_TYPES = frozenset({"numpy.ndarray"} | {
    f"numpy.{kind.__name__}" for kind in set(np.sctypeDict.values())
    if np.dtype(kind).kind in "biufU"})  # bool, integers, floats, unicode: no object arrays


def type_name(cls: type) -> str:
    """``module.Class``, the way skops records a type."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every node of a skops schema (dicts that carry ``__class__``)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "__class__" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def read_schema(data: bytes) -> Any:
    """The ``schema.json`` of a skops file, or HeadFileError if it is not one."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, ValueError) as exc:
        raise HeadFileError(f"{SKOPS_FILE} is not a skops file ({exc})") from None


def refused_types(schema: Any, allowed: frozenset[str]) -> list[str]:
    """The ``loader module.Class`` entries of ``schema`` that are not allowed, sorted."""
    refused = set()
    for node in _nodes(schema):
        loader, name = node.get("__loader__"), f"{node.get('__module__')}.{node['__class__']}"
        if loader not in DATA_LOADERS or name not in allowed:
            refused.add(f"{loader} {name}")
    return sorted(refused)


def skops_format(*trusted: type, upgrade: Callable[[Any], BaseEstimator] | None = None
                 ) -> HeadFormat:
    """A :class:`HeadFormat` writing ``head.skops`` that loads only the ``trusted`` classes.

    ``upgrade`` turns what a file holds into the head (an earlier format's shape into the
    current one), raising HeadFileError for an object that is no head.
    """
    estimators = frozenset(type_name(cls) for cls in trusted)
    allowed = estimators | BUILTIN_TYPES | NUMPY_TYPES

    def save(head: BaseEstimator, directory: Path) -> list[str]:
        skops_io = _skops_io()
        data = skops_io.dumps(head)
        refused = refused_types(read_schema(data), allowed)
        if refused:  # a head built of classes its format does not list: a bug, not user input
            raise TypeError(f"{type(head).__name__} holds types its format does not trust "
                            f"({', '.join(refused)}); add them to its skops_format(...)")
        atomic_write(Path(directory) / SKOPS_FILE, data)
        return [SKOPS_FILE]

    def load(directory: Path) -> BaseEstimator:
        skops_io = _skops_io()
        data = (Path(directory) / SKOPS_FILE).read_bytes()
        refused = refused_types(read_schema(data), allowed)
        if refused:
            raise HeadFileError(f"{SKOPS_FILE} holds types outside the allow-list: "
                                f"{', '.join(refused)}")
        try:  # only allowed types are left: what remains is malformed state
            head = skops_io.loads(data, trusted=sorted(estimators))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise HeadFileError(f"{SKOPS_FILE} is damaged ({type(exc).__name__}: {exc})") \
                from None
        if not isinstance(head, BaseEstimator):
            raise HeadFileError(f"{SKOPS_FILE} holds a {type(head).__name__}, not an estimator")
        return upgrade(head) if upgrade is not None else head

    return HeadFormat(save, load, files=(SKOPS_FILE,))


def _skops_io() -> ModuleType:
    """``skops.io``, imported in a fraction of its own import time.

    On import, skops lists every public scikit-learn estimator as its default trust list by
    importing every scikit-learn package (~2 s, and torch through
    ``externals.array_api_compat.torch`` where it is installed). Our heads never use that
    list (loads pass their own allow-list), so it is listed on first use instead: the import
    sees an empty listing, then the list becomes a :class:`_EstimatorNames` that fills itself
    the first time anything (a user's own ``skops.io.load`` in this process) reads it.
    """
    if "skops.io" in sys.modules:
        import skops.io

        return skops.io
    import sklearn.utils

    listing = sklearn.utils.all_estimators
    sklearn.utils.all_estimators = lambda *args, **kwargs: []  # type: ignore[assignment]
    try:
        import skops.io
        import skops.io._general as general
        import skops.io._trusted_types as trusted
    finally:
        sklearn.utils.all_estimators = listing
    names = _EstimatorNames(listing)
    if getattr(trusted, _NAMES, None) == [] and getattr(general, _NAMES, None) is not None:
        setattr(trusted, _NAMES, names)
        setattr(general, _NAMES, names)
    else:  # a skops whose internals moved: its own full listing, as it would do
        setattr(trusted, _NAMES, list(names))
        setattr(general, _NAMES, getattr(trusted, _NAMES))
    return skops.io


_NAMES = "SKLEARN_ESTIMATOR_TYPE_NAMES"


class _EstimatorNames(list):
    """skops' default trust list (``module.Class`` of every public scikit-learn estimator),
    listed on first read. scikit-learn's listing imports ``array_api_compat.torch`` (seconds)
    for no estimator of ours; where torch is not loaded yet it is hidden for the listing
    (scikit-learn skips a package that cannot be imported)."""

    def __init__(self, listing: Callable[[], list[tuple[str, type]]]) -> None:
        super().__init__()
        self._listing: Callable[[], list[tuple[str, type]]] | None = listing

    def _fill(self) -> None:
        if self._listing is None:
            return
        from skops.io._utils import get_type_name

        listing, self._listing = self._listing, None
        hide = "torch" not in sys.modules
        if hide:
            sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` fails
        try:
            self.extend(name for name in (get_type_name(cls) for _, cls in listing())
                        if name.startswith("sklearn."))
        finally:
            if hide:
                del sys.modules["torch"]
                sys.modules.pop("sklearn.externals.array_api_compat.torch", None)

    def __iter__(self) -> Iterator[str]:
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def __contains__(self, item: object) -> bool:
        self._fill()
        return super().__contains__(item)

    def __getitem__(self, index: Any) -> Any:
        self._fill()
        return super().__getitem__(index)

    def __add__(self, other: Any) -> list[str]:  # type: ignore[override]
        self._fill()
        return list(self) + list(other)

    def __radd__(self, other: Any) -> list[str]:
        self._fill()
        return list(other) + list(self)

    def __eq__(self, other: object) -> bool:
        self._fill()
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]
