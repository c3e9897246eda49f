"""One nearest-neighbour index per cache, beside its shards in ``CACHE/index/``.

Built with faiss (MIT; ``pip install 'bottleneck[similar]'``) over view 0 of every row, its
features scaled to length 1 so an inner product is a cosine. Row ``i`` of the index is the
i-th view-0 row of the cache in shard order (the order :meth:`Cache.iter_batches` reads).

- Exact (``IndexFlatIP``, float32) while rows × dims ≤ ``index_files.EXACT_VALUES`` (20k
  rows of 1280); above, approximate (``pca-ivf``, :mod:`bottleneck.cache.index_kinds`):
  k-means lists over a 128-d PCA projection, trained once on a sample spread over the
  shards, then grown shard by shard; the best candidates of the nearest lists are re-ranked
  by float16 copies of the full-width rows (half the float32 size), so its cosines are
  float16-exact (±1e-3). Indexes of the kind before (``hnsw``) are still opened and
  searched; when their cache grows they are rebuilt as ``pca-ivf``.
- Built shard by shard (one shard's features in memory, plus the index), saved every
  ``index_files.SAVE_SECONDS``, so an interrupted build resumes; when the cache grows, the
  new shards are added (an exact index that grows past the limit is rebuilt once as
  ``pca-ivf``; a ``pca-ivf`` index keeps its projection and lists until the cache has grown
  past ``index_kinds.RETRAIN_GROWTH`` times the rows they were trained on, then it is
  rebuilt, so its lists stay about 2·√rows).
- ``index.json`` (written last) records the shards it covers by file and sha256 and names
  the faiss file, ``index-<digest>.faiss``, a new name per write: a reader never sees half an
  index. An index whose covered shards are gone or changed is refused in one line. An
  index opened only to search maps its rows from the file instead of reading them.

This module searches a loaded index; :mod:`bottleneck.cache.index_files` builds, grows,
saves, loads and refuses it (``open_index``).
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

from bottleneck.cache import index_kinds
from bottleneck.cache.reader import Cache
from bottleneck.cache.shards import open_shard
from bottleneck.errors import UserError

QUERY_BLOCK = 4096  # query rows searched at once
FEW_QUERIES = 64  # searched on one thread: faiss's threads cost more than they give
OPEN_SHARDS = 16  # shard files a loaded index keeps open for reading rows
FEW_ROWS = 64  # rows of one shard read one by one; more: the whole shard is read


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise UserError("the nearest-neighbour index needs faiss: pip install "
                        "'bottleneck[similar]' (faiss-cpu).") from None
    return faiss


def unit(features: np.ndarray) -> np.ndarray:
    """Rows flattened to float32 and scaled to length 1 (all-zero rows stay zero)."""
    rows = np.ascontiguousarray(features.reshape(len(features), -1), np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    rows /= np.where(norms > 0, norms, 1)
    return rows


def view0(handle: h5py.File) -> np.ndarray:
    """Positions of a shard's view-0 rows (every row when it has no ``view`` column)."""
    if "view" in handle:
        return np.flatnonzero(handle["view"][:] == 0)
    return np.arange(handle["labels"].shape[0])


@dataclass
class NeighbourIndex:
    """A cache's index, loaded: search it by vectors or by its row numbers."""

    cache: Cache
    index: Any  # the faiss index
    kind: str  # "exact", "pca-ivf" or "hnsw" (index_kinds)
    counts: list[int]  # view-0 rows of each covered shard, in shard order
    trained_rows: int = 0  # pca-ivf: the cache's rows when its lists were trained
    _rows: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _open: OrderedDict[int, tuple[ExitStack, h5py.File]] = field(default_factory=OrderedDict,
                                                                  repr=False)

    def shard(self, number: int) -> h5py.File:
        """Shard ``number`` opened for reading (the last ``OPEN_SHARDS`` stay open)."""
        if number in self._open:
            self._open.move_to_end(number)
        else:
            stack = ExitStack()
            record = self.cache.manifest.shards[number]
            handle = stack.enter_context(open_shard(self.cache.shard_paths[number],
                                                    self.cache.manifest, record))
            self._open[number] = (stack, handle)
            if len(self._open) > OPEN_SHARDS:
                self._open.popitem(last=False)[1][0].close()
        return self._open[number][1]

    def close(self) -> None:
        """Close the shards kept open."""
        while self._open:
            self._open.popitem()[1][0].close()

    @property
    def rows(self) -> int:
        return int(self.index.ntotal)

    @property
    def offsets(self) -> np.ndarray:
        """First index row of each shard (and the total, last)."""
        return np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None,
               effort: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cosines)``, each Q × k, best first, of the ``k`` most similar index rows
        to each query (any features; scaled here); ``allowed``: a boolean mask of the index
        rows that may be answered; ``effort``: lists scanned (``pca-ivf``) or graph
        candidates kept (``hnsw``), less for speed (None: the kind's default; ignored by
        ``exact``). Row -1 and cosine -inf where fewer exist."""
        faiss = _faiss()
        queries = unit(queries)
        k = max(1, min(k, self.rows))
        selector = bitmap = None
        if allowed is not None:
            bitmap = np.packbits(np.asarray(allowed, bool), bitorder="little")
            selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        params = index_kinds.params(faiss, self.kind, k, effort, selector)
        found, cosines = [], []
        threads = faiss.omp_get_max_threads()
        if len(queries) < FEW_QUERIES:  # one query on 2 busy cores: 16 ms, on one: 1 ms
            faiss.omp_set_num_threads(1)
        try:
            for start in range(0, len(queries), QUERY_BLOCK):
                dist, rows = self.index.search(queries[start:start + QUERY_BLOCK], k,
                                               params=params)
                found.append(rows)
                cosines.append(np.where(rows >= 0, index_kinds.cosines(self.kind, dist),
                                        -np.inf).astype(np.float32))
        finally:
            faiss.omp_set_num_threads(threads)
        if not found:
            return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        return np.concatenate(found).astype(np.int64), np.concatenate(cosines)

    def locate(self, rows: np.ndarray) -> list[tuple[int, int]]:
        """``(shard number in the manifest, row within that shard file)`` of index rows."""
        offsets = self.offsets
        shards = np.searchsorted(offsets, rows, side="right") - 1
        return [(int(s), int(self._shard_rows(int(s))[r - offsets[s]]))
                for s, r in zip(shards, np.asarray(rows, np.int64), strict=True)]

    def _shard_rows(self, shard: int) -> np.ndarray:
        if shard not in self._rows:
            self._rows[shard] = view0(self.shard(shard))
        return self._rows[shard]

    def features(self, rows: np.ndarray) -> np.ndarray:
        """The stored features of index rows (read from their shards), scaled to length 1."""
        out = np.zeros((len(rows), int(np.prod(self.cache.feature_shape))), np.float32)
        places = np.array(self.locate(np.asarray(rows, np.int64)), np.int64).reshape(-1, 2)
        for shard in np.unique(places[:, 0]):
            mine = np.flatnonzero(places[:, 0] == shard)
            wanted, inverse = np.unique(places[mine, 1], return_inverse=True)
            dataset = self.shard(int(shard))["features"]
            # h5py's point selection is slow for many rows: then read the whole shard
            read = dataset[:][wanted] if len(wanted) > FEW_ROWS else dataset[wanted]
            out[mine] = read.reshape(len(read), -1)[inverse]
        return unit(out)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """Unit-length full-width float32 vectors of index rows from the index's own storage
        (float16 copies for the approximate kinds), no shard reads."""
        rows = np.asarray(rows, np.int64)
        out = np.empty((len(rows), self.index.d), np.float32)
        for start in range(0, len(rows), QUERY_BLOCK):
            out[start:start + QUERY_BLOCK] = self.index.reconstruct_batch(
                rows[start:start + QUERY_BLOCK])
        return unit(out)

    def search_rows(self, rows: np.ndarray, k: int, allowed: np.ndarray | None = None,
                    effort: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` with index rows as queries (their :meth:`vectors`), a block at a
        time."""
        rows = np.asarray(rows, np.int64)
        found = np.full((len(rows), max(1, min(k, self.rows))), -1, np.int64)
        cosines = np.full(found.shape, -np.inf, np.float32)
        for start in range(0, len(rows), QUERY_BLOCK):
            block = slice(start, start + QUERY_BLOCK)
            found[block], cosines[block] = self.search(self.vectors(rows[block]), k, allowed,
                                                       effort)
        return found, cosines
