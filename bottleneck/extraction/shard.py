"""Compute ONE shard: decode, resize, [augmented views], run the feature model, write the
file, rename it.

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
from bottleneck.data.augment import Augment, key_seed, views
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


class _Views:
    """Turns one decoded image into its rows: itself, plus K augmented views if it is a train
    image of a cache with ``--augment K``."""

    def __init__(self, plan: ShardPlan, extractor: FeatureExtractor) -> None:
        import tensorflow as tf

        config = extractor.config
        self.size, self.k = config.image_size, config.augment
        self.ops = Augment.parse(config.augment_ops) if self.k else None
        self.counts = tf.constant([self.k + 1 if it.split == "train" else 1
                                   for it in plan.items], tf.int32)
        self.seeds = tf.constant([key_seed(it.key) for it in plan.items], tf.int64)

    def __call__(self, pos, image):  # noqa: ANN001, ANN204 - tf.data traces it
        """(positions, images, content hashes, views) of one decoded image: one row each
        without ``--augment`` (no stacking, the default pipeline stays as lean as before)."""
        import tensorflow as tf

        resized, digest = images.resize_tf(image, self.size), images.content_hash_tf(image)
        if not self.k:
            return pos, resized, digest, tf.constant(0, tf.int64)
        count = self.counts[pos]
        stacked, indices = views(resized, self.seeds[pos], count, self.ops)
        return (tf.fill([count], pos), stacked, tf.fill([count], digest), indices)


def run_shard(
    source: Source, extractor: FeatureExtractor, plan: ShardPlan, out_dir: Path,
    batch_size: int, on_batch: Callable[[int], object] | None = None,
) -> ShardResult:
    """Compute one shard and rename it into place; bad images become failure records."""
    import tensorflow as tf

    rows_of = _Views(plan, extractor)
    stream = (source.image_dataset(plan.items)
              .map(rows_of, num_parallel_calls=tf.data.AUTOTUNE)
              .ignore_errors())
    if rows_of.k:
        stream = stream.unbatch()
    stream = stream.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_optimization.map_fusion = True  # decode+resize+hash in one step
    stream = stream.with_options(options)
    writer = ShardWriter(out_dir / plan.file, extractor.feature_shape, extractor.config.dtype,
                         capacity=len(plan.items), views=bool(rows_of.k))
    seen = np.zeros(len(plan.items), dtype=bool)
    try:
        for positions, batch, hashes, view in stream:
            positions = positions.numpy()
            _append(writer, plan, positions, extractor(batch), hashes.numpy(), view.numpy())
            seen[positions] = True
            if on_batch:
                on_batch(int(np.sum(view.numpy() == 0)))
        missing = np.flatnonzero(~seen)
        failures = _retry_failed(source, extractor, plan, writer, missing, rows_of)
        if on_batch and len(missing):
            on_batch(len(missing))
        sha = writer.commit({"inputs_sha256": plan.inputs_sha256})
    except BaseException:
        writer.abort()
        raise
    return ShardResult(plan.index, writer.rows, sha, failures)


def _append(writer: ShardWriter, plan: ShardPlan, positions: np.ndarray,
            features: np.ndarray, hashes: np.ndarray, view: np.ndarray) -> None:
    chosen = [plan.items[p] for p in positions]
    writer.append(features, np.array([it.label for it in chosen], dtype=np.int32),
                  [it.key for it in chosen], [it.split for it in chosen], hashes, view)


def _retry_failed(source: Source, extractor: FeatureExtractor, plan: ShardPlan,
                  writer: ShardWriter, missing: np.ndarray,
                  rows_of: _Views) -> list[dict[str, str]]:
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
        rows = rows_of(tf.constant(position, tf.int64), tf.constant(pixels))
        if not rows_of.k:  # one row: give it a batch axis
            rows = tuple(value[tf.newaxis] for value in rows)
        positions, batch, hashes, view = rows
        _append(writer, plan, positions.numpy(), extractor(batch), hashes.numpy(),
                view.numpy())
    return failures
