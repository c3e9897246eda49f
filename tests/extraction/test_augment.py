"""Augmented views survive the cache: seeded per (image, view), train only, grouped in CV."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bottleneck
from bottleneck.benching.run import fold_rows
from bottleneck.data.augment import Augment
from bottleneck.errors import UserError
from tests.conftest import he_normal_weights, write_class_folder

REPO = Path(__file__).resolve().parents[2]
OPS = "flip,rotate=0.1,zoom=0.1,translate=0.1,contrast=0.1"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    root = tmp_path_factory.mktemp("augment")
    images = write_class_folder(root / "images", per_class=5)
    weights = str(he_normal_weights("vgg16", 32, root / "w.weights.h5"))
    args = {"backbone": "vgg16", "weights": weights, "image_size": 32, "progress": False,
            "batch_size": 8, "shard_size": 6}
    return images, weights, args


def rows(cache) -> dict[tuple[str, int], np.ndarray]:
    data = cache.load(with_paths=True)
    views = cache.column("view") if cache.config.get("augment") else np.zeros(cache.rows, int)
    return {(p, int(v)): f for p, v, f in zip(data["paths"], views, data["features"],
                                              strict=True)}


def test_views_are_train_only_seeded_and_view0_is_the_plain_row(setup, tmp_path: Path) -> None:
    images, _, args = setup
    a = bottleneck.extract(str(images), out=tmp_path / "a", augment=3, augment_ops=OPS, **args)
    b = bottleneck.extract(str(images), out=tmp_path / "b", augment=3, augment_ops=OPS, **args)
    plain = bottleneck.extract(str(images), out=tmp_path / "plain", **args)
    assert a.config["augment"] == 3 and a.config["augment_ops"] == \
        "flip=horizontal,rotate=0.1,zoom=0.1,translate=0.1,contrast=0.1"
    ra, rb, rp = rows(a), rows(b), rows(plain)
    assert ra.keys() == rb.keys()
    for key in ra:  # the same views on every run
        np.testing.assert_array_equal(ra[key], rb[key])
    splits = dict(zip(a.column("paths"), a.column("split"), strict=True))
    for path, split in splits.items():
        expected = {0, 1, 2, 3} if split == "train" else {0}
        assert {v for p, v in ra if p == path} == expected
        np.testing.assert_allclose(ra[(path, 0)], rp[(path, 0)], rtol=1e-5, atol=1e-6)
    train = [p for p, s in splits.items() if s == "train"]
    assert not np.allclose(ra[(train[0], 1)], ra[(train[0], 0)])  # a view is not the image
    assert a.split_counts()["train"] == 4 * plain.split_counts()["train"]
    assert a.split_counts()["val"] == plain.split_counts()["val"]
    code = subprocess.run([sys.executable, "-m", "bottleneck.cli", "info", str(tmp_path / "a")],
                          capture_output=True, text=True, cwd=REPO)
    assert "augment    3 views per train image" in code.stdout


def test_views_are_the_same_after_a_kill_and_resume(setup, tmp_path: Path) -> None:
    images, weights, args = setup
    out = tmp_path / "cache"
    script = ("import os, signal, sys\nreal, n = os.replace, [0]\n"
              "def replace(a, b):\n    n[0] += 1\n    real(a, b)\n"
              "    if n[0] == 3: os.kill(os.getpid(), signal.SIGKILL)\n"
              "os.replace = replace\nfrom bottleneck.cli import main\nmain(sys.argv[1:])\n")
    command = [sys.executable, "-c", script, "extract", str(images), "-b", "vgg16",
               "--weights", weights, "--image-size", "32", "--shard-size", "6",
               "--batch-size", "8", "--augment", "2", "--augment-ops", OPS, "-q", "-o", str(out)]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    assert subprocess.run(command, env=env, cwd=REPO).returncode == -signal.SIGKILL
    resumed = bottleneck.extract(str(images), out=out, augment=2, augment_ops=OPS, **args)
    fresh = bottleneck.extract(str(images), out=tmp_path / "fresh", augment=2, augment_ops=OPS,
                               **args)
    rr, rf = rows(resumed), rows(fresh)
    assert rr.keys() == rf.keys()
    for key in rr:
        np.testing.assert_array_equal(rr[key], rf[key])


def test_cv_folds_never_split_an_image(setup, tmp_path: Path) -> None:
    images, _, args = setup
    cache = bottleneck.extract(str(images), out=tmp_path / "c", augment=2, augment_ops="flip",
                               **args)
    paths = np.concatenate([cache.column("paths", "train"), cache.column("paths", "val")])
    labels = np.concatenate([cache.column("labels", "train"), cache.column("labels", "val")])
    for train, val in fold_rows(labels, cache.split_counts()["train"], 3, 0, "classify",
                                paths):
        assert not set(paths[train]) & set(paths[val])
    from bottleneck.benching import bench

    report = bench([cache.root], heads=["logreg"], cv=3, out=tmp_path / "r", jobs=1)
    assert report["rows"][0]["runs"] == 3


def test_bad_ops_are_one_line() -> None:
    for text, message in (("spin=0.1", "unknown augment op 'spin'"),
                          ("rotate=abc", "needs a number"), ("zoom=2", "between 0 and 1"),
                          ("flip=diagonal", "flip=vertical")):
        with pytest.raises(UserError, match=message):
            Augment.parse(text)
