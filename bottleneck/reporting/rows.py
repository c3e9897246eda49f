"""A cache's rows as the report analyses them: view 0 of every image, features scaled to
length 1 (cosine is then a dot product) and a low-dimensional projection of them.

The features are read once into one float32 array (never a second full copy: scaling and
projecting work block by block). When that array would not fit in half the memory
available (:func:`bottleneck.models.memory.available_memory`), a fixed random sample of
rows is loaded instead, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bottleneck.benching.leaks import unit_rows
from bottleneck.cache import Cache
from bottleneck.models.memory import available_memory
from bottleneck.models.tasks import READ_BATCH

PROJECTION_DIMS = 64
PROJECTION_SAMPLE = 5_000  # rows the projection is fitted on
WORKING_FACTOR = 1.5  # the features plus the blocks and projections computed from them
SEED = 0


@dataclass
class CacheRows:
    """The loaded rows of one cache; arrays share one order (shard order)."""

    cache: Cache
    paths: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    hashes: np.ndarray | None
    position: np.ndarray  # each row's index within its split, the order predictions use
    unit: np.ndarray  # n × D float32, rows of length 1
    reduced: np.ndarray  # n × k: ``unit`` projected on its top singular directions
    total: int  # view-0 rows in the cache
    sampled: bool

    def __len__(self) -> int:
        return len(self.paths)

    def where(self, split: str, positions: np.ndarray) -> np.ndarray:
        """Loaded row indices of ``split``'s rows at ``positions`` (-1 where not loaded)."""
        mine = np.flatnonzero(self.splits == split)
        lookup = dict(zip(self.position[mine].tolist(), mine.tolist(), strict=True))
        return np.array([lookup.get(int(p), -1) for p in positions], dtype=np.int64)


def _bookkeeping(cache: Cache) -> dict[str, np.ndarray]:
    """Every row's path, label, split, position in its split, view and content hash."""
    columns = ("split",) + tuple(c for c in ("content_hash", "view") if cache.has_column(c))
    batches = list(cache.iter_batches(None, READ_BATCH, with_paths=True, columns=columns,
                                      features=False))
    data = {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}
    data["split"] = data["split"].astype(str)
    position = np.zeros(len(data["labels"]), np.int64)
    for split in np.unique(data["split"]):
        chosen = data["split"] == split
        position[chosen] = np.arange(int(chosen.sum()))
    data["position"] = position
    return data


def _choose(view0: np.ndarray, row_bytes: int, must: np.ndarray, budget: int | None
            ) -> tuple[np.ndarray, bool]:
    """Rows to load: every view-0 row, or a fixed sample that fits ``budget`` bytes (with
    the ``must`` rows)."""
    if budget is None or len(view0) * row_bytes * WORKING_FACTOR <= budget:
        return view0, False
    keep = max(2, int(budget // (row_bytes * WORKING_FACTOR)))
    rng = np.random.default_rng(SEED)
    sample = rng.choice(view0, size=min(keep, len(view0)), replace=False)
    return np.union1d(sample, must), True


def load_rows(cache: Cache, must: dict[str, np.ndarray] | None = None,
              budget: int | None | str = "auto") -> CacheRows:
    """Load view 0 of ``cache``'s rows (see the module docstring).

    ``must``: split → positions that a sample must include (the rows a report shows);
    ``budget``: bytes the features may take, ``"auto"`` for half the available memory.
    """
    info = _bookkeeping(cache)
    views = info.get("view")
    view0 = np.flatnonzero(views == 0) if views is not None else np.arange(len(info["labels"]))
    dims = int(np.prod(cache.feature_shape))
    if budget == "auto":
        available = available_memory()
        budget = None if available is None else available // 2
    wanted = np.zeros(0, np.int64)
    for split, positions in (must or {}).items():
        chosen = np.flatnonzero(info["split"] == split)
        wanted = np.union1d(wanted, chosen[np.asarray(positions, np.int64)])
    chosen, sampled = _choose(view0, dims * 4, wanted, budget)  # type: ignore[arg-type]
    unit = _read_features(cache, chosen, dims)
    unit_rows(unit)
    hashes = info.get("content_hash")
    return CacheRows(cache, info["paths"][chosen].astype(str), info["labels"][chosen],
                     info["split"][chosen], None if hashes is None else hashes[chosen],
                     info["position"][chosen], unit, project(unit), len(view0), sampled)


def _read_features(cache: Cache, chosen: np.ndarray, dims: int) -> np.ndarray:
    """The features of rows ``chosen`` (sorted global indices) into one float32 array."""
    out = np.empty((len(chosen), dims), np.float32)
    offset, filled = 0, 0
    for batch in cache.iter_batches(None, READ_BATCH):
        n = len(batch["labels"])
        lo, hi = np.searchsorted(chosen, [offset, offset + n])
        if hi > lo:
            out[filled:filled + hi - lo] = batch["features"].reshape(n, -1)[chosen[lo:hi] - offset]
            filled += hi - lo
        offset += n
    return out


def project(unit: np.ndarray, dims: int = PROJECTION_DIMS) -> np.ndarray:
    """``unit`` on its top singular directions (fitted on a fixed sample of rows; no
    centring, so dot products approximate cosines), computed block by block."""
    from sklearn.utils.extmath import randomized_svd

    k = max(1, min(dims, unit.shape[1], len(unit) - 1))
    rng = np.random.default_rng(SEED)
    sample = unit if len(unit) <= PROJECTION_SAMPLE else \
        unit[np.sort(rng.choice(len(unit), PROJECTION_SAMPLE, replace=False))]
    if k >= unit.shape[1] or len(unit) < 3:
        return unit.copy()
    _, _, components = randomized_svd(sample, k, n_iter=2, random_state=SEED)
    components = components.astype(np.float32)
    reduced = np.empty((len(unit), k), np.float32)
    for start in range(0, len(unit), 8192):
        reduced[start:start + 8192] = unit[start:start + 8192] @ components.T
    return reduced


def summary(rows: CacheRows) -> dict[str, Any]:
    """What the report says about the loaded rows."""
    return {"loaded": len(rows), "view0_rows": rows.total, "sampled": rows.sampled}
