"""Batches of cached rows for Keras ``fit``, on any backend, never the whole cache in memory.

:func:`feature_batches` is a ``keras.utils.PyDataset`` (Keras' backend-neutral input pipeline)
of ``(features, labels or targets)``. Shards hold rows in class order, so a shuffled stream
reads a window of rows (the whole split when it fits in ``SHUFFLE_BYTES``) and permutes the
rows inside it, anew each epoch; windows are read once per epoch, in order.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import numpy as np

SHUFFLE_BYTES = 256 << 20  # rows held at once for shuffling
READ_BATCH = 4096


def feature_batches(cache: Any, split: str, batch_size: int, target: str = "labels",
                    shuffle: bool = False, seed: int | None = None) -> Any:
    """A PyDataset of ``(float32 features, labels or targets)`` batches of one split."""
    return _batches_class()(cache, split, batch_size, target, shuffle, seed)


@functools.cache
def _batches_class() -> type:
    from bottleneck.backend import import_keras

    keras = import_keras()

    class FeatureBatches(keras.utils.PyDataset):
        """Batches of one split's cached rows, read window by window from the shards."""

        def __init__(self, cache: Any, split: str, batch_size: int, target: str,
                     shuffle: bool, seed: int | None) -> None:
            super().__init__()
            self.cache, self.split, self.batch_size, self.target = cache, split, batch_size, \
                target
            self.feature_shape = tuple(cache.feature_shape)
            self.rows = int(cache.split_counts().get(split, 0))
            row_bytes = 4 * max(1, int(np.prod(self.feature_shape)))
            # a whole number of batches (no batch spans two windows), or the whole split
            window = max(1, SHUFFLE_BYTES // row_bytes // batch_size) * batch_size
            # in order, a window is one batch: nothing is held to mix
            self.window = max(1, min(self.rows, window if shuffle else batch_size))
            self.shuffle, self.seed, self.epoch = shuffle, seed, 0
            self._reader: Iterator[tuple[int, np.ndarray, np.ndarray]] | None = None
            self._current: tuple[int, np.ndarray, np.ndarray] | None = None

        def __len__(self) -> int:
            return -(-self.rows // self.batch_size)

        def _windows(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
            """(first row, features, targets) of each window, shuffled inside it."""
            rng = np.random.default_rng(None if self.seed is None else [self.seed, self.epoch])
            start, parts_x, parts_y, held = 0, [], [], 0
            batches = self.cache.iter_batches(self.split, READ_BATCH)
            for batch in batches:
                parts_x.append(batch["features"].astype(np.float32, copy=False))
                parts_y.append(batch[self.target])
                held += len(parts_y[-1])
                while held >= self.window:
                    x, y = np.concatenate(parts_x), np.concatenate(parts_y)
                    yield start, *self._mixed(rng, x[:self.window], y[:self.window])
                    start += self.window
                    parts_x, parts_y, held = [x[self.window:]], [y[self.window:]], \
                        len(y) - self.window
            if held:
                yield start, *self._mixed(rng, np.concatenate(parts_x), np.concatenate(parts_y))

        def _mixed(self, rng: np.random.Generator, x: np.ndarray, y: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
            if not self.shuffle:
                return x, y
            order = rng.permutation(len(y))
            return x[order], y[order]

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            first = index * self.batch_size
            if self._current is None or first < self._current[0]:
                self._reader, self._current = self._windows(), None
            while self._current is None or first >= self._current[0] + len(self._current[2]):
                self._current = next(self._reader)  # type: ignore[arg-type]
            start, x, y = self._current
            lo = first - start
            return x[lo:lo + self.batch_size], y[lo:lo + self.batch_size]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self._reader, self._current = None, None

    return FeatureBatches
