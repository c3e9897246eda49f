"""Every registered backbone: builds, and cached features equal the reference Keras pipeline."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

import bottleneck
from bottleneck.backbones import BACKBONES, get_backbone
from bottleneck.errors import UserError
from tests.conftest import he_normal_weights


def small_size(name: str) -> int:
    return max(get_backbone(name).min_size, 32)


def reference_features(folder: Path, name: str, size: int, weights: Path) -> dict[str, np.ndarray]:
    """The textbook pipeline: image_dataset_from_directory → preprocess_input → model → avg."""
    import keras

    backbone = get_backbone(name)
    model = backbone.build(str(weights), size)
    dataset = keras.utils.image_dataset_from_directory(
        folder, image_size=(size, size), interpolation="bilinear", shuffle=False,
        batch_size=8, label_mode=None, crop_to_aspect_ratio=False,
    )
    paths = [Path(p).relative_to(folder).as_posix() for p in dataset.file_paths]
    outputs = [np.asarray(model(backbone.preprocess_input(batch), training=False))
               for batch in dataset]
    pooled = np.concatenate(outputs).mean(axis=(1, 2))
    return dict(zip(paths, pooled, strict=True))


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_cached_features_match_the_reference_keras_pipeline(name, image_folder, tmp_path):
    size = small_size(name)
    weights = he_normal_weights(name, size, tmp_path / f"{name}.weights.h5")
    cache = bottleneck.extract(str(image_folder), backbone=name, weights=str(weights),
                               image_size=size, out=tmp_path / "cache", progress=False,
                               batch_size=7, shard_size=16)
    expected = reference_features(image_folder, name, size, weights)
    rows = 0
    for shard in cache.shard_paths:
        with h5py.File(shard, "r") as handle:
            for key, feature in zip(handle["paths"].asstr()[:], handle["features"][:],
                                    strict=True):
                ref = expected[key]
                cosine = feature @ ref / (np.linalg.norm(feature) * np.linalg.norm(ref))
                assert cosine >= 0.999, (name, key, cosine)
                rows += 1
    assert rows == len(expected) == 36
    assert cache.feature_shape == (get_backbone(name).dims,)


def test_unknown_backbone_names_the_choices():
    with pytest.raises(UserError, match="choose one of: .*mobilenet_v2"):
        get_backbone("resnet9000")


def test_size_below_minimum_is_refused():
    with pytest.raises(UserError, match="minimum of 75"):
        get_backbone("inception_v3").check_size(60)


def test_mobilenet_v2_accepts_the_tutorial_size_160():
    model = get_backbone("mobilenet_v2").build(None, 160)
    assert tuple(model.output.shape[1:]) == (5, 5, 1280)
