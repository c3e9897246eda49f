"""A cache's rows for the tools people already use: Arrow record batches and Parquet.

Each row: ``path`` (the image's key in the source), ``label`` (class index), ``class`` (its
name), ``split``, ``content_hash``, ``target`` (when targets are attached) and ``features``, a
fixed-size list of float32 (a ``--pooling none`` map is flattened; the schema's metadata
records its shape under ``bottleneck``). Rows are read a shard-bounded batch at a time
(:meth:`Cache.iter_batches`), so neither a stream nor a Parquet file ever holds the cache in
memory. float16 caches are widened to float32: DuckDB and Polars do not read half floats.

A Parquet file written here (one row group per shard, or per ``row_group_rows`` rows of one)
carries that metadata too, which is how :mod:`bottleneck.storage.ours` knows it is ours.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.errors import UserError
from bottleneck.storage.atomic import atomic_path
from bottleneck.storage.ours import FEATURES_TABLE_FORMAT, FEATURES_TABLE_KEY, is_ours

ROW_GROUP_ROWS = 8192


def _pyarrow() -> Any:
    """pyarrow, or a one-line UserError saying how to install it."""
    try:
        import pyarrow
    except ImportError:
        raise UserError("Arrow and Parquet output needs pyarrow: pip install "
                        "'bottleneck[arrow]'.") from None
    return pyarrow


def schema(cache: Any) -> Any:
    """The Arrow schema of a cache's rows, with the ``bottleneck`` metadata."""
    pa = _pyarrow()

    width = int(np.prod(cache.feature_shape))
    fields = [pa.field("path", pa.string()), pa.field("label", pa.int32()),
              pa.field("class", pa.string()), pa.field("split", pa.string()),
              pa.field("content_hash", pa.uint64())]
    if cache.has_targets:
        fields.append(pa.field("target", pa.float64()))
    fields.append(pa.field("features", pa.list_(pa.float32(), width)))
    about = {"format": FEATURES_TABLE_FORMAT, "feature_shape": list(cache.feature_shape),
             "stored_dtype": cache.config.get("dtype"), "classes": cache.classes,
             "cache": str(cache.root), "config": cache.config}
    return pa.schema(fields, metadata={FEATURES_TABLE_KEY: json.dumps(about, default=str)})


def record_batches(cache: Any, split: str | None = None,
                   batch_size: int = ROW_GROUP_ROWS) -> Iterator[Any]:
    """The rows of ``split`` (None: all) as Arrow record batches of at most ``batch_size``."""
    import pyarrow as pa

    target = schema(cache)
    classes = np.asarray(cache.classes, dtype=object)
    width = int(np.prod(cache.feature_shape))
    for batch in cache.iter_batches(split, batch_size, with_paths=True,
                                    columns=("split", "content_hash")):
        flat = np.ascontiguousarray(batch["features"], dtype=np.float32).reshape(-1)
        columns = {"path": pa.array(batch["paths"], pa.string()),
                   "label": pa.array(batch["labels"].astype(np.int32)),
                   "class": pa.array(classes[batch["labels"]], pa.string()),
                   "split": pa.array(batch["split"], pa.string()),
                   "content_hash": pa.array(batch["content_hash"].astype(np.uint64))}
        if cache.has_targets:
            columns["target"] = pa.array(batch["targets"].astype(np.float64))
        columns["features"] = pa.FixedSizeListArray.from_arrays(pa.array(flat), width)
        yield pa.RecordBatch.from_arrays(list(columns.values()), schema=target)


def reader(cache: Any, split: str | None = None, batch_size: int = ROW_GROUP_ROWS) -> Any:
    """A ``pyarrow.RecordBatchReader`` over the rows: DuckDB, Polars and pandas read it."""
    import pyarrow as pa

    return pa.RecordBatchReader.from_batches(schema(cache),
                                             record_batches(cache, split, batch_size))


def write_parquet(cache: Any, out: str | Path, split: str | None = None,
                  row_group_rows: int = ROW_GROUP_ROWS, overwrite: bool = False
                  ) -> dict[str, Any]:
    """Write the rows of ``split`` (None: all) to the Parquet file ``out``, streamed: one row
    group per shard (or per ``row_group_rows`` rows of a bigger one). Written under a temp
    name and renamed into place. Returns ``{"out", "rows", "row_groups", "bytes"}``."""
    _pyarrow()
    import pyarrow.parquet as pq

    out = Path(out).expanduser()
    if row_group_rows < 1:
        raise UserError("--row-group-rows must be ≥ 1.")
    if split is not None and not cache.split_counts().get(split):
        raise UserError(f"{cache.root} has no rows in the {split} split; choose another "
                        "--split.")
    if out.is_dir():
        raise UserError(f"{out} is a folder; give --out a file name ending in .parquet.")
    if out.exists() and not (overwrite and is_ours(out)):
        raise UserError(f"{out} already exists; pass --overwrite to replace a feature table "
                        "bottleneck wrote, or choose another --out." if not overwrite else
                        f"{out} exists and is not a feature table bottleneck wrote; it is "
                        "left as it is: choose another --out.")
    if not out.parent.is_dir():
        raise UserError(f"{out.parent} does not exist; create it first.")
    rows = groups = 0
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, schema(cache)) as writer:
        for batch in record_batches(cache, split, row_group_rows):
            writer.write_batch(batch)  # one batch, one row group
            rows, groups = rows + batch.num_rows, groups + 1
    return {"out": str(out), "rows": rows, "row_groups": groups,
            "bytes": out.stat().st_size}
