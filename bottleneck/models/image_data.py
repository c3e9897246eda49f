"""The images behind a cache's rows, reopened from its source, for models that take pixels.

Fine-tuning and scoring a fine-tuned model need pixels, not cached features. The source is
reopened from what the manifest recorded; its items must be the cache's rows (same keys,
splits and labels; only the files extraction skipped may be missing), and every image must
decode to the pixels whose fingerprint the cache stored (``content_hash``). Decoding and
resizing are :mod:`bottleneck.data.images`' (TensorFlow's decoder, Pillow where it fails,
the bilinear resize): what the cache saw is what the model sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bottleneck._text import plural
from bottleneck.cache import Cache
from bottleneck.data import Item, Source, images, reopen_source
from bottleneck.errors import UserError
from bottleneck.models.metrics import classification_metrics, regression_metrics
from bottleneck.models.tasks import READ_BATCH, target_key

SHUFFLE_IMAGES = 512  # decoded, resized images held for shuffling within an epoch
HASH_BATCH = 256


@dataclass
class SplitImages:
    """One split's items in cache-row order, what to learn for each, and the few images
    that only the Pillow fallback decodes (resized pixels, by position)."""

    split: str
    items: list[Item]
    targets: np.ndarray
    hashes: np.ndarray
    fallback: dict[int, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)


def cache_images(cache: Cache, task: str, splits: tuple[str, ...], image_size: int,
                 verify_pixels: bool = True) -> tuple[Source, dict[str, SplitImages]]:
    """Reopen ``cache``'s source and match its items to the rows of ``splits``.

    Refuses, in one line, a source whose classes, keys, splits or labels no longer match the
    cache, or (``verify_pixels``) whose images decode to other pixels than were cached.
    """
    source = reopen_source(cache.manifest.source)
    where = cache.manifest.source.get("root") or cache.manifest.source.get("path") or \
        cache.manifest.source.get("kind")
    redo = f"re-extract the cache from {where} (or restore the images it was made from)."
    if source.classes != cache.classes:
        raise UserError(f"the classes of {where} are now {source.classes}, not the cache's "
                        f"{cache.classes}; {redo}")
    by_key = {item.key: item for item in source.items()}
    result, matched = {}, set()
    for split in splits:
        rows = _rows(cache, split, task)
        chosen = [by_key.get(key) for key in rows["paths"]]
        changed = sum(item is None or item.split != split or item.label != label
                      for item, label in zip(chosen, rows["labels"], strict=True))
        if changed:
            raise UserError(f"{changed} of the {split} images of {cache.root} "
                            f"{'is' if changed == 1 else 'are'} gone, moved or relabelled in "
                            f"{where}; {redo}")
        matched.update(rows["paths"])
        result[split] = SplitImages(split, chosen, rows[target_key(task)], rows["content_hash"])
    skipped = {failure["path"] for failure in cache.failures}
    new = [k for k, it in by_key.items() if it.split in splits and k not in matched | skipped]
    if new:
        raise UserError(f"{where} holds {plural(len(new), 'image')} the cache does not "
                        f"(e.g. {new[0]}); "
                        f"{redo}")
    if verify_pixels:
        for split_images in result.values():
            _check_pixels(source, split_images, image_size, redo)
    return source, result


def _rows(cache: Cache, split: str, task: str) -> dict[str, np.ndarray]:
    batches = list(cache.iter_batches(split, READ_BATCH, with_paths=True,
                                      columns=("content_hash",), features=False))
    if not batches:
        return {"paths": np.zeros(0, object), "labels": np.zeros(0, np.int64),
                "targets": np.zeros(0), "content_hash": np.zeros(0, np.uint64)}
    return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}


def _check_pixels(source: Source, split: SplitImages, image_size: int, redo: str) -> None:
    """Every image decodes to the fingerprint the cache stored; keep Pillow-only ones."""
    import tensorflow as tf

    stream = (source.image_dataset(split.items)
              .map(lambda pos, img: (pos, images.content_hash_tf(img)),
                   num_parallel_calls=tf.data.AUTOTUNE)
              .ignore_errors().batch(HASH_BATCH).prefetch(tf.data.AUTOTUNE))
    seen = np.zeros(len(split), dtype=bool)
    differ = 0
    for positions, hashes in stream.as_numpy_iterator():
        seen[positions] = True
        differ += int(np.sum(hashes != split.hashes[positions]))
    for position in np.flatnonzero(~seen):  # what TensorFlow cannot decode, as extraction did
        item = split.items[position]
        try:
            pixels = tf.constant(source.load_image(item))
        except ValueError as exc:
            raise UserError(f"{item.key} can no longer be read ({exc}); {redo}") from None
        differ += int(images.content_hash_tf(pixels).numpy() != split.hashes[position])
        split.fallback[int(position)] = images.resize_tf(pixels, image_size).numpy()
    if differ:
        raise UserError(f"{plural(differ, split.split + ' image')} "
                        f"decode{'s' if differ == 1 else ''} to other pixels than the cache "
                        f"saw; {redo}")


def split_dataset(source: Source, split: SplitImages, image_size: int, batch_size: int,
                  seed: int | None = None, augment: Any = None) -> tuple[Any, np.ndarray]:
    """``(tf.data of (float32 pixels at image_size, target) batches, row order it yields)``.

    ``seed`` shuffles (a seeded order, then a buffer reshuffled each epoch); ``augment``, a
    Keras layer, transforms each training batch.
    """
    import tensorflow as tf

    order = np.arange(len(split))
    if seed is not None:
        order = np.random.default_rng(seed).permutation(order)
    decoded = [int(p) for p in order if int(p) not in split.fallback]
    targets = tf.constant(split.targets[decoded])
    stream = source.image_dataset([split.items[p] for p in decoded]).map(
        lambda pos, img: (images.resize_tf(img, image_size), tf.gather(targets, pos)),
        num_parallel_calls=tf.data.AUTOTUNE)
    extra = sorted(split.fallback)
    if extra:
        stream = stream.concatenate(tf.data.Dataset.from_tensor_slices(
            (np.stack([split.fallback[p] for p in extra]), split.targets[extra])))
    if seed is not None:
        stream = stream.shuffle(SHUFFLE_IMAGES, seed=seed, reshuffle_each_iteration=True)
    stream = stream.batch(batch_size)
    if augment is not None:
        stream = stream.map(lambda x, y: (augment(x, training=True), y),
                            num_parallel_calls=tf.data.AUTOTUNE)
    return stream.prefetch(tf.data.AUTOTUNE), np.asarray(decoded + extra, dtype=np.int64)


def score_split(model: Any, source: Source, split: SplitImages, image_size: int, task: str,
                classes: list[str], batch_size: int = 64) -> dict[str, Any]:
    """Metrics of a pixels → outputs Keras model on one split's images."""
    stream, order = split_dataset(source, split, image_size, batch_size)
    outputs = np.asarray(model.predict(stream.map(lambda x, y: x), verbose=0), np.float64)
    truth = split.targets[order]
    if task == "regress":
        return regression_metrics(truth, outputs[:, 0])
    return classification_metrics(truth, outputs.argmax(axis=1), classes, outputs)
