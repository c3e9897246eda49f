"""Stale features: an image replaced in place is recomputed on the next run (its shard alone),
a dataset copied, touched or moved (same bytes, new times or place) recomputes nothing, and
``info --verify`` names rows whose source changed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cache.inputs import SUFFIX, read_inputs
from bottleneck.cli import main

SHARD_SIZE = 10


def extract(photos: Path, out: Path, weights: Path) -> bottleneck.Cache:
    return bottleneck.extract(str(photos), backbone="vgg16", weights=str(weights),
                              image_size=32, out=out, shard_size=SHARD_SIZE, progress=False)


@pytest.fixture(scope="module")
def made(image_folder, vgg16_he_weights, tmp_path_factory) -> tuple[Path, Path]:
    """Images and their cache, made once; each test works on a copy (same bytes and times)."""
    root = tmp_path_factory.mktemp("fresh")
    photos = root / "photos"
    shutil.copytree(image_folder, photos)
    extract(photos, root / "cache", vgg16_he_weights)
    return photos, root / "cache"


@pytest.fixture
def copy(made, tmp_path) -> tuple[Path, Path]:
    photos, cache = tmp_path / "photos", tmp_path / "cache"
    shutil.copytree(made[0], photos)  # copy2: the same mtimes, like cp -a
    shutil.copytree(made[1], cache)
    return photos, cache


def shard_times(cache: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in cache.glob("shard-*.h5")}


def rows(cache: Path) -> dict[str, np.ndarray]:
    found = {}
    for shard in json.loads((cache / "manifest.json").read_text())["shards"]:
        with h5py.File(cache / shard["file"], "r") as handle:
            found |= dict(zip(handle["paths"].asstr()[:], handle["features"][:], strict=True))
    return found


def shard_of(cache: Path, key: str) -> str:
    manifest = json.loads((cache / "manifest.json").read_text())
    for shard in manifest["shards"]:
        with h5py.File(cache / shard["file"], "r") as handle:
            if key in set(handle["paths"].asstr()[:]):
                return shard["file"]
    raise KeyError(key)


def test_an_image_replaced_in_place_recomputes_exactly_its_shard(copy, vgg16_he_weights,
                                                                 capsys):
    photos, cache = copy
    before, features = shard_times(cache), rows(cache)
    changed = "circle/001.jpg"
    stale = shard_of(cache, changed)
    (photos / changed).write_bytes((photos / "square" / "000.jpg").read_bytes())
    bottleneck.extract(str(photos), backbone="vgg16", weights=str(vgg16_he_weights),
                       image_size=32, out=cache, shard_size=SHARD_SIZE, progress=True)
    assert f"1 image changed since cached, e.g. {changed}" in capsys.readouterr().err
    after = shard_times(cache)
    assert stale not in after  # recomputed under a new name, its other images with it
    assert {name: t for name, t in after.items() if name in before} == \
        {name: t for name, t in before.items() if name != stale}  # the others untouched
    assert not (cache / stale.replace(".h5", SUFFIX)).exists()
    now = rows(cache)
    assert set(now) == set(features)
    np.testing.assert_allclose(now[changed], features["square/000.jpg"], rtol=1e-5, atol=1e-5)
    assert not np.allclose(now[changed], features[changed])
    for key in set(features) - {changed}:
        np.testing.assert_allclose(now[key], features[key], rtol=1e-5, atol=1e-5)


def test_a_touched_dataset_recomputes_nothing_and_records_the_new_times(copy,
                                                                       vgg16_he_weights):
    photos, cache = copy
    before = shard_times(cache)
    later = 2_000_000_000 * 10**9  # new times on every file, the same bytes
    for path in photos.rglob("*.*"):
        os.utime(path, ns=(later, later))
    result = extract(photos, cache, vgg16_he_weights)
    assert shard_times(cache) == before and result.rows == 36
    for record in result.manifest.shards:  # the next run's cheap check passes
        recorded = read_inputs(cache, record.file, record.inputs_sha256)
        assert {identity.mtime_ns for identity in recorded.values()} == {later}


@pytest.mark.parametrize("how", ["renamed", "copied without times"])
def test_a_moved_dataset_recomputes_nothing(copy, vgg16_he_weights, how):
    photos, cache = copy
    before = shard_times(cache)
    moved = photos.with_name("elsewhere")
    if how == "renamed":
        photos.rename(moved)
    else:
        shutil.copytree(photos, moved, copy_function=shutil.copyfile)  # new mtimes
        shutil.rmtree(photos)
    result = extract(moved, cache, vgg16_he_weights)
    assert shard_times(cache) == before and result.rows == 36
    assert result.manifest.source["root"] == str(moved.resolve())


def test_a_cache_made_before_sidecars_keeps_resuming_until_its_source_moves(
        copy, vgg16_he_weights):
    photos, cache = copy
    extract(photos, cache, vgg16_he_weights)  # the manifest records the copy's place
    for sidecar in cache.glob(f"*{SUFFIX}"):
        sidecar.unlink()
    before = shard_times(cache)
    extract(photos, cache, vgg16_he_weights)
    assert shard_times(cache) == before  # nothing to check against: kept, as before
    moved = photos.rename(photos.with_name("elsewhere"))
    extract(moved, cache, vgg16_he_weights)
    assert not set(shard_times(cache)) & set(before)  # moved and unverifiable: recomputed
    assert len(list(cache.glob(f"*{SUFFIX}"))) == len(shard_times(cache))


def test_info_verify_names_the_rows_whose_source_changed(copy, vgg16_he_weights):
    photos, cache = copy
    extract(photos, cache, vgg16_he_weights)  # the manifest records the copy's place
    result = CliRunner().invoke(main, ["info", str(cache), "--verify"])
    assert result.exit_code == 0
    assert "sources    every source file the rows were computed from is unchanged" in \
        result.stdout
    (photos / "square" / "003.png").write_bytes((photos / "circle" / "003.png").read_bytes())
    (photos / "stripes" / "000.jpg").unlink()
    result = CliRunner().invoke(main, ["info", str(cache), "--verify"])
    assert result.exit_code == 0, result.output
    assert "1 changed (e.g. square/003.png), 1 gone (e.g. stripes/000.jpg)" in result.stdout
