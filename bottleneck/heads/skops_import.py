"""``skops.io``, imported in a fraction of its own import time: :func:`skops_io`.

On import, skops computes its default trust lists, none of which our heads use (their loads
pass their own allow-list, see ``sklearn_io``):

- every public scikit-learn estimator, by importing every scikit-learn package (~2 s, and
  torch through ``externals.array_api_compat.torch`` where it is installed);
- every ufunc of ``scipy.special``, each found by a search through every module loaded
  (~0.2 s in a process that has scikit-learn loaded; it would also import any module that
  waits for first use, such as a deferred ``scipy.stats``).

Here skops imports with both lists empty (``sklearn.utils.all_estimators`` answering nothing,
``scipy.special`` listing no names for that moment), and each list then becomes a
:class:`LazyNames` that skops' own code fills the first time anything (a user's own
``skops.io.load`` in this process) reads it. The scikit-learn modules skops imports are
imported with the same scipy packages deferred (see ``sklearn_import``).
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

ESTIMATORS = "SKLEARN_ESTIMATOR_TYPE_NAMES"
UFUNCS = "SCIPY_UFUNC_TYPE_NAMES"
# The skops modules that hold each list under its name (from-imported at their import).
HOLDERS = {ESTIMATORS: ("skops.io._trusted_types", "skops.io._general"),
           UFUNCS: ("skops.io._trusted_types", "skops.io._general",
                    "skops.io.old._general_v0")}


def skops_io() -> ModuleType:
    """``skops.io``, importing it the quick way if it is not imported yet."""
    if "skops.io" in sys.modules:
        import skops.io

        return skops.io
    from bottleneck.heads import sklearn_import

    sklearn_import.import_sklearn()  # scikit-learn as the heads import it, if nobody did
    import scipy.special
    import sklearn.utils

    listing = sklearn.utils.all_estimators
    had_dir = "__dir__" in vars(scipy.special)
    old_dir = vars(scipy.special).get("__dir__")
    sklearn.utils.all_estimators = lambda *args, **kwargs: []  # type: ignore[assignment]
    scipy.special.__dir__ = lambda: []  # type: ignore[attr-defined]  # dir() lists nothing
    try:
        sklearn_import.deferring_scipy(["skops.io"])
    finally:
        sklearn.utils.all_estimators = listing
        if had_dir:
            scipy.special.__dir__ = old_dir  # type: ignore[attr-defined]
        else:
            del scipy.special.__dir__
    _install(ESTIMATORS, lambda: _estimator_names(listing))
    _install(UFUNCS, _ufunc_names)
    import skops.io

    return skops.io


def _install(name: str, fill: Callable[[], Iterable[str]]) -> None:
    """Put one :class:`LazyNames` wherever skops holds the list ``name`` empty."""
    lazy = LazyNames(fill)
    for module in HOLDERS[name]:
        holder = sys.modules.get(module)
        if holder is not None and getattr(holder, name, None) == []:
            setattr(holder, name, lazy)


def _estimator_names(listing: Callable[[], list[tuple[str, type]]]) -> list[str]:
    """skops' default trust list of scikit-learn estimators (``module.Class`` of each).

    scikit-learn's listing imports ``array_api_compat.torch`` (seconds) for no estimator of
    ours; where torch is not loaded yet it cannot be imported during the listing
    (scikit-learn skips a package that cannot be imported)."""
    from skops.io._utils import get_type_name

    blocker = None if "torch" in sys.modules else _NoTorch()
    if blocker is not None:
        sys.meta_path.insert(0, blocker)
    try:
        return [name for name in (get_type_name(cls) for _, cls in listing())
                if name.startswith("sklearn.")]
    finally:
        if blocker is not None:
            sys.meta_path.remove(blocker)


class _NoTorch:
    """A finder for which torch does not exist (no ``sys.modules`` entry, unlike hiding it
    there by None: scipy takes any entry for the loaded torch)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _ufunc_names() -> list[str]:
    """skops' default trust list of ``scipy.special``'s ufuncs, as skops computes it."""
    import numpy as np
    import scipy.special
    from skops.io._utils import get_public_type_names
    from skops.utils._fixes import get_scipy_ufunc_wrapper_type

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        names = get_public_type_names(module=scipy.special, oftype=np.ufunc)
        wrapper = get_scipy_ufunc_wrapper_type()
        if wrapper is not None:
            names = sorted(set(names) | set(
                get_public_type_names(module=scipy.special, oftype=wrapper)))
    return names


class LazyNames(list):
    """A list of names, filled by ``fill()`` on first read."""

    def __init__(self, fill: Callable[[], Iterable[str]]) -> None:
        super().__init__()
        self._fill_with: Callable[[], Iterable[str]] | None = fill
        self._lock = threading.Lock()

    def _fill(self) -> None:
        if self._fill_with is not None:
            with self._lock:
                if self._fill_with is not None:
                    super().extend(self._fill_with())
                    self._fill_with = None

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
