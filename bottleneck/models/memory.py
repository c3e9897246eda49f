"""How much memory a fit may use, and whether a split fits in it.

Available memory is the smaller of what the machine has free (psutil) and what the
container's cgroup still allows (v2 ``memory.max`` − ``memory.current``, or v1's
``memory.limit_in_bytes`` − ``memory.usage_in_bytes``).

A fit on a loaded split holds the features once, in their stored dtype (``Cache.load`` fills
one array), a float32 copy where they are stored narrower, and what the head itself adds per
value (its registry entry's ``fit_bytes``: a scaled copy, a solver's float64 copy).
:func:`bytes_per_element` counts exactly those.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bottleneck.cache import Cache
from bottleneck.errors import UserError
from bottleneck.heads import HEADS, get_head_spec

CGROUP_ROOT = Path("/sys/fs/cgroup")
LIMIT_VARIABLE = "BOTTLENECK_MEMORY_LIMIT"
NO_LIMIT = 1 << 60  # cgroup v1 reports "unlimited" as a number near 2**63


def bytes_per_element(stored_dtype: str, fit_bytes: int | None = None) -> int:
    """Bytes a fit on a loaded split holds per feature value (see the module docstring);
    ``fit_bytes`` None: the most any head that loads its split adds."""
    if fit_bytes is None:
        fit_bytes = max(spec.fit_bytes for spec in HEADS.values())
    stored = np.dtype(stored_dtype).itemsize
    return stored + (4 if stored < 4 else 0) + fit_bytes


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return None if text == "max" or not text.isdigit() else int(text)


def cgroup_available(root: Path = CGROUP_ROOT) -> int | None:
    """Bytes the container's memory limit still allows, or None without a limit."""
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes",
                                    "memory/memory.usage_in_bytes")):
        limit = _read_int(root / limit_file)
        usage = _read_int(root / usage_file)
        if limit is not None and limit < NO_LIMIT:
            return max(0, limit - (usage or 0))
    return None


def parse_size(text: str) -> int:
    """``"512M"``, ``"2G"``, ``"1.5GiB"`` or a number of bytes → bytes."""
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(float(text))
    except ValueError:
        raise UserError(f"{LIMIT_VARIABLE}={text!r} is not a size; use e.g. 512M or 8G.") from None


def available_memory() -> int | None:
    """Bytes of memory available now: the machine's, capped by the container's limit and by
    ``$BOTTLENECK_MEMORY_LIMIT`` (e.g. ``8G``) when set."""
    import psutil

    candidates = [int(psutil.virtual_memory().available), cgroup_available()]
    if os.environ.get(LIMIT_VARIABLE):
        candidates.append(parse_size(os.environ[LIMIT_VARIABLE]))
    known = [c for c in candidates if c is not None]
    return min(known) if known else None


def memory_needed(cache: Cache, splits: tuple[str, ...],
                  head: str | Sequence[str] | None = None) -> int:
    """Bytes loading ``splits`` and fitting ``head`` (or the hungriest of several; None: of
    every head) on them takes, every working copy included."""
    rows = sum(cache.split_counts().get(split, 0) for split in splits)
    elements = rows * int(np.prod(cache.feature_shape))
    names = [head] if isinstance(head, str) else head
    extra = None if names is None else max(get_head_spec(n).fit_bytes for n in names)
    return elements * bytes_per_element(cache.config["dtype"], extra)


def fits_in_memory(cache: Cache, splits: tuple[str, ...], available: int | None = None,
                   head: str | Sequence[str] | None = None) -> bool:
    """True when ``splits`` can be loaded as arrays and ``head`` fitted on them (unknown
    memory counts as enough)."""
    available = available_memory() if available is None else available
    return available is None or memory_needed(cache, splits, head) <= available


def streaming_heads() -> str:
    """The heads that stream from the shards (``--head linear``, ...), for a refusal."""
    return ", ".join(f"--head {name}" for name, spec in HEADS.items() if spec.streams)


def check_fits_in_memory(cache: Cache, split: str, head: str,
                         available: int | None = None) -> None:
    """Refuse to load a split that would not fit, naming the streaming alternatives."""
    available = available_memory() if available is None else available
    if not fits_in_memory(cache, (split,), available, head):
        gib = 1 << 30
        raise UserError(
            f"the '{head}' head loads the {split} split into memory: "
            f"{cache.nbytes(split) / gib:.1f} GiB of features, "
            f"{memory_needed(cache, (split,), head) / gib:.1f} GiB while fitting, but only "
            f"{available / gib:.1f} GiB is available; use --head linear (logistic "
            "regression or ridge, streamed), or another head that streams from the shards "
            f"({streaming_heads()}), or a smaller cache (pooled features, --limit)."
        )
