"""The backbone's own ImageNet classifier on raw images, with class names (no head needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.backbones import get_backbone
from bottleneck.backbones.imagenet_classes import imagenet_class_names
from bottleneck.backend import import_keras
from bottleneck.data.images import load_image
from bottleneck.errors import UserError
from bottleneck.models.predict import list_inputs


def classify_imagenet(inputs: Sequence[str | Path], backbone: str = "efficientnet_lite0",
                      weights: str = "imagenet", top: int = 5) -> list[dict[str, Any]]:
    """Top-``top`` ImageNet classes of each image file, with the same decoding as extraction."""
    keras = import_keras()

    spec = get_backbone(backbone)
    if top < 1:
        raise UserError("--top must be positive.")
    files = list_inputs(inputs)
    if not files:
        raise UserError("no image files found in the given folders.")
    model = spec.load(spec.resolve_weights(weights, include_top=True), spec.default_size,
                      include_top=True)
    names = imagenet_class_names()
    results = []
    for path, error in files:
        result: dict[str, Any] = {"path": str(path)}
        try:
            if error:
                raise ValueError(error)
            pixels = load_image(path, spec.default_size)[np.newaxis]
        except ValueError as exc:
            results.append(result | {"error": str(exc)})
            continue
        scaled = spec.preprocess_input(keras.ops.convert_to_tensor(pixels))
        probabilities = keras.ops.convert_to_numpy(model(scaled, training=False))[0]
        best = np.argsort(-probabilities)[:top]
        result["top"] = [{"class": names[i], "index": int(i),
                          "probability": float(probabilities[i])} for i in best]
        results.append(result)
    return results
