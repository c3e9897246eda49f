"""A module left unimported while other modules import it: :func:`deferred_module`.

Within ``with deferred_module(name, names):`` an ``import name`` (or ``from parent import
child``) gets a :class:`DeferredModule` instead of running the module, and ``from name import
x`` gets, for each ``x`` in ``names``, a :class:`Forwarded` stand-in whose calls and
attributes are those of the module's ``x`` (imported on first use). Reading any other
attribute of the module's stand-in imports the real module (the usual way, by ``importlib``)
and answers from it: a stand-in kept by an importer behaves like what it stands for, later.

When the block ends, a stand-in nobody used leaves ``sys.modules``: the process then looks as
if the module had never been imported, and a later ``import name`` anywhere imports the real
one as usual, submodules included.

Inside the block the stand-in is no package: importing a submodule of it (``import
name.sub``) raises ModuleNotFoundError, which a caller takes as the sign to import without the
stand-in (see :func:`bottleneck.heads.sklearn_import.deferring_scipy`).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_LOCK = threading.RLock()


class DeferredModule(types.ModuleType):
    """Stands for the module ``name`` until an attribute of it is read."""

    def __init__(self, name: str, names: frozenset[str]) -> None:
        super().__init__(name, f"Stand-in for {name}, imported on first use.")
        self.__spec__ = importlib.machinery.ModuleSpec(name, None)
        self._deferred_names = names
        self._deferred_open = True  # inside the `with` block: hand out forwarded names
        self._deferred_real: types.ModuleType | None = None

    def _deferred_load(self) -> types.ModuleType:
        """The module this stands for, imported now if it is not yet."""
        real = self.__dict__["_deferred_real"]
        if real is None:
            with _LOCK:
                real = self.__dict__["_deferred_real"]
                if real is None:
                    if sys.modules.get(self.__name__) is self:
                        del sys.modules[self.__name__]
                    real = importlib.import_module(self.__name__)
                    self.__dict__["_deferred_real"] = real
        return real

    def __getattr__(self, attr: str) -> Any:  # only for what the stand-in does not hold
        if self.__dict__["_deferred_open"] and self.__dict__["_deferred_real"] is None:
            if attr == "__path__":  # no package while deferred: see the module docstring
                raise AttributeError(attr)
            if attr in self.__dict__["_deferred_names"]:
                return Forwarded(self, attr)
        return getattr(self._deferred_load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._deferred_load())

    def __repr__(self) -> str:
        real = self.__dict__["_deferred_real"]
        return repr(real) if real is not None else f"<deferred module {self.__name__!r}>"


class Forwarded:
    """``module.name``, read when first called or when an attribute of it is read."""

    __slots__ = ("_module", "_name")

    def __init__(self, module: DeferredModule, name: str) -> None:
        self._module = module
        self._name = name

    def _target(self) -> Any:
        return getattr(self._module._deferred_load(), self._name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._target(), attr)

    def __repr__(self) -> str:
        return f"<{self._module.__name__}.{self._name}, imported on first use>"


@contextmanager
def deferred_module(name: str, names: tuple[str, ...] = ()) -> Iterator[DeferredModule | None]:
    """Within the block, ``name`` is a :class:`DeferredModule` forwarding ``names``, unless
    it is imported already (then nothing changes and the block gets None)."""
    with _LOCK:
        if name in sys.modules:
            stand_in = None
        else:
            stand_in = DeferredModule(name, frozenset(names))
            sys.modules[name] = stand_in
    try:
        yield stand_in
    finally:
        if stand_in is not None:
            with _LOCK:
                stand_in.__dict__["_deferred_open"] = False
                if sys.modules.get(name) is stand_in:
                    del sys.modules[name]
