"""Augmented views: K seeded variations of a training image, each the same on every run.

Ops keep the meanings and defaults of Keras' preprocessing layers: ``flip`` (horizontal, as
``RandomFlip("horizontal")``; ``flip=vertical`` or ``flip=both``), ``rotate=F`` (±F × 2π, as
``RandomRotation(F)``), ``zoom=F`` (scale in [1−F, 1+F], as ``RandomZoom(F)``),
``translate=F`` (±F of the height and width, as ``RandomTranslation(F, F)``) and
``contrast=F`` (factor in [1−F, 1+F] around each channel's mean, clipped to 0..255, as
``RandomContrast(F)``); geometric ops fill by reflection and interpolate bilinearly, as
Keras' defaults do. They are applied to the resized image — where the tutorials' augmentation
layers sit, at the model's input — in one projective transform. Each view draws its
parameters from a stateless seed made of (the image's key, the view index), so resume, an
incremental extend and the Ray executor compute the very same views. View 0 is the image
itself.
"""

from __future__ import annotations

import math

import tensorflow as tf

from bottleneck.data.augment_ops import DEFAULT_OPS, FLIP_MODES, OPS, Augment, key_seed

__all__ = ["DEFAULT_OPS", "FLIP_MODES", "OPS", "Augment", "augment_view", "key_seed", "views"]


def _uniform(seed: tf.Tensor, low: float, high: float) -> tf.Tensor:
    return tf.random.stateless_uniform([], seed, low, high)


def augment_view(image: tf.Tensor, seed: tf.Tensor, ops: Augment) -> tf.Tensor:
    """One augmented view of a float32 H×W×3 image (0..255), fixed by ``seed`` (int64 [2])."""
    seeds = tf.random.experimental.stateless_split(seed, num=7)
    if ops.flip:
        vertical, horizontal = FLIP_MODES[ops.flip]
        if horizontal:
            image = tf.where(_uniform(seeds[0], 0, 1) < 0.5, tf.reverse(image, [1]), image)
        if vertical:
            image = tf.where(_uniform(seeds[1], 0, 1) < 0.5, tf.reverse(image, [0]), image)
    if ops.rotate or ops.zoom or ops.translate:
        height, width = tf.cast(tf.shape(image)[0], tf.float32), \
            tf.cast(tf.shape(image)[1], tf.float32)
        angle = _uniform(seeds[2], -ops.rotate, ops.rotate) * 2 * math.pi
        scale = 1 + _uniform(seeds[3], -ops.zoom, ops.zoom)
        dx = _uniform(seeds[4], -ops.translate, ops.translate) * width
        dy = _uniform(seeds[5], -ops.translate, ops.translate) * height
        cos, sin = tf.cos(angle) * scale, tf.sin(angle) * scale
        cx, cy = (width - 1) / 2, (height - 1) / 2
        # output pixel → input pixel: scaled rotation about the centre, then the shift
        transform = tf.stack([cos, -sin, cx - cos * cx + sin * cy - dx,
                              sin, cos, cy - sin * cx - cos * cy - dy, 0.0, 0.0])
        image = tf.raw_ops.ImageProjectiveTransformV3(
            images=image[tf.newaxis], transforms=transform[tf.newaxis],
            output_shape=tf.shape(image)[:2], fill_value=0.0, interpolation="BILINEAR",
            fill_mode="REFLECT")[0]
    if ops.contrast:
        factor = 1 + _uniform(seeds[6], -ops.contrast, ops.contrast)
        mean = tf.reduce_mean(image, axis=[0, 1], keepdims=True)
        image = tf.clip_by_value((image - mean) * factor + mean, 0.0, 255.0)
    return image


def views(image: tf.Tensor, key_hash: tf.Tensor, count: tf.Tensor, ops: Augment
          ) -> tuple[tf.Tensor, tf.Tensor]:
    """(``count`` views stacked, their indices): view 0 is ``image``, view v is augmented with
    the seed (``key_hash``, v)."""
    indices = tf.range(count, dtype=tf.int64)

    def one(view: tf.Tensor) -> tf.Tensor:
        seed = tf.stack([key_hash, view])
        return tf.cond(view > 0, lambda: augment_view(image, seed, ops), lambda: image)

    stacked = tf.map_fn(one, indices, fn_output_signature=tf.TensorSpec(image.shape, tf.float32))
    return stacked, indices
