"""--fast-decode: JPEGs decoded at a DCT scale never below the image size, recorded in the
manifest, done alike by extraction and predict; other formats and array sources unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf  # the reference decoder
from PIL import Image

import bottleneck
from bottleneck.data import images
from bottleneck.extraction import ExtractConfig, FeatureExtractor
from tests.conftest import draw_image
from tests.tf_reference import decode_file_tf


def photo(rng: np.random.Generator, kind: str, size: tuple[int, int] = (900, 1200)) -> np.ndarray:
    """A large picture with the class's shape, drawn small and enlarged, plus fine noise."""
    small = draw_image(kind, rng, (size[0] // 10, size[1] // 10))
    big = np.asarray(Image.fromarray(small).resize(size[::-1], Image.BILINEAR), dtype=float)
    return (big + rng.normal(0, 6, big.shape)).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """train/ and val/, 2 classes, 4 + 1 photos of 1200×900 each (JPEG), plus one PNG."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    for kind in ("circle", "stripes"):
        for split, count in (("train", 4), ("val", 1)):
            (root / split / kind).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(photo(rng, kind)).save(root / split / kind / f"{i}.jpg",
                                                       quality=90)
    Image.fromarray(photo(rng, "circle")).save(root / "train" / "circle" / "9.png")
    return root


@pytest.mark.parametrize("size, scale, shape", [
    (32, 8, (113, 150)), (112, 8, (113, 150)), (113, 4, (225, 300)), (224, 4, (225, 300)),
    (226, 2, (450, 600)), (450, 2, (450, 600)), (451, 1, (900, 1200)), (2000, 1, (900, 1200)),
])
def test_jpeg_is_decoded_at_the_smallest_scale_that_keeps_the_size(photo_folder, size, scale,
                                                                   shape):
    path = photo_folder / "train" / "circle" / "0.jpg"
    assert images.dct_scale(900, 1200, size) == scale
    via_tf = decode_file_tf(tf.constant(str(path)), size).numpy()
    ours = images.decode_file(path, size)
    assert via_tf.shape == (*shape, 3) and np.array_equal(ours, via_tf)
    assert min(shape) >= min(size, 900)  # never below the target (unless the photo is)


def test_without_fast_decode_nothing_changes(photo_folder):
    path = str(photo_folder / "train" / "circle" / "0.jpg")
    full = tf.io.decode_image(tf.io.read_file(path), channels=3).numpy()
    assert np.array_equal(decode_file_tf(tf.constant(path)).numpy(), full)
    assert np.array_equal(images.decode_file(path), full)


def test_other_formats_decode_at_full_size(photo_folder):
    png = photo_folder / "train" / "circle" / "9.png"
    assert decode_file_tf(tf.constant(str(png)), 32).shape == (900, 1200, 3)
    assert images.decode_file(png, 32).shape == (900, 1200, 3)


def test_resized_pixels_stay_close_to_the_full_decode(photo_folder):
    path = photo_folder / "train" / "stripes" / "1.jpg"
    full = images.load_image(path, 96)
    fast = images.load_image(path, 96, fast_decode=True)
    assert not np.array_equal(full, fast)
    # the photo carries pixel noise of sigma 6 that the full decode's point-sampling resize
    # keeps and the 1/8 DCT scale averages away: differences stay about that size
    assert np.abs(full - fast).mean() < 8.0


@pytest.fixture(scope="module")
def fast_and_default(photo_folder, vgg16_he_weights, tmp_path_factory):
    root = tmp_path_factory.mktemp("fast")
    return {fast: bottleneck.extract(str(photo_folder), backbone="vgg16",
                                     weights=str(vgg16_he_weights), image_size=32,
                                     out=root / str(fast), fast_decode=fast, progress=False)
            for fast in (False, True)}


def test_fast_decode_is_recorded_in_the_manifest(fast_and_default):
    fast = json.loads((fast_and_default[True].root / "manifest.json").read_text())["config"]
    default = json.loads((fast_and_default[False].root / "manifest.json").read_text())["config"]
    assert fast["fast_decode"] is True and default["fast_decode"] is False
    assert "fast_decode" in fast["preprocessing"] and "fast_decode" not in default["preprocessing"]


def test_fast_features_are_close_to_the_default_and_predict_decodes_the_same_way(
        fast_and_default, photo_folder, tmp_path):
    fast = fast_and_default[True].load("train", with_paths=True)
    default = fast_and_default[False].load("train", with_paths=True)
    assert list(fast["paths"]) == list(default["paths"])
    a, b = fast["features"], default["features"]
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() > 0.99 and not np.array_equal(a, b)
    # train/serve: the single-file path (predict's) reproduces the cached fast rows
    extractor = FeatureExtractor(ExtractConfig.from_dict(fast_and_default[True].config))
    assert extractor.config.fast_decode
    served = extractor(np.stack([images.load_image(photo_folder / p, 32, fast_decode=True)
                                 for p in fast["paths"]]))
    np.testing.assert_allclose(served, a, rtol=1e-5, atol=1e-5)
    bottleneck.fit(fast_and_default[True], "logreg", tmp_path / "model", progress=False)
    predicted = bottleneck.predict(tmp_path / "model", [photo_folder / p for p in fast["paths"]])
    head = bottleneck.load_model(tmp_path / "model").head
    expected = head.predict_proba(a)[np.arange(len(a)), head.predict(a)]
    np.testing.assert_allclose([r["probability"] for r in predicted], expected, atol=1e-4)


def test_fast_decode_does_nothing_to_array_sources(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", images=rng.integers(0, 255, (6, 40, 40, 3), dtype=np.uint8),
             labels=np.array([0, 1] * 3))
    caches = [bottleneck.extract(str(tmp_path / "a.npz"), backbone="vgg16", weights="none",
                                 image_size=32, out=tmp_path / str(fast), fast_decode=fast,
                                 progress=False) for fast in (False, True)]
    assert np.array_equal(caches[0].load("train")["features"],
                          caches[1].load("train")["features"])
