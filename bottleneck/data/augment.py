"""Augmented views: K seeded variations of a training image, each the same on every run and
every backend.

Ops keep the meanings and defaults of Keras' preprocessing layers: ``flip`` (horizontal, as
``RandomFlip("horizontal")``; ``flip=vertical`` or ``flip=both``), ``rotate=F`` (±F × 2π, as
``RandomRotation(F)``), ``zoom=F`` (scale in [1−F, 1+F], as ``RandomZoom(F)``),
``translate=F`` (±F of the height and width, as ``RandomTranslation(F, F)``) and
``contrast=F`` (factor in [1−F, 1+F] around each channel's mean, clipped to 0..255, as
``RandomContrast(F)``); geometric ops fill by reflection and interpolate bilinearly, as
Keras' defaults do. They are applied to the resized image — where the tutorials' augmentation
layers sit, at the model's input — in one projective transform, in NumPy
(:mod:`.augment_np`). Each view draws its parameters from a Philox stream keyed by (the
image's key, the view index), so resume, an incremental extend, the Ray executor and every
Keras backend compute the very same views (``AUGMENT_RNG`` names that stream in the config).
View 0 is the image itself.
"""

from __future__ import annotations

from bottleneck.data.augment_np import views_np as views
from bottleneck.data.augment_ops import DEFAULT_OPS, FLIP_MODES, OPS, Augment, key_seed

AUGMENT_RNG = "numpy-philox-1"  # earlier versions drew with TensorFlow's stateless ops

__all__ = ["AUGMENT_RNG", "DEFAULT_OPS", "FLIP_MODES", "OPS", "Augment", "key_seed", "views"]
