"""A cache's rows as the report analyses them: view 0 of every image, in shard order (the
order of the cache's nearest-neighbour index, :mod:`bottleneck.cache.index`, which answers
every neighbour question), and a low-dimensional projection of their unit-length features.

Nothing holds all the features: the projection is fitted on a random sample of rows (their
vectors read from the index), then computed one batch at a time, so the report's memory is
the index, the projection (64 floats a row) and the bookkeeping columns, whatever the
cache's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bottleneck.benching.leaks import Neighbours, unit_rows
from bottleneck.cache import Cache
from bottleneck.cache.index import NeighbourIndex
from bottleneck.cache.index_files import open_index
from bottleneck.models.tasks import READ_BATCH

PROJECTION_DIMS = 64
PROJECTION_SAMPLE = 50_000  # rows the projection is fitted on: from 5,000 rows, the sample's
# own noise directions outranked weak class directions (bench_scale's synthetic rows)
SVD_ITERATIONS = 4  # power iterations of the randomized SVD
SEED = 0

@dataclass
class CacheRows:
    """The rows of one cache; arrays share one order (shard order, view 0)."""

    cache: Cache
    paths: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    hashes: np.ndarray | None
    position: np.ndarray  # each row's index within its split, the order predictions use
    reduced: np.ndarray  # n × k: the unit-length features on their top singular directions
    total: int  # view-0 rows in the cache
    index: NeighbourIndex | None  # row i of the index is row i here; None once released

    def __len__(self) -> int:
        return len(self.paths)

    def where(self, split: str, positions: np.ndarray) -> np.ndarray:
        """Row indices of ``split``'s rows at ``positions`` (-1 where there is none)."""
        mine = np.flatnonzero(self.splits == split)
        lookup = dict(zip(self.position[mine].tolist(), mine.tolist(), strict=True))
        return np.array([lookup.get(int(p), -1) for p in positions], dtype=np.int64)

    def full_width(self, most: int) -> np.ndarray | None:
        """Every row's unit-length features at full width, read through the index, when
        rows × width is at most ``most``; else None (the caller uses ``reduced``)."""
        width = int(np.prod(self.cache.feature_shape))
        if self.index is None or len(self) * width > most:
            return None
        return self.index.features(np.arange(len(self)))

    def neighbours(self, keep: np.ndarray | None = None, effort: int | None = None
                   ) -> Neighbours:
        """``search(queries, allowed, k)``: the ``k`` most similar rows allowed (a boolean
        mask) to each query row, by the index (``effort``: its search effort, see
        ``NeighbourIndex.search``); with ``keep`` (row indices), rows are numbered within
        that subset."""
        index = self.index
        assert index is not None, "the index was released"
        if keep is None:
            return lambda queries, allowed, k: index.search_rows(queries, k, allowed, effort)
        keep = np.asarray(keep, np.int64)
        lookup = np.full(len(self) + 1, -1, np.int64)  # the last entry: "none found" (-1)
        lookup[keep] = np.arange(len(keep))

        def search(queries: np.ndarray, allowed: np.ndarray, k: int
                   ) -> tuple[np.ndarray, np.ndarray]:
            everywhere = np.zeros(len(self), bool)
            everywhere[keep[allowed]] = True
            found, cosines = index.search_rows(keep[queries], k, everywhere, effort)
            return lookup[found], cosines

        return search


def _bookkeeping(cache: Cache) -> dict[str, np.ndarray]:
    """Every row's path, label, split, position in its split, view and content hash."""
    columns = ("split",) + tuple(c for c in ("content_hash", "view") if cache.has_column(c))
    batches = list(cache.iter_batches(None, READ_BATCH, with_paths=True, columns=columns,
                                      features=False))
    data = {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}
    data["split"] = data["split"].astype(str)
    return data


def load_rows(cache: Cache, progress: bool = False) -> CacheRows:
    """View 0 of ``cache``'s rows, their projection and the cache's index (built or grown
    first when it does not cover every shard; see the module docstring)."""
    info = _bookkeeping(cache)
    views = info.get("view")
    view0 = np.flatnonzero(views == 0) if views is not None else np.arange(len(info["labels"]))
    index = open_index(cache, progress=progress)
    if index.rows != len(view0):
        raise AssertionError(f"the index holds {index.rows} rows, the cache {len(view0)}")
    splits = info["split"][view0]
    position = np.zeros(len(view0), np.int64)
    for split in np.unique(splits):
        chosen = splits == split
        position[chosen] = np.arange(int(chosen.sum()))
    hashes = info.get("content_hash")
    return CacheRows(cache, info["paths"][view0].astype(str), info["labels"][view0], splits,
                     None if hashes is None else hashes[view0], position,
                     _project_cache(cache, index), len(view0), index)


def _project_cache(cache: Cache, index: NeighbourIndex) -> np.ndarray:
    """Every view-0 row's unit-length features on the top singular directions of a sample
    (:func:`project`'s), computed one batch at a time."""
    n = index.rows
    dims = int(np.prod(cache.feature_shape))
    k = max(1, min(PROJECTION_DIMS, dims, n - 1))
    if n < 3 or k >= dims:
        components = None
    else:
        rng = np.random.default_rng(SEED)
        sample = np.sort(rng.choice(n, min(n, PROJECTION_SAMPLE), replace=False))
        components = _components(index.vectors(sample), k)  # from the index: no shard read
    reduced = np.empty((n, k if components is not None else dims), np.float32)
    filled = 0
    for batch in cache.iter_batches(None, READ_BATCH, columns=_view_column(cache)):
        features = batch["features"]
        if "view" in batch:
            features = features[batch["view"] == 0]
        block = unit_rows(features.astype(np.float32).reshape(len(features), -1))
        reduced[filled:filled + len(block)] = block if components is None else \
            block @ components.T
        filled += len(block)
    return reduced


def _view_column(cache: Cache) -> tuple[str, ...]:
    return ("view",) if cache.has_column("view") else ()


def _components(sample: np.ndarray, k: int) -> np.ndarray:
    from sklearn.utils.extmath import randomized_svd

    _, _, components = randomized_svd(sample, k, n_iter=SVD_ITERATIONS, random_state=SEED)
    return components.astype(np.float32)


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
    _, _, components = randomized_svd(sample, k, n_iter=SVD_ITERATIONS, random_state=SEED)
    components = components.astype(np.float32)
    reduced = np.empty((len(unit), k), np.float32)
    for start in range(0, len(unit), 8192):
        reduced[start:start + 8192] = unit[start:start + 8192] @ components.T
    return reduced

