"""Every backbone's preprocessing as Keras layers equals its ``preprocess_input``."""

from __future__ import annotations

import numpy as np
import pytest

from bottleneck.backbones import BACKBONES, get_backbone
from bottleneck.backbones.preprocessing import torch_mode


def pixels() -> np.ndarray:
    """Resized-looking pixels: floats in 0..255, not whole numbers, the edges included."""
    rng = np.random.default_rng(0)
    batch = rng.uniform(0, 255, (2, 5, 7, 3)).astype(np.float32)
    batch[0, 0, 0] = (0.0, 255.0, 127.5)
    return batch


def apply(layers: list, batch: np.ndarray) -> np.ndarray:
    import keras

    x = keras.ops.convert_to_tensor(batch)
    for layer in layers:
        x = layer(x)
    return np.asarray(x)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_preprocess_layers_equal_preprocess_input(name: str) -> None:
    import tensorflow as tf

    backbone = get_backbone(name)
    batch = pixels()
    expected = np.asarray(backbone.preprocess_input(tf.constant(batch)))
    layers = backbone.preprocess_layers()
    np.testing.assert_allclose(apply(layers, batch), expected, rtol=0, atol=1e-5)
    assert not any(layer.trainable_weights for layer in layers)
    assert np.abs(expected - batch).min() > 0.5  # a layer that did nothing could not pass


def test_torch_mode_equals_keras_torch_preprocessing() -> None:
    from keras.applications import imagenet_utils

    batch = pixels()
    expected = imagenet_utils.preprocess_input(batch.copy(), mode="torch")
    np.testing.assert_allclose(apply(torch_mode(), batch), expected, rtol=0, atol=1e-5)
