"""One Keras model from pixels to the answer: preprocessing → backbone → pool → head.

:func:`assemble` builds it from a head's MODEL_DIR: the backbone, weights (checked by digest),
layer, pooling and size from the recorded config (through the very
:class:`~bottleneck.extraction.FeatureExtractor` that extraction and ``predict`` use), the
backbone's ``preprocess_input`` as Keras layers, and the fitted head as Keras layers. Before any
training its outputs equal the head's on the cached rows. A fine-tuned MODEL_DIR holds such a
model in ``model.keras``; :class:`ImageModel` gives it the head API ``predict`` expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.backbones import get_backbone
from bottleneck.backend import import_keras
from bottleneck.errors import UserError
from bottleneck.extraction import ExtractConfig, FeatureExtractor
from bottleneck.heads import keras_head


@dataclass
class Assembled:
    """``model``: float32 RGB 0..255 at ``image_size`` → probabilities or value, made of three
    named parts: ``preprocess`` (fixed), ``backbone`` (frozen) and ``head``."""

    model: Any
    preprocess: Any
    backbone: Any
    head: Any
    image_size: int
    learning_rate: float | None = None


def assemble(model: Any) -> Assembled:
    """The Keras model of a head's MODEL_DIR (a loaded :class:`~bottleneck.models.model_dir.
    Model`); a head without a Keras form is refused in one line."""
    keras = import_keras()

    converted = keras_head(model.head_name, model.head, model.task, len(model.classes),
                           model.feature_shape)
    extractor = FeatureExtractor(ExtractConfig.from_dict(model.config))
    if extractor.feature_shape != model.feature_shape:
        raise UserError(f"the rebuilt backbone gives {extractor.feature_shape} features but the "
                        f"head expects {model.feature_shape}; re-run fit.")
    size = int(extractor.config.image_size)
    pixels = keras.Input((size, size, 3), name="pixels")
    x = pixels
    for layer in get_backbone(extractor.config.backbone).preprocess_layers():
        x = layer(x)
    preprocess = keras.Model(pixels, x, name="preprocess")
    backbone = extractor.model
    inputs = keras.Input((size, size, 3), name="pixels")
    outputs = converted.model(backbone(preprocess(inputs)))
    whole = keras.Model(inputs, outputs, name="bottleneck_model")
    return Assembled(whole, preprocess, backbone, converted.model, size,
                     converted.learning_rate)


class ImageModel:
    """A Keras pixels → outputs model with the head API: ``predict``, ``predict_proba``,
    ``classes_`` (label indices), so ``predict`` and ``evaluate`` treat it like any head."""

    def __init__(self, model: Any, task: str, n_classes: int) -> None:
        self.model_ = model
        self.task = task
        if task == "classify":
            self.classes_ = np.arange(n_classes)
        self._last: tuple[Any, np.ndarray] | None = None

    def _outputs(self, X: Any) -> np.ndarray:
        if self._last is None or self._last[0] is not X:  # predict then predict_proba: once
            self._last = (X, np.asarray(self.model_.predict(X, verbose=0), dtype=np.float64))
        return self._last[1]

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._outputs(X)

    def predict(self, X: Any) -> np.ndarray:
        outputs = self._outputs(X)
        return outputs[:, 0] if self.task == "regress" else outputs.argmax(axis=1)


def load_image_model(path: Path, info: dict[str, Any]) -> ImageModel:
    """A fine-tuned MODEL_DIR's ``model.keras`` (``path``), loaded in Keras safe mode."""
    keras = import_keras()

    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    return ImageModel(model, info["task"], len(info["classes"]))
