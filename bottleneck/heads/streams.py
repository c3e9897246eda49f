"""Batched streams of ``(features, target)`` for the dense head, on any Keras backend.

A stream is a ``keras.utils.PyDataset`` (what :func:`bottleneck.cache.batches.feature_batches`
returns, or :func:`array_batches` over arrays); a ``tf.data.Dataset`` is taken too on the
TensorFlow backend. These helpers read one the same way whichever it is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np


def _is_tf_dataset(data: Any) -> bool:
    return type(data).__module__.startswith("tensorflow") and hasattr(data, "element_spec")


def is_dataset(data: Any) -> bool:
    """True for a batched stream (a PyDataset, or tf.data), without importing either."""
    return any(c.__name__ == "PyDataset" for c in type(data).__mro__) or _is_tf_dataset(data)


def iterate(stream: Any) -> Iterator[tuple[np.ndarray, ...]]:
    """One pass over a stream's batches as NumPy tuples."""
    if _is_tf_dataset(stream):
        yield from stream.as_numpy_iterator()
        return
    for index in range(len(stream)):
        batch = stream[index]
        yield tuple(np.asarray(part) for part in batch) if isinstance(batch, tuple) \
            else (np.asarray(batch),)


def length(stream: Any) -> int:
    """The number of batches in one pass."""
    return int(stream.cardinality()) if _is_tf_dataset(stream) else len(stream)


def feature_shape(stream: Any) -> tuple[int, ...]:
    """The shape of one row of the stream's features."""
    if hasattr(stream, "feature_shape"):
        return tuple(int(d) for d in stream.feature_shape)
    if _is_tf_dataset(stream):
        spec = stream.element_spec
        spec = spec[0] if isinstance(spec, tuple) else spec
        return tuple(int(d) for d in spec.shape[1:])
    return tuple(int(d) for d in next(iterate(stream))[0].shape[1:])


def mapped(stream: Any, targets: Callable[[np.ndarray], Any] | None) -> Any:
    """The stream with its targets passed through ``targets`` (None: features only)."""
    if _is_tf_dataset(stream):
        if targets is None:
            return stream.map(lambda x, *_: x)
        return stream.map(lambda x, y: (x, targets(y)))  # targets() takes tensors too
    return _classes()[0](stream, targets)


def array_batches(X: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool,
                  seed: int | None = None) -> Any:
    """Batches of in-memory ``(X, y)``, reshuffled each epoch by index (no copy of X)."""
    return _classes()[1](X, y, batch_size, shuffle, seed)


@functools.cache
def _classes() -> tuple[type, type]:
    from bottleneck.backend import import_keras

    base = import_keras().utils.PyDataset

    class Mapped(base):
        """Another stream's batches with the targets encoded, or dropped."""

        def __init__(self, stream: Any, targets: Callable[[np.ndarray], Any] | None) -> None:
            super().__init__()
            self.stream, self.targets = stream, targets
            self.feature_shape = feature_shape(stream)

        def __len__(self) -> int:
            return len(self.stream)

        def __getitem__(self, index: int) -> Any:
            x, y = self.stream[index][:2]
            return x if self.targets is None else (x, self.targets(np.asarray(y)))

        def on_epoch_end(self) -> None:
            self.stream.on_epoch_end()

    class Arrays(base):
        """Batches of in-memory arrays."""

        def __init__(self, X: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool,
                     seed: int | None) -> None:
            super().__init__()
            self.X, self.y, self.batch_size, self.shuffle = X, y, batch_size, shuffle
            self.feature_shape = X.shape[1:]
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(X)) if shuffle else np.arange(len(X))

        def __len__(self) -> int:
            return -(-len(self.X) // self.batch_size)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
            if not self.shuffle:
                rows = slice(int(rows[0]), int(rows[-1]) + 1) if len(rows) else rows
            return self.X[rows], self.y[rows]

        def on_epoch_end(self) -> None:
            if self.shuffle:
                self.order = self.rng.permutation(len(self.X))

    return Mapped, Arrays
