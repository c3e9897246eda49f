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
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from bottleneck.heads.registry import HeadFileError, HeadFormat
from bottleneck.heads.skops_import import skops_io
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
        skops = skops_io()
        data = skops.dumps(head)
        refused = refused_types(read_schema(data), allowed)
        if refused:  # a head built of classes its format does not list: a bug, not user input
            raise TypeError(f"{type(head).__name__} holds types its format does not trust "
                            f"({', '.join(refused)}); add them to its skops_format(...)")
        atomic_write(Path(directory) / SKOPS_FILE, data)
        return [SKOPS_FILE]

    def load(directory: Path) -> BaseEstimator:
        skops = skops_io()
        data = (Path(directory) / SKOPS_FILE).read_bytes()
        refused = refused_types(read_schema(data), allowed)
        if refused:
            raise HeadFileError(f"{SKOPS_FILE} holds types outside the allow-list: "
                                f"{', '.join(refused)}")
        try:  # only allowed types are left: what remains is malformed state
            head = skops.loads(data, trusted=sorted(estimators))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise HeadFileError(f"{SKOPS_FILE} is damaged ({type(exc).__name__}: {exc})") \
                from None
        if not isinstance(head, BaseEstimator):
            raise HeadFileError(f"{SKOPS_FILE} holds a {type(head).__name__}, not an estimator")
        return upgrade(head) if upgrade is not None else head

    return HeadFormat(save, load, files=(SKOPS_FILE,))
