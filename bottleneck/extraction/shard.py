"""Compute ONE shard: decode, resize, [augmented views], run the feature model, write the
file, rename it.

:func:`run_shard` knows nothing of the manifest or of who scheduled it; it returns a
:class:`ShardResult` that the driver records. A feature model with several layers writes the
shard once per layer, one folder each (``out_dir`` is then a list), from one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bottleneck.cache.shards import ShardWriter
from bottleneck.data import images
from bottleneck.data.augment import Augment, key_seed, views
from bottleneck.data.sources import Source
from bottleneck.extraction.feature_model import FeatureExtractor
from bottleneck.extraction.plan import ShardPlan

AUTOTUNE = -1  # tf.data.AUTOTUNE


@dataclass(frozen=True)
class Pipeline:
    """How tf.data feeds the model: speed only, never the features (benchmarks/tune_extract.py
    measures the choices)."""

    parallel_calls: int = AUTOTUNE  # images decoded and resized at once
    prefetch: int = AUTOTUNE  # batches made ahead of the model
    threadpool: int = 0  # the pipeline's own threads; 0: TensorFlow's shared pool


PIPELINE = Pipeline()


@dataclass
class ShardResult:
    """What running one shard produced."""

    index: int
    rows: int
    sha256: str  # of the (first layer's) shard file
    failures: list[dict[str, str]] = field(default_factory=list)
    sha256s: list[str] = field(default_factory=list)  # one per layer, in order


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
    source: Source, extractor: FeatureExtractor, plan: ShardPlan,
    out_dir: Path | Sequence[Path], batch_size: int,
    on_batch: Callable[[int], object] | None = None, pipeline: Pipeline = PIPELINE,
) -> ShardResult:
    """Compute one shard and rename it into place; bad images become failure records.

    ``out_dir``: the cache folder, or one folder per layer of ``extractor``.
    """
    import tensorflow as tf

    out_dirs = [Path(out_dir)] if isinstance(out_dir, str | Path) else list(out_dir)
    if len(out_dirs) != len(extractor.feature_shapes):
        raise ValueError("run_shard needs one output folder per layer of the feature model")
    decode_size = extractor.config.image_size if extractor.config.fast_decode else None
    rows_of = _Views(plan, extractor)
    stream = (source.image_dataset(plan.items, decode_size)
              .map(rows_of, num_parallel_calls=pipeline.parallel_calls)
              .ignore_errors())
    if rows_of.k:
        stream = stream.unbatch()
    stream = stream.batch(batch_size)
    if pipeline.prefetch:
        stream = stream.prefetch(pipeline.prefetch)
    options = tf.data.Options()
    options.experimental_optimization.map_fusion = True  # decode+resize+hash in one step
    if pipeline.threadpool:
        options.threading.private_threadpool_size = pipeline.threadpool
    stream = stream.with_options(options)
    writers: list[ShardWriter] = []
    try:
        for folder, shape in zip(out_dirs, extractor.feature_shapes, strict=True):
            writers.append(ShardWriter(folder / plan.file, shape, extractor.config.dtype,
                                       capacity=len(plan.items), views=bool(rows_of.k)))
        seen = np.zeros(len(plan.items), dtype=bool)
        for positions, batch, hashes, view in stream:
            positions, view = positions.numpy(), view.numpy()
            _append(writers, plan, positions, extractor.run(batch), hashes.numpy(), view)
            seen[positions] = True
            if on_batch:
                on_batch(int(np.sum(view == 0)))
        missing = np.flatnonzero(~seen)
        failures = _retry_failed(source, extractor, plan, writers, missing, decode_size, rows_of)
        if on_batch and len(missing):
            on_batch(len(missing))
        shas = [w.commit({"inputs_sha256": plan.inputs_sha256}) for w in writers]
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    return ShardResult(plan.index, writers[0].rows, shas[0], failures, shas)


def _append(writers: list[ShardWriter], plan: ShardPlan, positions: np.ndarray,
            features: list[np.ndarray], hashes: np.ndarray, view: np.ndarray) -> None:
    chosen = [plan.items[p] for p in positions]
    labels = np.array([it.label for it in chosen], dtype=np.int32)
    keys, splits = [it.key for it in chosen], [it.split for it in chosen]
    for writer, layer_features in zip(writers, features, strict=True):
        writer.append(layer_features, labels, keys, splits, hashes, view)


def _retry_failed(source: Source, extractor: FeatureExtractor, plan: ShardPlan,
                  writers: list[ShardWriter], missing: np.ndarray, decode_size: int | None,
                  rows_of: _Views) -> list[dict[str, str]]:
    """Decode what tf.data could not with the fallback decoder; record what none can read."""
    import tensorflow as tf

    failures = []
    for position in missing:
        item = plan.items[position]
        try:
            pixels = source.load_image(item, decode_size)
        except ValueError as exc:
            failures.append({"path": item.key, "reason": str(exc)})
            continue
        rows = rows_of(tf.constant(position, tf.int64), tf.constant(pixels))
        if not rows_of.k:  # one row: give it a batch axis
            rows = tuple(value[tf.newaxis] for value in rows)
        positions, batch, hashes, view = rows
        _append(writers, plan, positions.numpy(), extractor.run(batch), hashes.numpy(),
                view.numpy())
    return failures
