"""Backbone registry: name → builder, preprocessing, input sizes and feature dims.

Each backbone's ``preprocess_input`` is defined here once; extraction and prediction both
reach it through :func:`get_backbone`, so a cache can never be built with one scaling and
served with another.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bottleneck.errors import UserError

BACKBONES: dict[str, Backbone] = {}


@dataclass(frozen=True)
class Backbone:
    """A frozen ImageNet model that can be cut at any layer."""

    name: str
    module: str  # module that holds the builder and preprocess_input
    builder: str  # attribute name of the keras.applications-style builder
    default_size: int
    min_size: int
    dims: int  # channels of the default (last block, pooled) output
    description: str
    preprocess_module: str | None = None  # defaults to ``module``

    def build(self, weights: str | None, image_size: int) -> Any:
        """The model without its classifier top, at ``image_size``, in inference mode."""
        builder: Callable[..., Any] = getattr(importlib.import_module(self.module), self.builder)
        model = builder(
            include_top=False, weights=weights, input_shape=(image_size, image_size, 3)
        )
        model.trainable = False
        return model

    def build_with_top(self, weights: str | None, image_size: int) -> Any:
        """The full ImageNet classifier (1000 logits or probabilities)."""
        builder: Callable[..., Any] = getattr(importlib.import_module(self.module), self.builder)
        model = builder(include_top=True, weights=weights, input_shape=(image_size, image_size, 3))
        model.trainable = False
        return model

    @property
    def preprocess_input(self) -> Callable[[Any], Any]:
        """The model's own input scaling: float RGB in 0..255 → model input."""
        module = importlib.import_module(self.preprocess_module or self.module)
        return module.preprocess_input

    def check_size(self, image_size: int) -> None:
        """Refuse an input size the model cannot take."""
        if image_size < self.min_size:
            raise UserError(
                f"--image-size {image_size} is below {self.name}'s minimum of {self.min_size}; "
                f"use --image-size {self.min_size} or more (default {self.default_size})."
            )


def register_backbone(backbone: Backbone) -> Backbone:
    """Add a backbone to the registry (one line per backbone)."""
    BACKBONES[backbone.name] = backbone
    return backbone


def get_backbone(name: str) -> Backbone:
    """Look a backbone up by name, or fail with the list of valid names."""
    try:
        return BACKBONES[name.lower()]
    except KeyError:
        raise UserError(
            f"unknown backbone '{name}'; choose one of: {', '.join(sorted(BACKBONES))}."
        ) from None


_APPS = "keras.applications"
for _backbone in (
    Backbone("inception_v3", f"{_APPS}.inception_v3", "InceptionV3", 299, 75, 2048,
             "InceptionV3, 2048-d pooled"),
    Backbone("mobilenet_v2", f"{_APPS}.mobilenet_v2", "MobileNetV2", 224, 32, 1280,
             "MobileNetV2 (alpha 1.0), 1280-d pooled; imagenet weights at 96-224"),
    Backbone("mobilenet", f"{_APPS}.mobilenet", "MobileNet", 224, 32, 1024,
             "MobileNet v1 (alpha 1.0), 1024-d pooled; imagenet weights at 128-224"),
    Backbone("vgg16", f"{_APPS}.vgg16", "VGG16", 224, 32, 512,
             "VGG16, 512-d pooled; intermediate layers such as block4_pool"),
    Backbone("vgg19", f"{_APPS}.vgg19", "VGG19", 224, 32, 512,
             "VGG19, 512-d pooled; intermediate layers such as block4_pool"),
    Backbone("resnet50", f"{_APPS}.resnet50", "ResNet50", 224, 32, 2048,
             "ResNet50, 2048-d pooled"),
    Backbone("xception", f"{_APPS}.xception", "Xception", 299, 71, 2048,
             "Xception, 2048-d pooled"),
    Backbone("efficientnet_lite0", "bottleneck.efficientnet_lite", "EfficientNetLite0", 224, 32,
             1280, "EfficientNet-Lite0, 1280-d pooled; imagenet weights offline (converted)"),
):
    register_backbone(_backbone)
