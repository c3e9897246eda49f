"""Building blocks of the dense head that need no estimator state: input checks, the
spatial reduction layer, one-pass statistics of a stream."""

from __future__ import annotations

from typing import Any

import numpy as np


def is_dataset(data: Any) -> bool:
    """True for a ``tf.data.Dataset`` (without importing TensorFlow for arrays)."""
    return type(data).__module__.startswith("tensorflow") and hasattr(data, "element_spec")


def spatial_layer(mode: str, rank: int) -> Any:
    """The Keras layer that reduces a ``rank``-dimensional feature map to a vector."""
    import keras

    if mode == "flatten" or rank > 3:
        return keras.layers.Flatten(name="spatial_flatten")
    pools = {
        (3, "avg"): keras.layers.GlobalAveragePooling2D,
        (3, "max"): keras.layers.GlobalMaxPooling2D,
        (2, "avg"): keras.layers.GlobalAveragePooling1D,
        (2, "max"): keras.layers.GlobalMaxPooling1D,
    }
    return pools[(rank, mode)](name=f"spatial_{mode}")


def is_index_labels(labels: np.ndarray, n_classes: int) -> bool:
    """True when every label is an integer index in ``[0, n_classes)``."""
    return bool(np.all((labels >= 0) & (labels < n_classes) & (labels == np.round(labels))))


def stream_stats(stream: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass over a ``(features, target)`` stream: per-channel mean and variance, targets."""
    total = squares = None
    count = 0
    targets = []
    for features, target in stream.as_numpy_iterator():
        features = features.astype(np.float64)
        axes = tuple(range(features.ndim - 1))
        batch_sum, batch_squares = features.sum(axis=axes), np.square(features).sum(axis=axes)
        total = batch_sum if total is None else total + batch_sum
        squares = batch_squares if squares is None else squares + batch_squares
        count += features.size // features.shape[-1]
        targets.append(target)
    if not count:
        raise ValueError("the training stream is empty")
    mean = total / count
    variance = np.maximum(squares / count - mean**2, 0.0)
    return mean.astype(np.float32), variance.astype(np.float32), np.concatenate(targets)
