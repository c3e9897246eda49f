"""The cache on disk: ``manifest.json`` plus ``shard-NNNNN.h5`` files.

Writers never leave half a file behind: a shard is written under a temporary name and renamed
when complete, and the manifest is replaced atomically. Readers stream rows shard by shard, so
a cache larger than memory can be read a batch at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from bottleneck.errors import UserError

MANIFEST = "manifest.json"
TARGETS_FILE = "targets.h5"
FORMAT = "bottleneck-cache"
FORMAT_VERSION = 1
STRING = h5py.string_dtype("utf-8")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON under a temporary name, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def shard_name(index: int) -> str:
    """``shard-00000.h5`` for shard 0."""
    return f"shard-{index:05d}.h5"


class ShardWriter:
    """Append rows to one shard under a temporary name; ``commit`` renames it into place."""

    def __init__(self, final_path: Path, feature_shape: tuple[int, ...], dtype: str,
                 capacity: int) -> None:
        self.final_path = final_path
        self.tmp_path = final_path.with_name(f".{final_path.name}.tmp-{os.getpid()}")
        self.rows = 0
        self._file = h5py.File(self.tmp_path, "w", track_order=True)
        chunk_rows = max(1, min(capacity, 256))
        kwargs = {"track_times": False}
        self._features = self._file.create_dataset(
            "features", shape=(0, *feature_shape), maxshape=(None, *feature_shape),
            dtype=dtype, chunks=(chunk_rows, *feature_shape), **kwargs,
        )
        self._labels = self._file.create_dataset(
            "labels", shape=(0,), maxshape=(None,), dtype="int32", chunks=(capacity,), **kwargs
        )
        self._paths = self._file.create_dataset(
            "paths", shape=(0,), maxshape=(None,), dtype=STRING, chunks=(capacity,), **kwargs
        )
        self._split = self._file.create_dataset(
            "split", shape=(0,), maxshape=(None,), dtype=STRING, chunks=(capacity,), **kwargs
        )
        self._hashes = self._file.create_dataset(
            "content_hash", shape=(0,), maxshape=(None,), dtype="uint64", chunks=(capacity,),
            **kwargs,
        )

    def append(self, features: np.ndarray, labels: np.ndarray, paths: list[str],
               splits: list[str], content_hashes: np.ndarray) -> None:
        """Add rows; row i of every dataset is the same image."""
        n = len(features)
        if not (n == len(labels) == len(paths) == len(splits) == len(content_hashes)):
            raise ValueError("every column of a shard must get the same number of rows")
        start, self.rows = self.rows, self.rows + n
        for dataset, values in ((self._features, features), (self._labels, labels),
                                (self._paths, paths), (self._split, splits),
                                (self._hashes, content_hashes)):
            dataset.resize(self.rows, axis=0)
            dataset[start:self.rows] = values

    def commit(self, attrs: dict[str, Any]) -> str:
        """Close the file, rename it into place and return its sha256."""
        for key, value in attrs.items():
            self._file.attrs[key] = value
        self._file.close()
        os.replace(self.tmp_path, self.final_path)
        return sha256_file(self.final_path)

    def abort(self) -> None:
        """Drop the temporary file."""
        self._file.close()
        self.tmp_path.unlink(missing_ok=True)


@dataclass
class Cache:
    """A complete cache directory, read shard by shard."""

    root: Path
    manifest: dict[str, Any]

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest["config"]

    @property
    def classes(self) -> list[str]:
        return self.manifest["classes"]

    @property
    def shard_paths(self) -> list[Path]:
        return [self.root / shard["file"] for shard in self.manifest["shards"]]

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.config["feature_shape"])

    @property
    def failures(self) -> list[dict[str, str]]:
        return [f for shard in self.manifest["shards"] for f in shard.get("failures", [])]

    def split_counts(self) -> dict[str, int]:
        """Rows per split."""
        return dict(self.manifest.get("split_counts", {}))

    def verify(self) -> None:
        """Check every shard's sha256 against the manifest."""
        for shard, path in zip(self.manifest["shards"], self.shard_paths, strict=True):
            if not path.is_file() or sha256_file(path) != shard["sha256"]:
                raise UserError(f"{path} is missing or changed since extraction (sha256 "
                                "mismatch); re-extract into a new --out.")

    def _split_rows(self, handle: h5py.File, split: str | None) -> np.ndarray:
        if split is None:
            return np.arange(handle["labels"].shape[0])
        return np.flatnonzero(handle["split"].asstr()[:] == split)

    def iter_batches(
        self, split: str | None = None, batch_size: int = 1024, with_paths: bool = False,
        columns: tuple[str, ...] = (), features: bool = True,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Yield ``{"features", "labels"[, "paths"][, "targets"], *columns}`` batches of a split.

        ``columns`` adds other shard datasets (``split``, ``content_hash``); ``features=False``
        skips reading the features, for bookkeeping passes over big caches.
        """
        targets = self._targets_by_row()
        extra = (("paths",) if with_paths else ()) + tuple(columns)
        offset = 0
        for path in self.shard_paths:
            with h5py.File(path, "r") as handle:
                n = handle["labels"].shape[0]
                rows = self._split_rows(handle, split)
                for start in range(0, len(rows), batch_size):
                    chosen = rows[start:start + batch_size]
                    lo, hi = int(chosen[0]), int(chosen[-1]) + 1
                    window = chosen - lo
                    batch = {"labels": handle["labels"][lo:hi][window].astype(np.int64)}
                    if features:
                        batch["features"] = handle["features"][lo:hi][window]
                    for column in extra:
                        dataset = handle[column]
                        if dataset.dtype.kind == "O":
                            dataset = dataset.asstr()
                        batch[column] = dataset[lo:hi][window]
                    if targets is not None:
                        batch["targets"] = targets[offset + chosen]
                    yield batch
                offset += n

    def load(self, split: str | None = None, with_paths: bool = False) -> dict[str, np.ndarray]:
        """One split as in-memory arrays (check :meth:`nbytes` first for big caches)."""
        batches = list(self.iter_batches(split, batch_size=1 << 16, with_paths=with_paths))
        if not batches:
            empty = {"features": np.zeros((0, *self.feature_shape), np.float32),
                     "labels": np.zeros((0,), np.int64)}
            if with_paths:
                empty["paths"] = np.zeros((0,), object)
            if self.has_targets:
                empty["targets"] = np.zeros((0,), np.float64)
            return empty
        return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}

    def nbytes(self, split: str | None = None) -> int:
        """Bytes that :meth:`load` would take for the features of ``split``."""
        rows = self.split_counts().get(split, 0) if split else self.manifest["rows"]
        itemsize = np.dtype(self.config["dtype"]).itemsize
        return int(rows * np.prod(self.feature_shape) * itemsize)

    @property
    def has_targets(self) -> bool:
        return self.manifest.get("targets") is not None

    def _targets_by_row(self) -> np.ndarray | None:
        if not self.has_targets:
            return None
        with h5py.File(self.root / TARGETS_FILE, "r") as handle:
            return handle["targets"][:]

    def tf_dataset(self, split: str, batch_size: int = 256, target: str = "labels") -> Any:
        """A tf.data stream of ``(features, labels or targets)`` batches read from the shards."""
        import tensorflow as tf

        key = target
        feature_spec = tf.TensorSpec((None, *self.feature_shape), tf.float32)
        label_dtype = tf.float32 if key == "targets" else tf.int64
        cache = self

        def generate() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for batch in cache.iter_batches(split, batch_size):
                yield batch["features"].astype(np.float32), batch[key]

        return tf.data.Dataset.from_generator(
            generate, output_signature=(feature_spec, tf.TensorSpec((None,), label_dtype))
        ).prefetch(2)


def read_manifest(root: str | Path) -> dict[str, Any] | None:
    """The manifest of a cache directory, or None if there is none."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise UserError(f"{path} is not valid JSON; re-run extract with --overwrite.") from None


def open_cache(root: str | Path) -> Cache:
    """Open a complete cache directory for reading."""
    root = Path(root).expanduser()
    manifest = read_manifest(root)
    if manifest is None or manifest.get("format") != FORMAT:
        raise UserError(f"{root} is not a bottleneck cache (no manifest.json); run extract first.")
    if not manifest.get("complete"):
        done = sum(s.get("status") == "done" for s in manifest["shards"])
        raise UserError(
            f"{root} is incomplete ({done}/{len(manifest['shards'])} shards); re-run the same "
            "extract command to finish it."
        )
    return Cache(root, manifest)
