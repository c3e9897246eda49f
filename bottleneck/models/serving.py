"""The model an export writes: images of any size → resize → the model's answer, in
inference mode only, whoever calls it and however.

Keras resolves a layer's ``training`` flag from the call itself, else from the layers called
before it in the same outer call, else from the layer's own default; and ``Resizing``'s
default is ``training=True``. In a plain Functional model with a ``Resizing`` first, a call
``m(x)`` (as Keras users, SavedModel's ``serve`` and the ONNX converter call it) therefore ran
every later layer in training mode: dropout and EfficientNet-Lite0's drop-connect drew random
masks (different answers on every call, random ops in the ONNX graph), and the BatchNorm
layers a fine-tune unfroze normalised with the batch's statistics. ``predict`` alone was right,
because it passes ``training=False``.

So :func:`inference_only` rebuilds the Keras model with its training-only layers (dropout,
drop-connect, noise, augmentation: identity at inference) replaced by ``Identity``, every
other layer (the same objects, so the same weights) called with ``training=False``, and all of
it frozen (BatchNorm then keeps its moving statistics even under ``training=True``).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from bottleneck.backend import import_keras
from bottleneck.models.assemble import assemble
from bottleneck.models.model_dir import Model

# identity at inference; anything else keeps its layer, pinned to training=False
TRAINING_ONLY = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                 "GaussianDropout", "GaussianNoise", "AlphaDropout", "ActivityRegularization",
                 "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation",
                 "RandomContrast", "RandomBrightness")


def training_only(layer: Any) -> bool:
    """Whether ``layer`` is one that only acts while training (identity at inference)."""
    keras = import_keras()

    kinds = tuple(getattr(keras.layers, name) for name in TRAINING_ONLY
                  if hasattr(keras.layers, name))
    return isinstance(layer, kinds)


def inference_only(model: Any) -> Any:
    """``model`` (Functional, nested models included) with its training-only layers replaced
    by ``Identity``, every other layer called with ``training=False``, all frozen. Layers are
    shared with ``model``, not copied: the weights are the same."""
    keras = import_keras()

    def keep(layer: Any) -> Any:
        return keras.layers.Identity(name=layer.name) if training_only(layer) else layer

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if "training" in inspect.signature(layer.call).parameters:
            kwargs["training"] = False
        return layer(*args, **kwargs)

    clone = keras.models.clone_model(model, clone_function=keep, call_function=call,
                                     recursive=True)
    clone.trainable = False
    return clone


def pixels_model(model: Model) -> tuple[Any, int]:
    """The Keras model of a MODEL_DIR (float RGB 0..255 at its size → answer) and the size."""
    if model.takes_images:
        return model.head.model_, int(model.config["image_size"])
    assembled = assemble(model)
    return assembled.model, assembled.image_size


def resize_layer(size: int) -> Any:
    """Resizing exactly as extraction did: bilinear, no antialias, no crop."""
    keras = import_keras()

    return keras.layers.Resizing(size, size, interpolation="bilinear", crop_to_aspect_ratio=False,
                                 antialias=False, name="resize")


def serving_model(inner: Any, size: int) -> Any:
    """``image`` (N × H × W × 3, any H and W, 0..255) → resize to ``size`` → ``inner``'s
    answer, in inference mode only (see the module docstring)."""
    keras = import_keras()

    image = keras.Input((None, None, 3), name="image")
    resized = resize_layer(size)(image, training=False)
    served = keras.Model(image, inference_only(inner)(resized, training=False),
                         name="bottleneck_export")
    served.trainable = False
    return served


def probe_images(size: int) -> np.ndarray:
    """Three float32 images (0..255) of another size than ``size``, so the resize runs: noise,
    a smooth gradient and blocks; the exported file must answer them as the model does."""
    rng = np.random.default_rng(0)
    h, w = size + 9, size + 4
    yy, xx = np.mgrid[:h, :w] / max(h, w)
    gradient = np.stack([255 * yy, 255 * xx, 255 * (1 - yy) * xx], axis=-1)
    blocks = rng.integers(0, 256, (4, 4, 3)).repeat(-(-h // 4), 0).repeat(-(-w // 4), 1)[:h, :w]
    noise = rng.uniform(0, 255, (h, w, 3))
    return np.stack([noise, gradient, blocks]).astype(np.float32)


def reference_answers(inner: Any, size: int, images: np.ndarray) -> np.ndarray:
    """What ``inner`` answers on ``images`` through ``predict`` (inference mode), after the
    same resize: what every export must equal."""
    resized = np.asarray(resize_layer(size)(images))
    return np.asarray(inner.predict(resized, verbose=0))
