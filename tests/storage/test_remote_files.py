"""The read-through cache: keyed by sha256, bounded in size (least recently used first), off
with ``none``; a multi-layer extract into a URL gives one cache per layer there."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

import bottleneck
from bottleneck.errors import UserError
from bottleneck.storage import remote_files
from bottleneck.storage.location import resolve
from tests.conftest import write_class_folder


def test_blobs_are_verified_shared_and_bounded(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BOTTLENECK_LOCAL_CACHE", str(tmp_path / "lc"))
    monkeypatch.setenv("BOTTLENECK_LOCAL_CACHE_GB", str(2500 / (1 << 30)))  # 2,500 bytes
    remote = resolve(f"memory://blobs-{tmp_path.name}")
    payloads = {f"f{i}": os.urandom(1000) for i in range(4)}
    for name, data in payloads.items():
        remote.fs.pipe_file(remote.child(name), data)
    shas = {name: hashlib.sha256(data).hexdigest() for name, data in payloads.items()}
    for name in payloads:  # one at a time: the oldest are evicted
        got = remote_files.fetch(remote, {name: shas[name]}, tmp_path / "view")
        assert got[name].read_bytes() == payloads[name]
        time.sleep(0.01)
    kept = {p.name for p in (tmp_path / "lc" / "blobs").glob("*/*")}
    assert kept == {shas["f2"], shas["f3"]}
    with pytest.raises(UserError, match="sha256 mismatch"):
        remote_files.fetch(remote, {"f0": shas["f1"]}, tmp_path / "view2")
    assert shas["f1"] not in {p.name for p in (tmp_path / "lc" / "blobs").glob("*/*")}


def test_a_warm_fetch_sends_no_request_and_renames_nothing(monkeypatch, tmp_path: Path) -> None:
    """Cached blobs are trusted as they are (they appear under their sha256 only once
    verified, in a folder of ours); links already naming them stay; a blob gone from the
    cache, or a file whose recorded sha256 changed, is fetched (and verified) again."""
    monkeypatch.setenv("BOTTLENECK_LOCAL_CACHE", str(tmp_path / "lc"))
    remote = resolve(f"memory://warm-{tmp_path.name}")
    payloads = {f"s{i}.h5": os.urandom(500) for i in range(3)}
    for name, data in payloads.items():
        remote.fs.pipe_file(remote.child(name), data)
    shas = {name: hashlib.sha256(data).hexdigest() for name, data in payloads.items()}
    gets: list[str] = []
    real_get = remote.fs.get_file
    monkeypatch.setattr(remote.fs, "get_file", lambda src, dst, **kw: (
        gets.append(src), real_get(src, dst, **kw))[1])
    view = tmp_path / "view"
    remote_files.fetch(remote, shas, view)
    assert len(gets) == 3
    links = {p.name: p.lstat().st_ino for p in view.iterdir()}
    remote_files.fetch(remote, shas, view)
    assert len(gets) == 3 and {p.name: p.lstat().st_ino for p in view.iterdir()} == links
    remote_files.blob_path(shas["s1.h5"]).unlink()  # evicted: fetched and verified again
    got = remote_files.fetch(remote, shas, view)
    assert gets[3:] == [remote.child("s1.h5")] and got["s1.h5"].read_bytes() == payloads["s1.h5"]
    new = os.urandom(500)  # rewritten under the same name: the view names the new blob
    remote.fs.pipe_file(remote.child("s2.h5"), new)
    got = remote_files.fetch(remote, shas | {"s2.h5": hashlib.sha256(new).hexdigest()}, view)
    assert got["s2.h5"].read_bytes() == new and len(gets) == 5


def test_no_local_cache_uses_a_temporary_folder(monkeypatch) -> None:
    monkeypatch.setenv("BOTTLENECK_LOCAL_CACHE", "none")
    root = remote_files.local_cache_root()
    assert root.is_dir() and "bottleneck-remote-" in root.name
    assert remote_files.local_cache_root() == root


def test_several_layers_into_a_url(monkeypatch, vgg16_he_weights, tmp_path: Path) -> None:
    monkeypatch.setenv("BOTTLENECK_LOCAL_CACHE", str(tmp_path / "lc"))
    images = write_class_folder(tmp_path / "images", per_class=3)
    url = f"memory://layers-{tmp_path.name}/vgg"
    made = bottleneck.extract(str(images), "vgg16", out=url, weights=str(vgg16_he_weights),
                              image_size=32, layer=["block4_pool", "block5_pool"],
                              lock=False, progress=False, shard_size=4)
    assert {name: cache.where for name, cache in made.items()} == {
        "block4_pool": f"{url}/block4_pool", "block5_pool": f"{url}/block5_pool"}
    for name in made:
        cache = bottleneck.open_cache(f"{url}/{name}")
        assert cache.rows == 9 and cache.config["layer"] == name
