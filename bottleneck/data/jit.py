"""Whether the compiled per-image kernels (:mod:`.kernels`, numba) are there: loaded on first
use, so only commands that resize or hash pixels ever import numba."""

from __future__ import annotations

import warnings
from functools import lru_cache
from types import ModuleType


@lru_cache(maxsize=1)
def compiled() -> ModuleType | None:
    """The compiled kernels, or None where numba cannot load (one warning; the callers'
    NumPy forms give the same values, slower)."""
    try:
        from bottleneck.data import kernels
    except Exception as exc:  # ImportError, or numba refusing this NumPy at import
        warnings.warn(f"numba is unavailable ({type(exc).__name__}: {exc}); resizing and "
                      f"hashing in NumPy instead (the same values, slower)", RuntimeWarning,
                      stacklevel=3)
        return None
    return kernels
