"""The images behind a cache's rows, reopened from its source, for models that take pixels.

Fine-tuning and scoring a fine-tuned model need pixels, not cached features. The source is
reopened from what the manifest recorded; its items must be the cache's rows (same keys,
splits and labels; only the files extraction skipped may be missing), and every image must
decode to the pixels whose fingerprint the cache stored (``content_hash``). Decoding and
resizing are :mod:`bottleneck.data.images`' (the one decoder, the bilinear resize): what the
cache saw is what the model sees.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from bottleneck._text import plural
from bottleneck.backend import import_keras
from bottleneck.cache import Cache
from bottleneck.data import Item, Source, images, reopen_source
from bottleneck.data.loader import ordered_map
from bottleneck.errors import UserError
from bottleneck.extraction.engines import default_threads
from bottleneck.models.metrics import classification_metrics, regression_metrics
from bottleneck.models.tasks import READ_BATCH, target_key
from bottleneck.storage.names import name_key


@dataclass
class SplitImages:
    """One split's items in cache-row order, what to learn for each, and their stored
    pixel fingerprints."""

    split: str
    items: list[Item]
    targets: np.ndarray
    hashes: np.ndarray

    def __len__(self) -> int:
        return len(self.items)


def cache_images(cache: Cache, task: str, splits: tuple[str, ...], image_size: int,
                 verify_pixels: bool = True) -> tuple[Source, dict[str, SplitImages]]:
    """Reopen ``cache``'s source and match its items to the rows of ``splits``.

    Refuses, in one line, a source whose classes, keys, splits or labels no longer match the
    cache, or (``verify_pixels``) whose images decode to other pixels than were cached.
    """
    if cache.config.get("decode") == "gpu":
        raise UserError("this cache was decoded by nvJPEG (--decode gpu) and models that take "
                        "pixels decode on the CPU, to other pixels; extract a cache with "
                        "--decode cpu to fine-tune or score one.")
    source = reopen_source(cache.manifest.source)
    where = cache.manifest.source.get("root") or cache.manifest.source.get("path") or \
        cache.manifest.source.get("kind")
    redo = f"re-extract the cache from {where} (or restore the images it was made from)."
    if source.classes != cache.classes:
        raise UserError(f"the classes of {where} are now {source.classes}, not the cache's "
                        f"{cache.classes}; {redo}")
    by_key = {name_key(item.key): item for item in source.items()}
    result, matched = {}, set()
    for split in splits:
        rows = _rows(cache, split, task)
        chosen = [by_key.get(name_key(key)) for key in rows["paths"]]
        changed = sum(item is None or item.split != split or item.label != label
                      for item, label in zip(chosen, rows["labels"], strict=True))
        if changed:
            raise UserError(f"{changed} of the {split} images of {cache.root} "
                            f"{'is' if changed == 1 else 'are'} gone, moved or relabelled in "
                            f"{where}; {redo}")
        matched.update(map(name_key, rows["paths"]))
        result[split] = SplitImages(split, chosen, rows[target_key(task)], rows["content_hash"])
    skipped = {name_key(failure["path"]) for failure in cache.failures}
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
    """Every image decodes to the fingerprint the cache stored (decoded in threads)."""

    def digest(position: int) -> int | str:
        item = split.items[position]
        try:
            return images.content_hash(source.load_image(item))
        except ValueError as exc:
            return f"{item.key} can no longer be read ({exc})"

    differ = 0
    workers = default_threads()
    for position, found in enumerate(ordered_map(digest, range(len(split)), workers,
                                                 ahead=4 * workers)):
        if isinstance(found, str):
            raise UserError(f"{found}; {redo}")
        differ += int(found != int(split.hashes[position]))
    if differ:
        raise UserError(f"{plural(differ, split.split + ' image')} "
                        f"decode{'s' if differ == 1 else ''} to other pixels than the cache "
                        f"saw; {redo}")


def split_dataset(source: Source, split: SplitImages, image_size: int, batch_size: int,
                  seed: int | None = None, augment: Any = None) -> tuple[Any, np.ndarray]:
    """``(keras.utils.PyDataset of (float32 pixels at image_size, target) batches, row order
    it yields)``, on any backend.

    ``seed`` shuffles (a seeded order, reshuffled each epoch); ``augment``, a Keras layer,
    transforms each training batch.
    """
    order = np.arange(len(split))
    if seed is not None:
        order = np.random.default_rng(seed).permutation(order)
    batches = image_batches_class()(source, split, image_size, batch_size, order, seed, augment)
    return batches, order


@functools.cache
def image_batches_class() -> type:
    """``ImageBatches``, a ``keras.utils.PyDataset`` (Keras' backend-neutral input pipeline),
    defined once Keras is imported."""
    keras = import_keras()

    class ImageBatches(keras.utils.PyDataset):
        """Batches of one split's resized images and targets, decoded in threads."""

        def __init__(self, source: Source, split: SplitImages, image_size: int,
                     batch_size: int, order: np.ndarray, seed: int | None,
                     augment: Any) -> None:
            super().__init__()
            self.source, self.split, self.size = source, split, image_size
            self.batch, self.order, self.seed, self.augment = batch_size, order, seed, augment
            self.epoch, self.workers = 0, default_threads()

        def __len__(self) -> int:
            return -(-len(self.order) // self.batch)

        def _pixels(self, position: int) -> np.ndarray:
            return images.resize(self.source.load_image(self.split.items[position]),
                                 self.size)

        def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
            chosen = self.order[index * self.batch:(index + 1) * self.batch]
            pixels = np.stack(list(ordered_map(self._pixels, chosen, self.workers,
                                               ahead=self.workers)))
            if self.augment is not None:
                pixels = self.augment(pixels, training=True)
            return pixels, self.split.targets[chosen]

        def on_epoch_end(self) -> None:
            if self.seed is not None:  # a new seeded order each epoch
                self.epoch += 1
                rng = np.random.default_rng([self.seed, self.epoch])
                self.order = rng.permutation(self.order)

    return ImageBatches


def split_outputs(model: Any, source: Source, split: SplitImages, image_size: int,
                  batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(row order, outputs)`` of a pixels → outputs Keras model on one split's images:
    output i belongs to the split's row ``order[i]``."""
    stream, order = split_dataset(source, split, image_size, batch_size)
    outputs = np.asarray(model.predict(stream, verbose=0), np.float64)
    return order, outputs


def score_split(model: Any, source: Source, split: SplitImages, image_size: int, task: str,
                classes: list[str], batch_size: int = 64) -> dict[str, Any]:
    """Metrics of a pixels → outputs Keras model on one split's images."""
    order, outputs = split_outputs(model, source, split, image_size, batch_size)
    truth = split.targets[order]
    if task == "regress":
        return regression_metrics(truth, outputs[:, 0])
    return classification_metrics(truth, outputs.argmax(axis=1), classes, outputs)
