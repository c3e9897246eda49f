"""How much memory a fit may use, and whether a split fits in it."""

from __future__ import annotations

import os

from bottleneck.cache import Cache
from bottleneck.errors import UserError

MEMORY_FACTOR = 3  # working copies a scikit-learn fit makes of its features


def available_memory() -> int | None:
    """Bytes of memory available now (psutil if installed, else /proc/meminfo or sysconf)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_needed(cache: Cache, splits: tuple[str, ...]) -> int:
    """Bytes loading ``splits`` as arrays takes, working copies included."""
    return MEMORY_FACTOR * sum(cache.nbytes(split) for split in splits)


def fits_in_memory(cache: Cache, splits: tuple[str, ...], available: int | None = None) -> bool:
    """True when ``splits`` can be loaded as arrays (unknown memory counts as enough)."""
    available = available_memory() if available is None else available
    return available is None or memory_needed(cache, splits) <= available


def check_fits_in_memory(cache: Cache, split: str, head: str,
                         available: int | None = None) -> None:
    """Refuse to load a split that would not fit, naming the streaming alternative."""
    available = available_memory() if available is None else available
    if not fits_in_memory(cache, (split,), available):
        gib = 1 << 30
        raise UserError(
            f"the '{head}' head loads the {split} split into memory: "
            f"{cache.nbytes(split) / gib:.1f} GiB of features (×{MEMORY_FACTOR} while fitting) "
            f"but only {available / gib:.1f} GiB is available; use --head dense, which streams "
            "from the shards, or a smaller cache (pooled features, --limit)."
        )
