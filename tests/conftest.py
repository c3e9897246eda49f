"""Shared fixtures: generated image folders and weights files that make random features useful."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from PIL import Image

from bottleneck.backend import import_keras

import_keras()  # the suite runs on the configured backend (TensorFlow unless told)

CLASS_COLOURS = {"circle": (200, 60, 40), "square": (40, 160, 70), "stripes": (50, 70, 210)}


def draw_image(kind: str, rng: np.random.Generator, size: tuple[int, int] = (48, 56)) -> np.ndarray:
    """A noisy picture whose content depends on its class: learnable even by random features."""
    h, w = size
    image = rng.normal(110, 25, (h, w, 3))
    yy, xx = np.mgrid[:h, :w]
    colour = np.array(CLASS_COLOURS[kind], dtype=float)
    if kind == "circle":
        mask = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 3) ** 2
    elif kind == "square":
        mask = (abs(yy - h / 2) < h / 4) & (abs(xx - w / 2) < w / 4)
    else:
        mask = (xx // 4) % 2 == 0
    image[mask] = colour + rng.normal(0, 15, (int(mask.sum()), 3))
    return image.clip(0, 255).astype(np.uint8)


def write_class_folder(root: Path, per_class: int = 12, seed: int = 0,
                       classes: tuple[str, ...] = tuple(CLASS_COLOURS)) -> Path:
    """root/CLASS/NNN.jpg for each class, varied sizes, JPEG and PNG."""
    rng = np.random.default_rng(seed)
    for kind in classes:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = (40 + (i * 7) % 30, 44 + (i * 5) % 36)
            suffix = "png" if i % 4 == 3 else "jpg"
            Image.fromarray(draw_image(kind, rng, size)).save(root / kind / f"{i:03d}.{suffix}")
    return root


def he_normal_weights(backbone: str, image_size: int, path: Path, seed: int = 1) -> Path:
    """Save a backbone's no-top weights with He-normal kernels and zero biases.

    Keras' default init makes some models' features vanish; He-normal keeps the variance, so
    random VGG16 features separate simple classes.
    """
    from bottleneck.backbones import get_backbone

    model = get_backbone(backbone).build(None, image_size)
    he_normal_init(model, seed)
    model.save_weights(path)
    return path


def he_normal_init(model, seed: int = 1) -> None:
    """Give a built model He-normal kernels and zero biases, in place."""
    import keras

    init = keras.initializers.HeNormal(seed=seed)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "DepthwiseConv2D":  # its fan-in is its window alone
            shape = layer.kernel.shape
            layer.kernel.assign(rng.normal(0, np.sqrt(2 / np.prod(shape[:2])), shape)
                                .astype("float32"))
        elif hasattr(layer, "kernel") and layer.kernel is not None:
            layer.kernel.assign(init(layer.kernel.shape))
        if getattr(layer, "kernel", None) is not None and \
                getattr(layer, "bias", None) is not None:
            layer.bias.assign(np.zeros(layer.bias.shape, dtype="float32"))


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder-per-class dataset of 36 generated images in 3 classes."""
    return write_class_folder(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def vgg16_he_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """He-normal VGG16 weights at 32×32, as a Keras weights file."""
    return he_normal_weights("vgg16", 32, tmp_path_factory.mktemp("weights") / "vgg16.weights.h5")
