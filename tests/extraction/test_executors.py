"""Executors and incremental caches: Ray gives the local features, survives a killed worker;
a grown folder computes only its new images; a failing shard is recorded and retried."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import bottleneck
from bottleneck.data import FolderSource
from bottleneck.errors import PartialFailure
from tests.conftest import write_class_folder
from tests.remote_fixtures import s3_fixture, s3_server_fixture  # noqa: F401 - fixtures

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

ARGS = {"backbone": "vgg16", "image_size": 32, "progress": False, "batch_size": 8}


@pytest.fixture(scope="module")
def cluster():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    from tests.conftest import he_normal_weights

    return str(he_normal_weights("vgg16", 32, tmp_path_factory.mktemp("w") / "v.weights.h5"))


def by_path(cache) -> tuple[np.ndarray, np.ndarray]:
    data = cache.load(with_paths=True)
    order = np.argsort(data["paths"])
    return data["paths"][order], data["features"][order]


def assert_same_rows(a, b) -> None:
    paths_a, feats_a = by_path(a)
    paths_b, feats_b = by_path(b)
    np.testing.assert_array_equal(paths_a, paths_b)
    assert len(set(paths_a)) == len(paths_a)  # every image exactly once
    scale = np.abs(feats_b).max()
    assert np.abs(feats_a - feats_b).max() <= 1e-5 * scale


def test_ray_features_equal_local_ones(cluster, weights, tmp_path: Path) -> None:
    images = write_class_folder(tmp_path / "images", per_class=6)
    local = bottleneck.extract(str(images), weights=weights, shard_size=5,
                               out=tmp_path / "local", **ARGS)
    remote = bottleneck.extract(str(images), weights=weights, shard_size=5,
                                out=tmp_path / "ray", executor="ray", workers=2, **ARGS)
    assert remote.manifest.config == local.manifest.config
    assert [s.inputs_sha256 for s in remote.manifest.shards] == \
        [s.inputs_sha256 for s in local.manifest.shards]
    assert_same_rows(remote, local)


def test_ray_workers_import_the_package_wherever_the_command_runs(weights, tmp_path: Path):
    """From a folder holding a folder named bottleneck/ (here one that cannot be imported),
    with relative paths: Ray's workers still import the installed package, and none of Ray's
    own log lines reaches the terminal."""
    import subprocess
    import sys

    here = tmp_path / "parent"
    (here / "bottleneck").mkdir(parents=True)
    (here / "bottleneck" / "__init__.py").write_text("raise ImportError('the decoy')\n")
    write_class_folder(here / "images", per_class=2, classes=("circle", "square"))
    env = dict(os.environ, PYTHONPATH=str(Path(bottleneck.__file__).parents[1]))
    run = subprocess.run(
        [sys.executable, "-P", "-c", "from bottleneck.cli import main; main()", "extract",
         "images", "-b", "vgg16", "--weights", weights, "--image-size", "32", "-o", "cache",
         "--shard-size", "2", "--executor", "ray", "--workers", "1", "-q"],
        cwd=here, env=env, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "cached 4 images" in run.stdout
    assert run.stderr.strip() == "", run.stderr[-3000:]
    from bottleneck.cache import Manifest

    assert [s.status for s in Manifest.load(here / "cache").shards] == ["done", "done"]


def test_local_worker_processes_give_the_one_process_features(weights, tmp_path: Path) -> None:
    """--workers N on the local executor: one process per device (here, CPU processes), each
    with its own feature model; the driver alone records the shards."""
    images = write_class_folder(tmp_path / "images", per_class=5)
    single = bottleneck.extract(str(images), weights=weights, shard_size=4,
                                out=tmp_path / "one", **ARGS)
    several = bottleneck.extract(str(images), weights=weights, shard_size=4,
                                 out=tmp_path / "two", workers=2, **ARGS)
    assert_same_rows(several, single)
    assert [s.inputs_sha256 for s in several.manifest.shards] == \
        [s.inputs_sha256 for s in single.manifest.shards]
    assert all(s.done and s.runtime["backend"] == "tensorflow" for s in several.manifest.shards)


def _kill_first_worker(stop: threading.Event, killed: list[int]) -> None:
    import psutil

    while not stop.is_set() and not killed:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if "ray::ShardWorker.run" in cmdline:
                proc.kill()  # SIGKILL, mid-shard
                killed.append(proc.info["pid"])
                return
        time.sleep(0.05)


def test_a_killed_worker_is_survived(cluster, weights, tmp_path: Path) -> None:
    images = write_class_folder(tmp_path / "images", per_class=8)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_first_worker, args=(stop, killed))
    killer.start()
    try:
        cache = bottleneck.extract(str(images), weights=weights, shard_size=4,
                                   out=tmp_path / "ray", executor="ray", workers=2, **ARGS)
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was seen running a shard"
    local = bottleneck.extract(str(images), weights=weights, shard_size=4,
                               out=tmp_path / "local", **ARGS)
    assert_same_rows(cache, local)
    assert not [p for p in (tmp_path / "ray").iterdir() if ".tmp-" in p.name]


def test_a_grown_folder_computes_only_its_new_images(weights, tmp_path: Path) -> None:
    images = write_class_folder(tmp_path / "images", per_class=6)
    out = tmp_path / "cache"
    first = bottleneck.extract(str(images), weights=weights, shard_size=4, out=out, **ARGS)
    before = {s.file: (out / s.file).stat() for s in first.manifest.shards}
    write_class_folder(tmp_path / "more", per_class=2, seed=9)
    for kind in ("circle", "square"):
        for path in (tmp_path / "more" / kind).iterdir():
            path.rename(images / kind / f"new_{path.name}")
    grown = bottleneck.extract(str(images), weights=weights, shard_size=4, out=out, **ARGS)
    kept = [s for s in grown.manifest.shards if s.file in before]
    assert len(kept) == len(before)  # every old shard kept: the same files, untouched
    for shard in kept:
        now = (out / shard.file).stat()
        assert (now.st_ino, now.st_mtime_ns) == (before[shard.file].st_ino,
                                                 before[shard.file].st_mtime_ns)
    new = [s for s in grown.manifest.shards if s.file not in before]
    assert sum(s.inputs for s in new) == 4 and grown.rows == 22
    reference = bottleneck.extract(str(images), weights=weights, shard_size=4,
                                   out=tmp_path / "fresh", **ARGS)
    assert_same_rows(grown, reference)
    victim = sorted((images / "square").iterdir())[0]  # an image is deleted
    victim.unlink()
    shrunk = bottleneck.extract(str(images), weights=weights, shard_size=4, out=out, **ARGS)
    assert shrunk.rows == 21 and victim.relative_to(images).as_posix() not in \
        set(shrunk.load(with_paths=True)["paths"])
    assert len([s for s in shrunk.manifest.shards if s.file in before]) == len(before) - 1


class FlakyDisk(FolderSource):
    """A folder whose storage fails while one shard's images are read (a real OSError)."""

    def load_image(self, item, decode_size=None, data=None):
        if item.key.endswith("square/001.jpg"):
            raise OSError("Input/output error reading the network drive")
        return super().load_image(item, decode_size, data)


def test_a_failing_shard_is_recorded_and_the_others_go_on(weights, tmp_path: Path) -> None:
    images = write_class_folder(tmp_path / "images", per_class=4)
    out = tmp_path / "cache"
    with pytest.raises(PartialFailure, match=r"1 shard\(s\) failed.*Input/output error"):
        bottleneck.extract(FlakyDisk(images), weights=weights, shard_size=3, out=out, **ARGS)
    from bottleneck.cache import Manifest

    manifest = Manifest.load(out)
    assert [s.status for s in manifest.shards].count("failed") == 1
    assert [s.status for s in manifest.shards].count("done") == len(manifest.shards) - 1
    done = {s.file: (out / s.file).stat().st_mtime_ns for s in manifest.shards if s.done}
    cache = bottleneck.extract(str(images), weights=weights, shard_size=3, out=out, **ARGS)
    assert cache.rows == 12
    assert all((out / f).stat().st_mtime_ns == t for f, t in done.items())


class _SmallDevice:
    """A real feature model on a device that holds at most 4 images: larger batches raise
    the error a GPU raises when it runs out of memory."""

    def __init__(self, extractor) -> None:
        self.inner, self.calls = extractor, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def run(self, images):
        self.calls.append(len(images))
        if len(images) > 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner.run(images)


def test_a_batch_that_runs_out_of_device_memory_is_retried_at_half_size(weights, tmp_path):
    from bottleneck.data import open_source
    from bottleneck.extraction import ExtractConfig, FeatureExtractor
    from bottleneck.extraction.plan import plan_shards
    from bottleneck.extraction.shard import run_shard

    images = write_class_folder(tmp_path / "images", per_class=6)
    source = open_source(str(images))
    extractor = FeatureExtractor(ExtractConfig("vgg16", weights, image_size=32))
    plan = plan_shards(source.items(), 100)[0]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    small = _SmallDevice(extractor)
    result = run_shard(source, small, plan, tmp_path / "a", batch_size=16)
    reference = run_shard(source, extractor, plan, tmp_path / "b", batch_size=16)
    assert result.batch_size == 4 and reference.batch_size == 16
    assert small.calls[:3] == [16, 8, 4] and max(small.calls[3:]) <= 4
    import h5py

    with h5py.File(tmp_path / "a" / plan.file) as a, h5py.File(tmp_path / "b" / plan.file) as b:
        np.testing.assert_allclose(a["features"][:], b["features"][:], rtol=1e-5, atol=1e-5)


def test_ray_workers_upload_their_shards_to_a_url(cluster, weights, s3, monkeypatch,
                                                  tmp_path: Path) -> None:
    """--executor ray into s3://: each worker writes its shards in a temp folder of its own and
    uploads them; the driver fetches them back (sha256-checked) and alone writes the manifest."""
    import json

    from bottleneck.cache import remote as remote_cache

    options = s3.options() | {"key": "testing", "secret": "testing"}  # workers' credentials
    monkeypatch.setenv("BOTTLENECK_STORAGE_OPTIONS", json.dumps(options))
    adopted = []
    real_adopt = remote_cache.RemoteOutput.adopt

    def adopt(self, folder, shard_file, sha256):  # counts what the workers uploaded
        adopted.append(shard_file)
        return real_adopt(self, folder, shard_file, sha256)

    monkeypatch.setattr(remote_cache.RemoteOutput, "adopt", adopt)
    images = write_class_folder(tmp_path / "images", per_class=6)
    url = f"s3://{s3.new_bucket()}/cache"
    made = bottleneck.extract(str(images), weights=weights, shard_size=5, out=url,
                              executor="ray", workers=2, **ARGS)
    assert sorted(adopted) == [s.file for s in made.manifest.shards]
    local = bottleneck.extract(str(images), weights=weights, shard_size=5,
                               out=tmp_path / "local", **ARGS)
    assert_same_rows(bottleneck.open_cache(url), local)
