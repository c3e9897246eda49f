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

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bottleneck.errors import UserError

OPS = ("flip", "rotate", "zoom", "translate", "contrast")
DEFAULT_OPS = "flip,rotate=0.1,zoom=0.1"
FLIP_MODES = {"horizontal": (False, True), "vertical": (True, False), "both": (True, True)}


@dataclass(frozen=True)
class Augment:
    """Parsed ``--augment-ops``: which ops, with which factors."""

    flip: str | None = None
    rotate: float = 0.0
    zoom: float = 0.0
    translate: float = 0.0
    contrast: float = 0.0

    @classmethod
    def parse(cls, text: str | None) -> Augment:
        """``"flip,rotate=0.1,zoom=0.1"`` → Augment; a bad op is one line saying what is valid."""
        values: dict[str, object] = {}
        for part in (p.strip() for p in (text or DEFAULT_OPS).split(",") if p.strip()):
            name, _, value = part.partition("=")
            if name not in OPS:
                raise UserError(f"unknown augment op '{name}'; choose from: {', '.join(OPS)} "
                                "(e.g. --augment-ops flip,rotate=0.1,zoom=0.1).")
            if name == "flip":
                mode = value or "horizontal"
                if mode not in FLIP_MODES:
                    raise UserError(f"flip={mode} is not valid; use flip, flip=vertical or "
                                    "flip=both.")
                values[name] = mode
                continue
            try:
                factor = float(value)
            except ValueError:
                raise UserError(f"augment op {part!r} needs a number, e.g. {name}=0.1.") from None
            if not 0 < factor < 1:
                raise UserError(f"augment op {part!r}: the factor must be between 0 and 1.")
            values[name] = factor
        return cls(**values)  # type: ignore[arg-type]

    def describe(self) -> str:
        """The canonical text recorded in the manifest."""
        parts = [f"flip={self.flip}"] if self.flip else []
        parts += [f"{op}={getattr(self, op)}" for op in OPS[1:] if getattr(self, op)]
        return ",".join(parts)


def key_seed(key: str) -> int:
    """A stable 62-bit number for an image key (the first half of every view's seed)."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:15], 16) >> 2


def _uniform(seed: Any, low: float, high: float) -> Any:
    import tensorflow as tf

    return tf.random.stateless_uniform([], seed, low, high)


def augment_view(image: Any, seed: Any, ops: Augment) -> Any:
    """One augmented view of a float32 H×W×3 image (0..255), fixed by ``seed`` (int64 [2])."""
    import tensorflow as tf

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


def views(image: np.ndarray, key_hash: int, count: int, ops: Augment
          ) -> tuple[np.ndarray, np.ndarray]:
    """(``count`` views stacked, their indices): view 0 is ``image``, view v is augmented with
    the seed (``key_hash``, v)."""
    import tensorflow as tf

    stacked = [image] + [
        augment_view(tf.constant(image), tf.constant([key_hash, v], tf.int64), ops).numpy()
        for v in range(1, count)]
    return np.stack(stacked), np.arange(count, dtype=np.int64)
