"""What the cache guards: only its own files are ever replaced, one writer at a time,
targets that survive a re-run and are checked when read."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import bottleneck
from bottleneck.cache import open_cache
from bottleneck.errors import UserError
from bottleneck.storage.lock import LOCK_FILE, cache_lock
from tests.conftest import write_class_folder

ARGS = {"backbone": "vgg16", "weights": "none", "image_size": 32, "progress": False}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_class_folder(tmp_path_factory.mktemp("integrity"), per_class=4)


def test_overwrite_deletes_only_what_the_cache_recorded(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    bottleneck.extract(str(images), out=out, **ARGS)
    (out / "my_notes.txt").write_text("mine")
    bottleneck.extract(str(images), out=out, pooling="max", overwrite=True, **ARGS)
    assert (out / "my_notes.txt").read_text() == "mine"
    assert open_cache(out).config["pooling"] == "max"


def test_a_foreign_manifest_is_not_a_cache(images: Path, tmp_path: Path) -> None:
    app = tmp_path / "webapp"
    app.mkdir()
    (app / "manifest.json").write_text(json.dumps({"name": "app", "icons": []}))
    with pytest.raises(UserError, match="not empty and is not a bottleneck cache"):
        bottleneck.extract(str(images), out=app, overwrite=True, **ARGS)
    assert sorted(p.name for p in app.iterdir()) == ["manifest.json"]


def test_a_second_writer_refuses_while_the_first_holds_the_lock(images: Path,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "cache"
    out.mkdir()
    with cache_lock(out, "extract"):
        with pytest.raises(UserError, match=f"being written by extract \\(pid {os.getpid()}"):
            bottleneck.extract(str(images), out=out, **ARGS)
        assert (out / LOCK_FILE).is_file()
    assert not (out / LOCK_FILE).exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (out / LOCK_FILE).write_text(json.dumps({"pid": int(dead.stdout), "action": "extract",
                                             "host": socket.gethostname()}))
    cache = bottleneck.extract(str(images), out=out, **ARGS)
    assert cache.rows == 12 and not (out / LOCK_FILE).exists()


def test_targets_survive_a_rerun_and_are_checked_when_read(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    bottleneck.extract(str(images), out=out, **ARGS)
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"circle": 10, "square": 20, "stripes": 30}))
    from bottleneck.cache.targets import set_targets

    record = set_targets(out, synthetic=True, sigma=1.0, seed=3, class_prices_file=prices)
    before = open_cache(out).load(with_paths=True)
    cache = bottleneck.extract(str(images), out=out, **ARGS)  # the same command again
    assert cache.manifest.targets["sha256"] == record["sha256"]
    after = cache.load(with_paths=True)
    np.testing.assert_array_equal(after["targets"], before["targets"])
    assert [p.name for p in out.glob("targets*.h5")] == [record["file"]]
    with h5py.File(out / record["file"], "r+") as handle:  # someone edits the targets
        handle["targets"][0] = 1e6
    with pytest.raises(UserError, match="changed since it was attached"):
        open_cache(out).load("train")
    with pytest.raises(UserError, match="changed since it was attached.*bottleneck targets"):
        open_cache(out).verify()


def test_images_below_a_dot_folder_are_found(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / ".keras" / "datasets" / "shapes", per_class=2)
    (root / "circle" / ".DS_Store").write_text("hidden below the root: skipped")
    cache = bottleneck.extract(str(root), out=tmp_path / "cache", **ARGS)
    assert cache.rows == 6


def test_npz_rgba_drops_alpha_as_pillow_does(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (8, 36, 36, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (8, 36, 36, 1), dtype=np.uint8)
    labels = np.array([0, 1] * 4)
    for name, pixels in (("rgb", rgb), ("rgba", np.concatenate([rgb, alpha], -1))):
        (tmp_path / name).mkdir()
        np.savez(tmp_path / name / "shapes.npz", images=pixels, labels=labels)  # same keys
    a = bottleneck.extract(str(tmp_path / "rgb" / "shapes.npz"), out=tmp_path / "a", **ARGS)
    b = bottleneck.extract(str(tmp_path / "rgba" / "shapes.npz"), out=tmp_path / "b", **ARGS)
    np.testing.assert_array_equal(a.load()["features"], b.load()["features"])


def test_a_damaged_manifest_of_ours_names_the_way_out(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    bottleneck.extract(str(images), out=out, **ARGS)
    text = (out / "manifest.json").read_text()
    (out / "manifest.json").write_text(text[: len(text) // 2])
    for action in (lambda: open_cache(out),
                   lambda: bottleneck.extract(str(images), out=out, overwrite=True, **ARGS)):
        with pytest.raises(UserError, match="damaged.*new --out, or delete"):
            action()
    shutil.rmtree(out)
