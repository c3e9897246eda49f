"""The files of a cache's nearest-neighbour index (see :mod:`bottleneck.cache.index`):
build it shard by shard, grow it with the cache, save it (faiss file, then the record naming
it), load it, refuse it when it no longer matches, remove it with the cache it belongs to."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.cache import index_kinds
from bottleneck.cache.index import NeighbourIndex, _faiss, unit, view0
from bottleneck.cache.reader import Cache
from bottleneck.cache.shards import open_shard
from bottleneck.errors import UserError
from bottleneck.storage.atomic import (
    atomic_path,
    read_json,
    remove_stale_temp_files,
    write_json,
)
from bottleneck.storage.lock import cache_lock
from bottleneck.storage.machine import machine_errors
from bottleneck.storage.ours import INDEX_DIR, INDEX_FORMAT, INDEX_RECORD

EXACT_VALUES = 25_000_000  # rows × dims searched exactly (100 MB of float32)
SAVE_SECONDS = 60.0  # a build saves what it has at least this often
REBUILD_HINT = "rebuild it with `bottleneck similar {root} --rebuild-index`"


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


def _load(cache: Cache, record: dict[str, Any], mapped: bool) -> NeighbourIndex:
    """The index the record names; ``mapped``: its rows memory-mapped from the file, not
    read (a search-only index opens at once, whatever its size)."""
    faiss = _faiss()
    path = index_dir(cache) / record["file"]
    if not path.is_file() or path.stat().st_size != record.get("bytes"):
        raise UserError(f"{path} is missing or damaged; " +
                        REBUILD_HINT.format(root=cache.root) + ".")
    try:
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mapped else 0)
    except RuntimeError:
        raise UserError(f"{path} is damaged; " + REBUILD_HINT.format(root=cache.root) + ".") \
            from None
    counts = [int(s["indexed"]) for s in record["shards"]]
    if index.ntotal != sum(counts):
        raise UserError(f"{path} is damaged; " + REBUILD_HINT.format(root=cache.root) + ".")
    return NeighbourIndex(cache, index, record["kind"], counts,
                          int(record.get("params", {}).get("trained_rows", 0)))


def _kind(cache: Cache) -> str:
    total = cache.rows * int(np.prod(cache.feature_shape))
    return index_kinds.EXACT if total <= EXACT_VALUES else index_kinds.APPROXIMATE


def _features(handle: Any) -> np.ndarray | None:
    """A shard's view-0 features (None when it has none)."""
    rows = view0(handle)
    if len(rows) == handle["labels"].shape[0]:
        return handle["features"][:]
    return handle["features"][rows] if len(rows) else None


def _sample(cache: Cache, wanted: int) -> np.ndarray:
    """About ``wanted`` unit view-0 rows, drawn from whole shards spread evenly over the
    cache (twice as many shards as ``wanted`` needs, at most ``TRAIN_SHARDS``: rows of one
    class stored together still meet the others)."""
    records = cache.manifest.shards
    per_shard = max(1, cache.rows // max(1, len(records)))
    count = min(len(records), index_kinds.TRAIN_SHARDS, max(1, -(-2 * wanted // per_shard)))
    numbers = np.unique(np.linspace(0, len(records) - 1, count).round().astype(int))
    rng = np.random.default_rng(0)
    parts = []
    for number in numbers:
        with open_shard(cache.shard_paths[number], cache.manifest, records[number]) as handle:
            features = _features(handle)
        if features is not None:
            take = min(len(features), -(-wanted // len(numbers)))
            parts.append(unit(features[np.sort(rng.choice(len(features), take, False))]))
    return np.concatenate(parts) if parts else np.zeros((0, int(np.prod(cache.feature_shape))))


def _empty(cache: Cache, kind: str) -> NeighbourIndex:
    """A new, empty index of ``kind`` for the cache (``pca-ivf``: trained on a sample; exact
    when the sample finds no rows)."""
    dims = int(np.prod(cache.feature_shape))
    sample = None
    if kind != index_kinds.EXACT:
        sample = _sample(cache, index_kinds.train_rows(cache.rows))
        kind = kind if len(sample) else index_kinds.EXACT
    return NeighbourIndex(cache, index_kinds.empty(_faiss(), kind, dims, cache.rows, sample),
                          kind, [], cache.rows if sample is not None else 0)


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
              "params": index_kinds.record_params(found.kind, found.trained_rows)}
    write_json(folder / INDEX_RECORD, record)
    for old in folder.glob("index-*.faiss"):
        if old != path:
            old.unlink(missing_ok=True)


def _grow(cache: Cache, found: NeighbourIndex, covered: list[dict[str, Any]],
          progress: bool) -> None:
    """Add the shards after ``covered`` one by one, saving every ``SAVE_SECONDS``."""
    records = cache.manifest.shards
    views = 1 + int(cache.manifest.config.get("augment") or 0)  # only view 0 is indexed
    index_kinds.reserve(_faiss(), found.kind, found.index,
                        sum(r.rows or 0 for r in records[len(covered):]) // views)
    saved = time.monotonic()
    for number in range(len(covered), len(records)):
        path = cache.shard_paths[number]
        with open_shard(path, cache.manifest, records[number]) as handle:
            features = _features(handle)
        if features is not None:
            found.index.add(unit(features))
        rows = 0 if features is None else len(features)
        found.counts.append(rows)
        covered.append({"file": records[number].file, "sha256": records[number].sha256,
                        "indexed": rows})
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


@machine_errors("cache")
def open_index(cache: Cache, rebuild: bool = False, progress: bool = False
               ) -> NeighbourIndex:
    """The cache's index: loaded, after adding the shards it does not cover yet, or built
    first (``rebuild``: from scratch, replacing an index of ours; also when the cache grew
    past what its kind serves). An index that no longer matches the cache is refused in
    one line."""
    record = _read_record(cache)
    if record is not None and not rebuild:
        why = _stale(cache, record)
        if why is not None:
            raise UserError(f"the index of {cache.root} no longer matches the cache ({why}); "
                            + REBUILD_HINT.format(root=cache.root) + ".")
        if len(record["shards"]) == len(cache.manifest.shards):
            return _load(cache, record, mapped=True)
    with cache_lock(cache.root, "index"):
        kind = _kind(cache)
        if record is None or rebuild or record["kind"] != kind or \
                index_kinds.outgrown(kind, record.get("params", {}), cache.rows):
            found = _empty(cache, kind)
            covered: list[dict[str, Any]] = []
        else:
            found, covered = _load(cache, record, mapped=False), list(record["shards"])
        _grow(cache, found, covered, progress)
    return found
