"""Reading a cache: :class:`Cache` streams rows shard by shard, so a cache larger than memory
can be read a batch at a time; :meth:`Cache.column` reads bookkeeping columns without features.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck._text import plural
from bottleneck.cache.manifest import Manifest, ShardRecord
from bottleneck.cache.shards import open_shard
from bottleneck.errors import UserError
from bottleneck.storage.atomic import sha256_file
from bottleneck.storage.hdf5 import Column, open_checked
from bottleneck.storage.lock import describe_writer, live_writer

TARGETS_FILE = "targets.h5"


@dataclass
class Cache:
    """A complete cache directory, read shard by shard."""

    root: Path
    manifest: Manifest
    _targets: np.ndarray | None = field(default=None, init=False, repr=False)
    # a split's row numbers in each shard, by (shard file, its sha256, split): a pass over a
    # split (each epoch or L-BFGS step of a streamed fit) decodes the split column once
    _split_memo: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict,
                                                                init=False, repr=False)
    # the URL of a remote cache (``root`` is then its local view); None for a local one
    location: str | None = field(default=None, init=False)

    @property
    def where(self) -> str:
        """The cache as the user named it: its URL, else its folder."""
        return self.location or str(self.root)

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest.config

    @property
    def classes(self) -> list[str]:
        return self.manifest.classes

    @property
    def shard_paths(self) -> list[Path]:
        return [self.root / shard.file for shard in self.manifest.shards]

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.config["feature_shape"])

    @property
    def failures(self) -> list[dict[str, str]]:
        return self.manifest.failure_list

    @property
    def rows(self) -> int:
        return int(self.manifest.rows or 0)

    def split_counts(self) -> dict[str, int]:
        """Rows per split."""
        return dict(self.manifest.split_counts or {})

    def verify(self, sources: bool = True) -> dict[str, Any]:
        """Check the sha256 of every file the manifest records (shards and targets); a
        damaged one is a UserError with the advice for its kind. With ``sources``, also which
        rows' source files changed since. Returns what was checked: ``{"files", "shards",
        "targets_file", "bytes", "all_sha256_equal"[, "sources"]}``."""
        recorded = [(path, shard.sha256) for shard, path in
                    zip(self.manifest.shards, self.shard_paths, strict=True)]
        if self.targets_path is not None:
            recorded.append((self.targets_path, self.manifest.targets.get("sha256")))
        size = 0
        for path, expected in recorded:
            if not path.is_file() or sha256_file(path) != expected:
                raise self._damaged(path)
            size += path.stat().st_size
        checked: dict[str, Any] = {
            "files": len(recorded), "shards": len(self.shard_paths),
            "targets_file": self.targets_path is not None, "bytes": size,
            "all_sha256_equal": True}
        if sources:
            from bottleneck.cache.inputs import source_changes

            checked["sources"] = source_changes(self)
        return checked

    def _damaged(self, path: Path) -> UserError:
        """The error for a recorded file that is missing or whose sha256 differs, with the way
        out for its kind: a targets file is attached again, a shard means extracting again."""
        what = "is missing" if not path.is_file() else "changed since it was {} (sha256 mismatch)"
        if path == self.targets_path:
            return UserError(f"{path} {what.format('attached')}; the features are intact: "
                             f"attach targets again with `bottleneck targets {self.root} ...`.")
        return UserError(f"{path} {what.format('written')}; a shard's features cannot be "
                         f"repaired: extract again into a new --out (the same command with "
                         f"another -o), then remove {self.root}.")

    def shards(self) -> Iterator[tuple[Path, ShardRecord]]:
        """Each shard's path and its manifest record, in order."""
        for record in self.manifest.shards:
            yield self.root / record.file, record

    def column(self, name: str, split: str | None = None) -> np.ndarray:
        """One column (``paths``, ``labels``, ``split``, ``content_hash``) of every row, in
        shard order, without reading features; ``split`` keeps that split's rows."""
        parts = []
        for path, record in self.shards():
            with open_shard(path, self.manifest, record) as handle:
                values = _whole(handle[name])
                if split is not None:
                    values = values[_whole(handle["split"]) == split]
            parts.append(values)
        if not parts:
            return np.zeros(0, dtype=object if name in ("paths", "split") else np.int64)
        return np.concatenate(parts)

    def has_column(self, name: str) -> bool:
        """Whether the shards hold ``name`` (``content_hash`` is absent in older caches)."""
        for path, record in self.shards():
            with open_shard(path, self.manifest, record) as handle:
                return name in handle
        return False

    def _split_rows(self, handle: Any, split: str | None, record: ShardRecord | None = None
                    ) -> np.ndarray:
        if split is None:
            return np.arange(handle["labels"].shape[0])
        if record is None or not record.sha256:
            return np.flatnonzero(handle["split"].asstr()[:] == split)
        key = (record.file, record.sha256, split)
        if key not in self._split_memo:
            self._split_memo[key] = np.flatnonzero(handle["split"].asstr()[:] == split)
        return self._split_memo[key]

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
        for path, record in self.shards():
            with open_shard(path, self.manifest, record) as handle:
                n = handle["labels"].shape[0]
                rows = self._split_rows(handle, split, record)
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
        """One split as in-memory arrays (check :meth:`nbytes` first for big caches).

        The features are read into one array of the split's size, so they are held once.
        """
        rows = self.split_counts().get(split, 0) if split else self.rows
        data: dict[str, np.ndarray] = {}
        filled = 0
        for batch in self.iter_batches(split, batch_size=1 << 16, with_paths=with_paths):
            for key, values in batch.items():
                if key not in data:
                    data[key] = np.empty((rows, *values.shape[1:]), values.dtype)
                data[key][filled:filled + len(values)] = values
            filled += len(batch["labels"])
        if filled != rows:  # the manifest's counts and the shards disagree
            raise UserError(f"{self.root}'s manifest records {rows} {split or ''} rows but its "
                            f"shards hold {filled}; extract again into a new --out.")
        if not data:
            data = {"features": np.zeros((0, *self.feature_shape), np.float32),
                    "labels": np.zeros((0,), np.int64)}
            if with_paths:
                data["paths"] = np.zeros((0,), object)
            if self.has_targets:
                data["targets"] = np.zeros((0,), np.float64)
        return data

    def nbytes(self, split: str | None = None) -> int:
        """Bytes that :meth:`load` would take for the features of ``split``."""
        rows = self.split_counts().get(split, 0) if split else self.rows
        itemsize = np.dtype(self.config["dtype"]).itemsize
        return int(rows * np.prod(self.feature_shape) * itemsize)

    @property
    def has_targets(self) -> bool:
        return self.manifest.targets is not None

    @property
    def targets_path(self) -> Path | None:
        """The recorded targets file (``targets.h5`` in caches made before its name had a
        digest), or None."""
        if not self.has_targets:
            return None
        return self.root / self.manifest.targets.get("file", TARGETS_FILE)

    def record_targets(self, record: dict[str, Any] | None) -> None:
        """Record (or clear) ``targets.h5`` in the manifest and save it."""
        self.manifest.targets = record
        self._targets = None
        self.manifest.save(self.root)

    def _targets_by_row(self) -> np.ndarray | None:
        """Every row's target, read once after checking the file's recorded sha256."""
        if not self.has_targets:
            return None
        if self._targets is None:
            path = self.targets_path
            if not path.is_file() or sha256_file(path) != self.manifest.targets.get("sha256"):
                raise self._damaged(path)
            columns = {"paths": Column("string"), "targets": Column("float64")}
            repair = f"attach targets again with `bottleneck targets {self.root} ...`."
            with open_checked(path, columns, self.rows, repair) as handle:
                self._targets = handle["targets"][:]
        return self._targets

    def arrow(self, split: str | None = None, batch_size: int = 8192) -> Any:
        """The rows as a ``pyarrow.RecordBatchReader`` (path, label, class, split,
        content_hash[, target], features as a fixed-size list), read batch by batch: DuckDB,
        Polars and pandas take it; ``.read_all()`` makes a Table (see :mod:`.arrow`)."""
        from bottleneck.cache.arrow import reader

        return reader(self, split, batch_size)

    def to_parquet(self, out: str | Path, split: str | None = None,
                   row_group_rows: int = 8192, overwrite: bool = False) -> dict[str, Any]:
        """Write the rows to a Parquet file, streamed, a row group per shard."""
        from bottleneck.cache.arrow import write_parquet

        return write_parquet(self, out, split, row_group_rows, overwrite)

    def keras_dataset(self, split: str, batch_size: int = 256, target: str = "labels",
                      shuffle: bool = False, seed: int | None = None) -> Any:
        """A ``keras.utils.PyDataset`` of ``(float32 features, labels or targets)`` batches,
        for ``model.fit`` on any Keras backend (see :mod:`.batches`)."""
        from bottleneck.cache.batches import feature_batches

        return feature_batches(self, split, batch_size, target, shuffle, seed)

    def torch_dataset(self, split: str | None = None, batch_size: int = 256,
                      target: str = "labels") -> Any:
        """A PyTorch ``IterableDataset`` of ``(features, labels or targets)`` tensor batches,
        for ``DataLoader(dataset, batch_size=None)`` (see :mod:`.torch_data`)."""
        from bottleneck.cache.torch_data import torch_dataset

        return torch_dataset(self, split, batch_size, target)

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


def _whole(dataset: Any) -> np.ndarray:
    """A whole dataset, strings decoded."""
    return (dataset.asstr() if dataset.dtype.kind == "O" else dataset)[:]


def open_local_cache(root: str | Path) -> Cache:
    """Open a complete cache directory (a URL's goes through :func:`.opening.open_cache`)."""
    root = Path(root).expanduser()
    manifest = Manifest.load(root)
    if manifest is None or not manifest.complete:
        _refuse_while_written(root)
    if manifest is None:
        inside = caches_inside(root)
        if inside:
            shown = ", ".join(inside[:5]) + (", …" if len(inside) > 5 else "")
            raise UserError(f"{root} is not a cache but holds {plural(len(inside), 'cache')} "
                            f"({shown}): pass one, e.g. {root / inside[0]} (`bottleneck bench "
                            f"{root}/*` compares them all).")
        raise UserError(f"{root} is not a bottleneck cache (no manifest.json of ours); run "
                        "extract first.")
    if not manifest.complete:
        raise UserError(
            f"{root} is incomplete ({manifest.done_shards}/{len(manifest.shards)} shards); "
            "re-run the same extract command to finish it."
        )
    return Cache(root, manifest)


def _refuse_while_written(root: Path) -> None:
    """A cache not (yet) complete while a writer holds its lock: say who writes it and what to
    do, rather than advise a re-run that would only be refused."""
    holder = live_writer(root)
    if holder is None:
        return
    pid, host = holder.get("pid"), holder.get("host")
    raise UserError(f"{describe_writer(root, holder)} and is not complete yet: wait for it to "
                    f"finish and run this again, or check that process (`ps -p {pid}` on "
                    f"{host}) if it seems stuck.")


def caches_inside(root: Path) -> list[str]:
    """Names of the sub-folders of ``root`` that are caches of ours (complete or not): the
    output of a multi-layer extract, or a folder of caches."""
    try:
        children = sorted(child for child in root.iterdir() if child.is_dir())
    except OSError:  # not a folder, or one we may not list
        return []
    names = []
    for child in children:
        try:
            ours = Manifest.load(child) is not None
        except UserError:  # ours, though its manifest is damaged
            ours = True
        if ours:
            names.append(child.name)
    return names
