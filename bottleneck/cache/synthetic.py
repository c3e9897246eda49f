"""Caches written from arrays rather than images: for tests and benchmarks at sizes that
extracting would take hours to reach (a million rows of 1280-d features).

:func:`write_cache` writes any stream of shards (one :class:`ShardRows` each, so the whole
cache is never in memory) and its manifest last; :func:`gaussian_shards` makes rows shaped like
pooled backbone features: Gaussian classes around random centres, non-negative as pooled ReLU
outputs, split train/val/test like Fashion-MNIST (1/7 test, 10% of the rest val).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.cache.manifest import Manifest, ShardRecord, shard_name
from bottleneck.cache.shards import ShardWriter

SYNTHETIC_CONFIG = {"backbone": "synthetic", "weights": "none", "weights_name": "none",
                    "weights_digest": "0" * 64, "layer": None, "pooling": "avg",
                    "image_size": 28, "engine": "keras", "precision": "fp32",
                    "fast_decode": False, "preprocessing": {}}


@dataclass
class ShardRows:
    """The rows of one shard."""

    features: np.ndarray
    labels: np.ndarray
    paths: Sequence[str]
    splits: Sequence[str]


def write_cache(root: Path, shards: Iterable[ShardRows], classes: Sequence[str],
                feature_shape: tuple[int, ...], dtype: str = "float32",
                source: dict[str, Any] | None = None, seed: int = 0) -> Path:
    """Write ``shards`` into the new folder ``root`` as a complete cache; returns ``root``."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    records, counts = [], {"train": 0, "val": 0, "test": 0}
    for number, rows in enumerate(shards):
        n = len(rows.labels)
        path = root / shard_name(number)
        writer = ShardWriter(path, feature_shape, dtype, n)
        writer.append(rows.features.astype(dtype, copy=False), rows.labels, list(rows.paths),
                      list(rows.splits), rng.integers(0, 2**63, n, dtype=np.uint64))
        sha = writer.commit({})
        records.append(ShardRecord(shard_name(number), n, f"{number:064x}", "done", n, sha,
                                   failures=[], bytes=path.stat().st_size))
        for split, count in zip(*np.unique(np.asarray(rows.splits), return_counts=True),
                                strict=True):
            counts[str(split)] = counts.get(str(split), 0) + int(count)
    config = {**SYNTHETIC_CONFIG, "dtype": dtype, "feature_shape": list(feature_shape)}
    source = source or {"kind": "synthetic", "path": str(root), "val_percent": 10,
                        "test_percent": 14, "limit": None}
    manifest = Manifest(config, source, list(classes), {}, records, complete=True,
                        rows=sum(counts.values()), split_counts=counts, failures=0)
    manifest.save(root)
    return root


def split_sizes(rows: int) -> dict[str, int]:
    """Fashion-MNIST's shape: 1/7 test, 10% of the rest val."""
    test = rows // 7
    val = (rows - test) // 10
    return {"train": rows - test - val, "val": val, "test": test}


def gaussian_shards(rows: int, dims: int, n_classes: int, shard_rows: int = 4096,
                    spread: float = 0.1, seed: int = 0) -> Iterator[ShardRows]:
    """Shards of ``rows`` Gaussian rows in ``n_classes`` classes (class centres drawn with
    deviation ``spread``, unit noise), split as :func:`split_sizes`, one shard at a time."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, spread, (n_classes, dims)).astype(np.float32)
    sizes = split_sizes(rows)
    bounds = np.cumsum([0, *sizes.values()])
    names = np.array(list(sizes))
    for start in range(0, rows, shard_rows):
        index = np.arange(start, min(rows, start + shard_rows))
        labels = rng.integers(0, n_classes, len(index))
        features = centres[labels] + rng.standard_normal((len(index), dims), np.float32)
        np.maximum(features + 0.5, 0, out=features)  # non-negative, as pooled ReLU features
        splits = names[np.searchsorted(bounds, index, side="right") - 1]
        yield ShardRows(features, labels, [f"rows/{i}" for i in index], splits)
