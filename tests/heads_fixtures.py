"""Caches for the head tests, built once per session (loaded with ``pytest_plugins``).

Images come from ``conftest.draw_image`` (class-dependent colour and shape plus noise) in
``train/``, ``val/`` and ``test/`` folders, features from VGG16 at 32×32 with the He-normal
weights file of ``conftest.vgg16_he_weights``: random features that still separate the classes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bottleneck.cache import Cache, open_cache

SPLIT_SIZES = {"train": 16, "val": 8, "test": 6}  # images per class: 90 in all
CLASSES = ("circle", "square", "stripes")
CLASS_PRICES = {"circle": 20.0, "square": 50.0, "stripes": 80.0}


def write_split_folder(root: Path, seed: int = 7) -> Path:
    """root/SPLIT/CLASS/NNN.jpg (a few .png) of generated images of varied sizes."""
    from tests.conftest import draw_image

    rng = np.random.default_rng(seed)
    for split, count in SPLIT_SIZES.items():
        for kind in CLASSES:
            folder = root / split / kind
            folder.mkdir(parents=True)
            for i in range(count):
                size = (36 + (i * 7) % 20, 40 + (i * 5) % 24)
                suffix = "png" if i % 5 == 4 else "jpg"
                Image.fromarray(draw_image(kind, rng, size)).save(folder / f"{i:03d}.{suffix}")
    return root


@pytest.fixture(scope="session")
def split_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """90 generated images in 3 classes under train/, val/ and test/."""
    return write_split_folder(tmp_path_factory.mktemp("head_images"))


@pytest.fixture(scope="session")
def feature_cache(split_images: Path, vgg16_he_weights: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Cache:
    """VGG16 (He-normal weights) @ 32px, average-pooled 512-d features of ``split_images``."""
    import bottleneck

    out = tmp_path_factory.mktemp("head_caches") / "vgg16"
    return bottleneck.extract(str(split_images), backbone="vgg16", out=out,
                              weights=str(vgg16_he_weights), image_size=32, batch_size=16,
                              shard_size=40, progress=False)


@pytest.fixture(scope="session")
def spatial_cache(split_images: Path, vgg16_he_weights: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Cache:
    """The same images at ``block3_pool`` with ``--pooling none``: 4×4×256 per image."""
    import bottleneck

    out = tmp_path_factory.mktemp("head_caches") / "vgg16_spatial"
    return bottleneck.extract(str(split_images), backbone="vgg16", out=out,
                              weights=str(vgg16_he_weights), image_size=32, layer="block3_pool",
                              pooling="none", progress=False)


@pytest.fixture(scope="session")
def price_cache(feature_cache: Cache, tmp_path_factory: pytest.TempPathFactory) -> Cache:
    """A copy of ``feature_cache`` with synthetic prices (class price + noise) as targets."""
    from bottleneck.cache.targets import attach_targets, synthetic_prices

    root = tmp_path_factory.mktemp("head_caches") / "vgg16_prices"
    shutil.copytree(feature_cache.root, root)
    cache = open_cache(root)
    prices = synthetic_prices(cache, sigma=3.0, seed=0, class_prices=CLASS_PRICES)
    attach_targets(cache, prices, {"kind": "synthetic-prices", "class_prices": CLASS_PRICES})
    return open_cache(root)
