"""Each backbone's ``preprocess_input`` as Keras' own layers, so a saved model carries it.

A fine-tuned or exported model holds its input scaling inside (no Lambda, nothing of ours to
import): loads with ``safe_mode=True`` and converts to SavedModel, TFLite and ONNX. Every
builder returns fresh, non-trainable layers numerically equal to the function it stands for
(a test checks each registered backbone against its ``preprocess_input``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from bottleneck.backend import import_keras

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications.imagenet_utils, mode "caffe"
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)


def rescale(scale: float, offset: float, name: str = "preprocess") -> Callable[[], list[Any]]:
    """A builder of ``x * scale + offset`` (tf mode: 1/127.5, -1; Lite0: 1/128, -127/128)."""

    def build() -> list[Any]:
        keras = import_keras()

        return [keras.layers.Rescaling(scale, offset=offset, name=f"{name}_rescale",
                                       trainable=False)]

    return build


def from_module(module: str, attr: str = "preprocess_layers") -> Callable[[], list[Any]]:
    """A builder defined beside a backbone's architecture, imported only when used."""

    def build() -> list[Any]:
        return getattr(importlib.import_module(module), attr)()

    return build


def tf_mode() -> list[Any]:
    """keras.applications mode "tf": ``x / 127.5 - 1`` (Inception, MobileNet, Xception)."""
    return rescale(1 / 127.5, -1.0)()


def caffe_mode() -> list[Any]:
    """keras.applications mode "caffe" (VGG, ResNet): RGB → BGR, then minus the BGR mean.

    A fixed Dense over the channel axis: its kernel is the channel permutation (products with
    exact ones and zeros) and its bias minus the mean, the same single rounding as the function.
    """
    keras = import_keras()

    layer = keras.layers.Dense(3, name="preprocess_rgb_to_bgr_centre", trainable=False)
    layer.build((None, None, None, 3))
    layer.set_weights([np.eye(3, dtype=np.float32)[::-1].copy(),
                       -np.asarray(CAFFE_MEAN_BGR, dtype=np.float32)])
    return [layer]


def torch_mode() -> list[Any]:
    """keras.applications mode "torch" (DenseNet): ``(x / 255 - mean) / std`` per channel."""
    keras = import_keras()

    std = np.asarray(TORCH_STD_RGB, dtype=np.float64)
    mean = np.asarray(TORCH_MEAN_RGB, dtype=np.float64)
    return [keras.layers.Rescaling((1 / (255 * std)).tolist(), offset=(-mean / std).tolist(),
                                   name="preprocess_rescale", trainable=False)]
