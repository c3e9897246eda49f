"""Compute ONE shard: decode, resize, run the feature model, write the file, rename it.

:func:`run_shard` knows nothing of the manifest or of who scheduled it; it returns a
:class:`ShardResult` that the driver records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bottleneck.cache.shards import ShardWriter
from bottleneck.data import images
from bottleneck.data.sources import Source
from bottleneck.extraction.feature_model import FeatureExtractor
from bottleneck.extraction.plan import ShardPlan


@dataclass
class ShardResult:
    """What running one shard produced."""

    index: int
    rows: int
    sha256: str
    failures: list[dict[str, str]] = field(default_factory=list)


def run_shard(
    source: Source, extractor: FeatureExtractor, plan: ShardPlan, out_dir: Path,
    batch_size: int, on_batch: Callable[[int], object] | None = None,
) -> ShardResult:
    """Compute one shard and rename it into place; bad images become failure records."""
    import tensorflow as tf

    size = extractor.config.image_size
    stream = (
        source.image_dataset(plan.items)
        .map(lambda pos, img: (pos, images.resize_tf(img, size), images.content_hash_tf(img)),
             num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors()
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    options = tf.data.Options()
    options.experimental_optimization.map_fusion = True  # decode+resize+hash in one step
    stream = stream.with_options(options)
    writer = ShardWriter(out_dir / plan.file, extractor.feature_shape, extractor.config.dtype,
                         capacity=len(plan.items))
    seen = np.zeros(len(plan.items), dtype=bool)
    try:
        for positions, batch, hashes in stream:
            positions = positions.numpy()
            _append(writer, plan, positions, extractor(batch), hashes.numpy())
            seen[positions] = True
            if on_batch:
                on_batch(len(positions))
        missing = np.flatnonzero(~seen)
        failures = _retry_failed(source, extractor, plan, writer, missing)
        if on_batch and len(missing):
            on_batch(len(missing))
        sha = writer.commit({"inputs_sha256": plan.inputs_sha256})
    except BaseException:
        writer.abort()
        raise
    return ShardResult(plan.index, writer.rows, sha, failures)


def _append(writer: ShardWriter, plan: ShardPlan, positions: np.ndarray,
            features: np.ndarray, hashes: np.ndarray) -> None:
    chosen = [plan.items[p] for p in positions]
    writer.append(features, np.array([it.label for it in chosen], dtype=np.int32),
                  [it.key for it in chosen], [it.split for it in chosen], hashes)


def _retry_failed(source: Source, extractor: FeatureExtractor, plan: ShardPlan,
                  writer: ShardWriter, missing: np.ndarray) -> list[dict[str, str]]:
    """Decode what tf.data could not with the fallback decoder; record what none can read."""
    import tensorflow as tf

    failures = []
    for position in missing:
        item = plan.items[position]
        try:
            pixels = source.load_image(item)
        except ValueError as exc:
            failures.append({"path": item.key, "reason": str(exc)})
            continue
        pixels = tf.constant(pixels)
        resized = images.resize_tf(pixels, extractor.config.image_size)
        _append(writer, plan, np.array([position]), extractor(resized[tf.newaxis]),
                images.content_hash_tf(pixels).numpy()[None])
    return failures
