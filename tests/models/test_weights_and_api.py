"""predict compares the weights file it is given with the one the cache recorded; errors
from the Python API name the keyword argument, not only the CLI flag."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import bottleneck
from bottleneck.cache import Cache
from bottleneck.errors import UserError
from tests.conftest import he_normal_weights, write_class_folder

pytest_plugins = ["tests.heads_fixtures"]


def test_predict_refuses_a_weights_file_that_changed(tmp_path: Path) -> None:
    images = write_class_folder(tmp_path / "images", per_class=4)
    weights = he_normal_weights("vgg16", 32, tmp_path / "w.weights.h5", seed=1)
    cache = bottleneck.extract(str(images), backbone="vgg16", weights=str(weights),
                               image_size=32, out=tmp_path / "cache", progress=False)
    model = tmp_path / "model"
    bottleneck.fit(cache, "logreg", model, progress=False)
    assert bottleneck.predict(model, [images / "circle" / "000.jpg"])[0]["class"]
    recorded = cache.config["weights_sha256"]
    he_normal_weights("vgg16", 32, weights, seed=2)  # same path, other weights
    with pytest.raises(UserError, match=f"differs from the one the cache was built with.*"
                                        f"{recorded[:12]}"):
        bottleneck.predict(model, [images / "circle" / "000.jpg"])


def test_api_errors_name_the_keyword(feature_cache: Cache, tmp_path: Path,
                                     image_folder: Path) -> None:
    out = tmp_path / "m"
    bottleneck.fit(feature_cache, "logreg", out, progress=False)
    with pytest.raises(UserError, match=r"overwrite=True"):
        bottleneck.fit(feature_cache, "logreg", out, progress=False)
    copy = tmp_path / "cache"
    shutil.copytree(feature_cache.root, copy)
    with pytest.raises(UserError, match=r"overwrite=True"):
        bottleneck.extract(str(image_folder), backbone="vgg16", weights="none", image_size=48,
                           out=copy, progress=False)  # another config into the same --out
