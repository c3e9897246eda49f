"""A frozen backbone cut at a layer, with its own preprocessing: raw RGB in, features out.

Built from an :class:`ExtractConfig` alone, so ``extract`` and ``predict`` construct the very
same function from the manifest.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import numpy as np

from bottleneck.backbones import get_backbone
from bottleneck.errors import UserError
from bottleneck.extraction.config import ExtractConfig, resolve_config


def weights_digest(model: Any) -> str:
    """sha256 over the model's weight arrays: identifies exactly which weights ran."""
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def cut_and_pool(base: Any, layer: str | None, pooling: str, name: str) -> Any:
    """``base`` up to ``layer`` (None: its output), globally pooled unless ``pooling='none'``."""
    import keras

    output = base.output
    if layer:
        try:
            output = base.get_layer(layer).output
        except ValueError:
            raise UserError(
                f"{name} has no layer '{layer}'; list them with `bottleneck layers {name} "
                f"--image-size {base.input.shape[1]}`."
            ) from None
    if len(output.shape) == 4 and pooling != "none":
        pool = (keras.layers.GlobalAveragePooling2D if pooling == "avg"
                else keras.layers.GlobalMaxPooling2D)
        output = pool(name=f"bottleneck_{pooling}_pool")(output)
    model = keras.Model(base.input, output, name=f"{name}_features")
    model.trainable = False
    return model


class FeatureExtractor:
    """Raw float RGB (0..255) batches → features, exactly as the cache stores them.

    ``config`` is resolved (a new object; the argument is not changed) and, where it records a
    weights digest, the rebuilt weights must match it.
    """

    def __init__(self, config: ExtractConfig) -> None:
        import tensorflow as tf

        resolved, weights = resolve_config(config)
        backbone = get_backbone(resolved.backbone)
        base = backbone.load(weights, resolved.image_size)
        self.model = cut_and_pool(base, resolved.layer, resolved.pooling, backbone.name)
        digest = weights_digest(self.model)
        if resolved.weights_digest and resolved.weights_digest != digest:
            raise UserError(
                f"the {backbone.name} weights differ from those the cache was built with "
                f"({resolved.weights_name}); pass the same --weights as at extraction."
            )
        self.config = replace(resolved, weights_digest=digest)
        self.feature_shape: tuple[int, ...] = tuple(int(d) for d in self.model.output.shape[1:])
        preprocess = backbone.preprocess_input
        size = resolved.image_size
        model = self.model

        @tf.function(input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32)],
                     reduce_retracing=True)
        def run(images: tf.Tensor) -> tf.Tensor:
            return model(preprocess(images), training=False)

        self._run = run

    def __call__(self, images: Any) -> np.ndarray:
        """Features for a batch of float32 RGB images in 0..255 at the configured size."""
        features = self._run(images).numpy()
        return features.astype(self.config.dtype, copy=False)
