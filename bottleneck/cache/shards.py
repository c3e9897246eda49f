"""One shard file: ``shard-NNNNN.h5``, whose row i of every dataset is the same image.

:class:`ShardWriter` appends rows under a temporary name and renames the file into place
(fsync, then :func:`bottleneck.storage.atomic.install`) when it is complete, so a reader never
sees half a shard. :func:`open_shard` reads one only once it is what the manifest records.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from bottleneck.cache.manifest import Manifest, ShardRecord
from bottleneck.storage.atomic import install, sha256_file, temp_name
from bottleneck.storage.hdf5 import Column, Hdf5Output, open_checked

STRING = h5py.string_dtype("utf-8")
COLUMNS = ("features", "labels", "paths", "split", "content_hash")


class ShardWriter:
    """Append rows to one shard under a temporary name; ``commit`` renames it into place."""

    def __init__(self, final_path: Path, feature_shape: tuple[int, ...], dtype: str,
                 capacity: int, views: bool = False) -> None:
        self.final_path = final_path
        self.tmp_path = temp_name(final_path)
        self.rows = 0
        self._output = Hdf5Output(self.tmp_path, final_path, track_order=True)
        self._file = self._output.file
        try:
            self._columns = self._create_columns(feature_shape, dtype, capacity, views)
        except BaseException:
            self.abort()
            raise

    def _create_columns(self, feature_shape: tuple[int, ...], dtype: str, capacity: int,
                        views: bool) -> dict[str, h5py.Dataset]:
        chunk_rows = max(1, min(capacity, 256))
        capacity = max(1, capacity)
        columns = {
            "features": self._file.create_dataset(
                "features", shape=(0, *feature_shape), maxshape=(None, *feature_shape),
                dtype=dtype, chunks=(chunk_rows, *feature_shape), track_times=False),
        }
        extra = (("view", "uint16"),) if views else ()
        for name, dtype_ in (("labels", "int32"), ("paths", STRING), ("split", STRING),
                             ("content_hash", "uint64"), *extra):
            columns[name] = self._file.create_dataset(
                name, shape=(0,), maxshape=(None,), dtype=dtype_, chunks=(capacity,),
                track_times=False)
        return columns

    def append(self, features: np.ndarray, labels: np.ndarray, paths: list[str],
               splits: list[str], content_hashes: np.ndarray,
               views: np.ndarray | None = None) -> None:
        """Add rows; row i of every dataset is the same image (and view)."""
        values = dict(zip(COLUMNS, (features, labels, paths, splits, content_hashes),
                          strict=True))
        if "view" in self._columns:
            values["view"] = views
        n = len(features)
        if any(len(v) != n for v in values.values()):
            raise ValueError("every column of a shard must get the same number of rows")
        start, self.rows = self.rows, self.rows + n
        for name, dataset in self._columns.items():
            dataset.resize(self.rows, axis=0)
            dataset[start:self.rows] = values[name]
        self._output.check()  # a full disk stops the shard here, not at the end

    def commit(self, attrs: dict[str, Any]) -> str:
        """Close the file, fsync, rename it into place and return its sha256."""
        for key, value in attrs.items():
            self._file.attrs[key] = value
        self._output.close()
        install(self.tmp_path, self.final_path)
        return sha256_file(self.final_path)

    def abort(self) -> None:
        """Drop the temporary file."""
        try:
            self._output.close(check=False)
        finally:
            self.tmp_path.unlink(missing_ok=True)


def shard_columns(config: dict[str, Any]) -> dict[str, Column]:
    """What every shard of a cache made with ``config`` holds (:class:`ShardWriter`'s
    layout): the features of the recorded shape and dtype, and the bookkeeping columns
    (``content_hash`` is absent in caches made before it was written; ``view`` is there
    exactly when the cache has augmented views)."""
    columns = {"features": Column(str(config["dtype"]), tuple(config["feature_shape"])),
               "labels": Column("int"), "paths": Column("string"), "split": Column("string"),
               "content_hash": Column("uint", optional=True)}
    if config.get("augment"):
        columns["view"] = Column("uint")
    return columns


def repair_advice(root: Path) -> str:
    """What to do about a damaged shard of the cache at ``root``."""
    return (f"the cache is damaged: `bottleneck info {root} --verify` checks every file; "
            "then extract again into a new --out (the same command with another -o).")


@contextmanager
def open_shard(path: Path, manifest: Manifest, record: ShardRecord) -> Iterator[h5py.File]:
    """The shard ``record`` of ``manifest`` at ``path``, opened for reading once its datasets
    (names, shapes, dtypes, rows) are those the manifest records and it holds no HDF5 link;
    a missing, damaged or mismatched file is one line naming it and the repair."""
    with open_checked(path, shard_columns(manifest.config), record.rows,
                      repair_advice(path.parent)) as handle:
        yield handle


def read_column(path: Path, name: str, manifest: Manifest, record: ShardRecord) -> np.ndarray:
    """One whole column of a shard (strings decoded), checked as :func:`open_shard` does."""
    with open_shard(path, manifest, record) as handle:
        dataset = handle[name]
        return (dataset.asstr() if dataset.dtype.kind == "O" else dataset)[:]
