"""One nearest-neighbour index per cache, beside its shards in ``CACHE/index/``.

Built with faiss (MIT; ``pip install 'bottleneck[similar]'``) over view 0 of every row, its
features scaled to length 1 so an inner product is a cosine. Row ``i`` of the index is the
i-th view-0 row of the cache in shard order (the order :meth:`Cache.iter_batches` reads).

- Exact (``IndexFlatIP``, float32) while rows × dims ≤ ``EXACT_VALUES`` (20k rows of 1280);
  above, approximate: HNSW (``M=16``) over float16 copies of the rows (half the float32
  size), no training, so it grows row by row; cosines it returns are float16-exact (±1e-3).
- Built shard by shard (one shard's features in memory, plus the index), saved every
  ``SAVE_SECONDS``, so an interrupted build resumes; when the cache grows, the new shards are
  added (an exact index that grows past ``EXACT_VALUES`` is rebuilt once as HNSW).
- ``index.json`` (written last) records the shards it covers by file and sha256 and names
  the faiss file, ``index-<digest>.faiss``, a new name per write: a reader never sees half an
  index. An index whose covered shards are gone or changed is refused in one line.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from bottleneck.cache.reader import Cache
from bottleneck.errors import UserError
from bottleneck.storage.atomic import (
    atomic_path,
    read_json,
    remove_stale_temp_files,
    write_json,
)
from bottleneck.storage.lock import cache_lock
from bottleneck.storage.ours import INDEX_DIR, INDEX_FORMAT, INDEX_RECORD

EXACT_VALUES = 25_000_000  # rows × dims searched exactly (100 MB of float32)
HNSW_M = 16  # links per node
EF_CONSTRUCTION = 40
EF_SEARCH = 96  # candidates kept while searching: recall@10 vs exact in benchmarks/README.md
SAVE_SECONDS = 60.0  # a build saves what it has at least this often
QUERY_BLOCK = 4096  # query rows searched at once
OPEN_SHARDS = 16  # shard files a loaded index keeps open for reading rows
FEW_ROWS = 64  # rows of one shard read one by one; more: the whole shard is read
REBUILD_HINT = "rebuild it with `bottleneck similar {root} --rebuild-index`"


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
    kind: str  # "exact" or "hnsw"
    counts: list[int]  # view-0 rows of each covered shard, in shard order
    _rows: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _open: OrderedDict[int, h5py.File] = field(default_factory=OrderedDict, repr=False)

    def shard(self, number: int) -> h5py.File:
        """Shard ``number`` opened for reading (the last ``OPEN_SHARDS`` stay open)."""
        if number in self._open:
            self._open.move_to_end(number)
        else:
            self._open[number] = h5py.File(self.cache.shard_paths[number], "r")
            if len(self._open) > OPEN_SHARDS:
                self._open.popitem(last=False)[1].close()
        return self._open[number]

    def close(self) -> None:
        """Close the shards kept open."""
        while self._open:
            self._open.popitem()[1].close()

    @property
    def rows(self) -> int:
        return int(self.index.ntotal)

    @property
    def offsets(self) -> np.ndarray:
        """First index row of each shard (and the total, last)."""
        return np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cosines)``, each Q × k, best first, of the ``k`` most similar index rows
        to each query (any features; scaled here); ``allowed``: a boolean mask of the index
        rows that may be answered. Row -1 and cosine -inf where fewer exist."""
        faiss = _faiss()
        queries = unit(queries)
        k = max(1, min(k, self.rows))
        params = faiss.SearchParametersHNSW() if self.kind == "hnsw" else \
            faiss.SearchParameters()
        if self.kind == "hnsw":
            params.efSearch = max(EF_SEARCH, 2 * k)
        if allowed is not None:
            bitmap = np.packbits(np.asarray(allowed, bool), bitorder="little")
            selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
            params.sel = selector
        found, cosines = [], []
        for start in range(0, len(queries), QUERY_BLOCK):
            cos, rows = self.index.search(queries[start:start + QUERY_BLOCK], k,
                                          params=params)
            found.append(rows)
            cosines.append(np.where(rows >= 0, cos, -np.inf).astype(np.float32))
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

    def search_rows(self, rows: np.ndarray, k: int, allowed: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` with index rows as queries, read shard by shard (one shard's
        features in memory at a time)."""
        rows = np.asarray(rows, np.int64)
        found = np.full((len(rows), max(1, min(k, self.rows))), -1, np.int64)
        cosines = np.full(found.shape, -np.inf, np.float32)
        shards = np.searchsorted(self.offsets, rows, side="right") - 1
        for shard in np.unique(shards):
            mine = np.flatnonzero(shards == shard)
            found[mine], cosines[mine] = self.search(self.features(rows[mine]), k, allowed)
        return found, cosines


def index_dir(cache: Cache) -> Path:
    return cache.root / INDEX_DIR


def _covered(cache: Cache) -> list[dict[str, Any]]:
    return [{"file": s.file, "sha256": s.sha256} for s in cache.manifest.shards]


def _read_record(cache: Cache) -> dict[str, Any] | None:
    """The record of an index of ours, None when there is none; a folder of someone else's
    in its place is refused."""
    folder = index_dir(cache)
    if not folder.exists():
        return None
    path = folder / INDEX_RECORD
    try:
        record = read_json(path)
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or record.get("format") != INDEX_FORMAT:
        if folder.is_dir() and not any(p for p in folder.iterdir()):
            return None
        raise UserError(f"{folder} is not an index of ours; move it away so that the "
                        "nearest-neighbour index can be written there.")
    return record


def _stale(cache: Cache, record: dict[str, Any]) -> str | None:
    """Why the index no longer matches the cache, or None."""
    shards = _covered(cache)
    covered = record.get("shards", [])
    for n, mine in enumerate(covered):
        if n >= len(shards) or shards[n]["file"] != mine["file"]:
            return f"{mine['file']} is gone from the cache"
        if shards[n]["sha256"] != mine["sha256"]:
            return f"{mine['file']} changed since it was indexed"
    if record.get("dims") != int(np.prod(cache.feature_shape)):
        return "its width differs from the features'"
    return None


def _load(cache: Cache, record: dict[str, Any]) -> NeighbourIndex:
    faiss = _faiss()
    path = index_dir(cache) / record["file"]
    if not path.is_file() or path.stat().st_size != record.get("bytes"):
        raise UserError(f"{path} is missing or damaged; " +
                        REBUILD_HINT.format(root=cache.root) + ".")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError:
        raise UserError(f"{path} is damaged; " + REBUILD_HINT.format(root=cache.root) + ".") \
            from None
    counts = [int(s["indexed"]) for s in record["shards"]]
    if index.ntotal != sum(counts):
        raise UserError(f"{path} is damaged; " + REBUILD_HINT.format(root=cache.root) + ".")
    return NeighbourIndex(cache, index, record["kind"], counts)


def _kind(cache: Cache) -> str:
    total = cache.rows * int(np.prod(cache.feature_shape))
    return "exact" if total <= EXACT_VALUES else "hnsw"


def _empty(kind: str, dims: int) -> Any:
    faiss = _faiss()
    if kind == "exact":
        return faiss.IndexFlatIP(dims)
    index = faiss.IndexHNSWSQ(dims, faiss.ScalarQuantizer.QT_fp16, HNSW_M,
                              faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    return index


def _save(cache: Cache, found: NeighbourIndex, shards: list[dict[str, Any]]) -> None:
    """Write the faiss file under a new name, then the record naming it, then remove the
    faiss files of ours it replaces."""
    faiss = _faiss()
    folder = index_dir(cache)
    folder.mkdir(exist_ok=True)
    digest = hashlib.sha256(json.dumps([found.kind, shards]).encode()).hexdigest()[:16]
    path = folder / f"index-{digest}.faiss"
    with atomic_path(path) as tmp:
        faiss.write_index(found.index, str(tmp))
    record = {"format": INDEX_FORMAT, "format_version": 1, "kind": found.kind,
              "dims": int(np.prod(cache.feature_shape)), "rows": found.rows,
              "file": path.name, "bytes": path.stat().st_size, "shards": shards,
              "params": {"hnsw_m": HNSW_M, "ef_construction": EF_CONSTRUCTION}
              if found.kind == "hnsw" else {}}
    write_json(folder / INDEX_RECORD, record)
    for old in folder.glob("index-*.faiss"):
        if old != path:
            old.unlink(missing_ok=True)


def _grow(cache: Cache, found: NeighbourIndex, covered: list[dict[str, Any]],
          progress: bool) -> None:
    """Add the shards after ``covered`` one by one, saving every ``SAVE_SECONDS``."""
    records = cache.manifest.shards
    saved = time.monotonic()
    for number in range(len(covered), len(records)):
        path = cache.shard_paths[number]
        with h5py.File(path, "r") as handle:
            rows = view0(handle)
            features = handle["features"][:] if len(rows) == handle["labels"].shape[0] \
                else handle["features"][rows] if len(rows) else None
        if features is not None:
            found.index.add(unit(features))
        found.counts.append(len(rows))
        covered.append({"file": records[number].file, "sha256": records[number].sha256,
                        "indexed": len(rows)})
        if progress:
            print(f"\rindexed {number + 1}/{len(records)} shards", end="", flush=True)
        if time.monotonic() - saved >= SAVE_SECONDS and number + 1 < len(records):
            _save(cache, found, covered)
            saved = time.monotonic()
    if progress and records:
        print()
    _save(cache, found, covered)


def remove_index(root: Path) -> None:
    """Delete the files of a cache's index of ours (with a cache that is replaced), and its
    folder when nothing else is left in it."""
    folder = Path(root) / INDEX_DIR
    if not (folder / INDEX_RECORD).is_file() or _format_of(folder / INDEX_RECORD) != INDEX_FORMAT:
        return
    for path in folder.glob("index-*.faiss"):
        path.unlink(missing_ok=True)
    (folder / INDEX_RECORD).unlink(missing_ok=True)
    remove_stale_temp_files(folder)
    if not any(folder.iterdir()):
        folder.rmdir()


def _format_of(path: Path) -> Any:
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return None
    return record.get("format") if isinstance(record, dict) else None


def open_index(cache: Cache, rebuild: bool = False, progress: bool = False
               ) -> NeighbourIndex:
    """The cache's index: loaded, after adding the shards it does not cover yet, or built
    first (``rebuild``: from scratch, replacing an index of ours). An index that no longer
    matches the cache is refused in one line."""
    record = _read_record(cache)
    if record is not None and not rebuild:
        why = _stale(cache, record)
        if why is not None:
            raise UserError(f"the index of {cache.root} no longer matches the cache ({why}); "
                            + REBUILD_HINT.format(root=cache.root) + ".")
        if len(record["shards"]) == len(cache.manifest.shards):
            return _load(cache, record)
    with cache_lock(cache.root, "index"):
        kind = _kind(cache)
        if record is None or rebuild or record["kind"] != kind:
            found = NeighbourIndex(cache, _empty(kind, int(np.prod(cache.feature_shape))),
                                   kind, [])
            covered: list[dict[str, Any]] = []
        else:
            found, covered = _load(cache, record), list(record["shards"])
        _grow(cache, found, covered, progress)
    return found
