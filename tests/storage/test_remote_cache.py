"""Caches at a URL, on a real S3 HTTP server on loopback (moto's emulator): extract uploads
whole verified shards and the manifest last, under a conditional lock; readers fetch shards
in parallel through a sha256-keyed local cache and refuse an altered one; a store that goes
away mid-run ends in one line and the re-run resumes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cli import main
from bottleneck.errors import UserError
from bottleneck.storage import remote_files
from bottleneck.storage.location import resolve
from bottleneck.storage.remote_lock import remote_lock
from tests.conftest import write_class_folder

ARGS = {"backbone": "vgg16", "image_size": 32, "progress": False, "batch_size": 8,
        "shard_size": 4}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_class_folder(tmp_path_factory.mktemp("images"), per_class=4)


def s3fs_of(server):
    import s3fs

    return s3fs.S3FileSystem(**server.options())


def blobs(root: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in (root / "blobs").glob("*/*")}


def test_extract_info_targets_fit_predict_report_export_on_s3(
        s3, images, vgg16_he_weights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"s3://{s3.new_bucket()}/caches/vgg"
    local = bottleneck.extract(str(images), weights=str(vgg16_he_weights),
                               out=tmp_path / "local", **ARGS)
    run = CliRunner().invoke(main, [
        "--storage-option", f"endpoint_url={s3.endpoint}", "extract", str(images), "-b",
        "vgg16", "--image-size", "32", "--weights", str(vgg16_he_weights), "--shard-size", "4",
        "-o", url, "-q"])
    assert run.exit_code == 0, run.output
    assert f"features in {url} " in run.output
    fs = s3fs_of(s3)
    names = sorted(p.rsplit("/", 1)[1] for p in fs.ls(url, refresh=True))
    assert names == ["manifest.json", *[f"shard-0000{i}{ext}" for i in range(3)
                                        for ext in (".h5", ".inputs.json")]]  # no lock left
    manifest = json.loads(fs.cat_file(f"{url}/manifest.json"))
    assert manifest["complete"] and manifest["rows"] == 12
    assert s3.endpoint not in json.dumps(manifest) and "testing" not in json.dumps(manifest)

    cache = bottleneck.open_cache(url)
    assert cache.where == url and cache.rows == 12
    np.testing.assert_array_equal(cache.load()["features"], local.load()["features"])
    cached = blobs(tmp_path / "local-cache")
    assert len(cached) == 3
    view = {p.name: p.lstat().st_ino for p in cache.root.iterdir()}
    again = bottleneck.open_cache(url)  # the second read fetches no shard again and leaves
    assert blobs(tmp_path / "local-cache") == cached  # the view as it was (renames nothing)
    assert again.root == cache.root
    assert {p.name: p.lstat().st_ino for p in again.root.iterdir()} == view
    assert again.load("train")["features"].shape[0] == cache.split_counts()["train"]

    monkeypatch.delenv("BOTTLENECK_STORAGE_OPTIONS")  # the command's own options now
    run = CliRunner().invoke(main, ["info", url, "--verify", "--json", "--storage-option",
                                    f"endpoint_url={s3.endpoint}"])
    assert run.exit_code == 0, run.output
    summary = json.loads(run.output)
    assert summary["cache"] == url and summary["verification"]["all_sha256_equal"]
    assert summary["verification"]["sources"]["checked"] == 12  # the sidecars came along
    prices = tmp_path / "prices.json"
    prices.write_text('{"circle": 10, "square": 20, "stripes": 30}')
    run = CliRunner().invoke(main, ["targets", url, "--synthetic-prices", "--class-prices",
                                    str(prices), "--storage-option",
                                    f"endpoint_url={s3.endpoint}"])
    assert run.exit_code == 0, run.output
    monkeypatch.setenv("BOTTLENECK_STORAGE_OPTIONS", json.dumps(s3.options()))
    manifest = json.loads(fs.cat_file(f"{url}/manifest.json"))
    fs.invalidate_cache()
    assert fs.exists(f"{url}/{manifest['targets']['file']}")
    assert bottleneck.open_cache(url).load("train")["targets"].shape == \
        (cache.split_counts()["train"],)
    check_models_reports_exports(s3, fs, url, images)


def check_models_reports_exports(s3, fs, url: str, images: Path) -> None:
    """A model, its predictions, a report and an export at URLs: each made in local staging and
    uploaded whole (its marker last); a model URL is downloaded whole to be read."""
    base = url.rsplit("/", 2)[0]
    fitted = bottleneck.fit(url, head="logreg", out=f"{base}/model")
    assert fitted.model_dir == f"{base}/model"
    assert fs.exists(f"{base}/model/head.json") and fs.exists(f"{base}/model/checksums.json")
    head = json.loads(fs.cat_file(f"{base}/model/head.json"))
    assert head["cache"] == url == head["lineage"]["cache"]["path"]
    with pytest.raises(UserError, match="already holds a model directory"):
        bottleneck.fit(url, head="logreg", out=f"{base}/model")
    fs.pipe_file(f"{base}/other/notes.txt", b"mine")
    with pytest.raises(UserError, match="is not a bottleneck model directory"):
        bottleneck.fit(url, head="logreg", out=f"{base}/other", overwrite=True)
    assert fs.cat_file(f"{base}/other/notes.txt") == b"mine"

    run = CliRunner().invoke(main, ["predict", f"{base}/model",
                                    str(images / "circle" / "000.jpg"), "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)[0]["class"] in ("circle", "square", "stripes")
    run = CliRunner().invoke(main, ["report", f"{base}/model", "--out",
                                    f"{base}/reports/report.html"])
    assert run.exit_code == 0, run.output
    assert b"<html" in fs.cat_file(f"{base}/reports/report.html")[:2000].lower()
    evaluated = bottleneck.evaluate(f"{base}/model", split="train")  # on its cache's URL
    assert evaluated.metrics["accuracy"] >= 0
    fs.invalidate_cache()  # the model's records outside its checksums go to its URL too
    stored = [p.rsplit("/", 1)[1] for p in fs.ls(f"{base}/model/predictions")]
    assert any(name.startswith("train-") and name.endswith(".npz") for name in stored)
    exported = bottleneck.export(f"{base}/model", f"{base}/exports/model.keras")
    assert exported.path == f"{base}/exports/model.keras"
    records = json.loads(fs.cat_file(f"{base}/model/exports.json"))
    assert records[-1]["path"] == exported.path
    assert records[-1]["lineage"] == f"{base}/exports/model.keras.lineage.json"
    lineage = json.loads(fs.cat_file(f"{base}/exports/model.keras.lineage.json"))
    assert lineage["export"]["path"] == f"{base}/exports/model.keras"
    assert lineage["cache"]["path"] == url
    with pytest.raises(UserError, match="already exists"):
        bottleneck.export(f"{base}/model", f"{base}/exports/model.keras")
    board = bottleneck.bench([url], heads=["logreg"], out=f"{base}/bench", task="classify",
                             progress=False)
    assert list(board["caches"].values()) == [url]
    saved = json.loads(fs.cat_file(f"{base}/bench/leaderboard.json"))
    assert saved["rows"] and fs.exists(f"{base}/bench/best-model/head.json")
    with pytest.raises(UserError, match="is not a bottleneck bench output"):
        bottleneck.bench([url], heads=["logreg"], out=f"{base}/other", task="classify",
                         progress=False)


def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(
        s3, images, vgg16_he_weights, tmp_path: Path) -> None:
    url = f"s3://{s3.new_bucket()}/cache"
    with remote_lock(resolve(url), "extract"), \
            pytest.raises(UserError, match="is being written by extract"):
        bottleneck.extract(str(images), weights=str(vgg16_he_weights), out=url, **ARGS)
    fs = s3fs_of(s3)
    assert not fs.exists(f"{url}/manifest.json") and not fs.exists(f"{url}/.bottleneck.lock")
    bucket, key = url.removeprefix("s3://").split("/", 1)
    fs.call_s3("create_multipart_upload", Bucket=bucket, Key=f"{key}/shard-00009.h5")
    fs.pipe_file(f"{url}/.bottleneck.lock", json.dumps(
        {"owner": "x", "host": "gone", "pid": 1, "action": "extract", "since": "earlier",
         "heartbeat": time.time() - 3600}).encode())
    cache = bottleneck.extract(str(images), weights=str(vgg16_he_weights), out=url, **ARGS)
    assert cache.rows == 12
    fs.invalidate_cache()
    assert not fs.exists(f"{url}/.bottleneck.lock")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    fs.pipe_file(f"{url}/.bottleneck.lock", json.dumps(  # fresh, but its writer died here
        {"owner": "y", "host": socket.gethostname(), "pid": int(dead.stdout), "action": "extract",
         "since": "now", "heartbeat": time.time()}).encode())
    with remote_lock(resolve(url), "targets"):
        pass
    assert not fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads")


def test_an_altered_shard_is_refused(s3, images, vgg16_he_weights, tmp_path: Path) -> None:
    url = f"s3://{s3.new_bucket()}/cache"
    bottleneck.extract(str(images), weights=str(vgg16_he_weights), out=url, **ARGS)
    fs = s3fs_of(s3)
    data = bytearray(fs.cat_file(f"{url}/shard-00001.h5"))
    data[-10] ^= 0xFF
    fs.pipe_file(f"{url}/shard-00001.h5", bytes(data))
    with pytest.raises(UserError, match=r"shard-00001.h5 changed since it was written"):
        bottleneck.open_cache(url)


def test_a_store_that_goes_away_mid_run_is_one_line_and_the_rerun_resumes(
        s3, images, vgg16_he_weights, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"s3://{s3.new_bucket()}/cache"
    real_upload, calls = remote_files.upload, []

    def upload_then_stop(remote, files):  # the server dies while the 2nd shard goes up
        if any(name.endswith(".h5") for name in files):
            calls.append(sorted(files))
            if len(calls) == 2:
                s3.stop()
        return real_upload(remote, files)

    monkeypatch.setattr(remote_files, "upload", upload_then_stop)
    monkeypatch.setattr("bottleneck.cache.remote.upload", upload_then_stop)
    try:
        with pytest.raises(UserError) as caught:
            bottleneck.extract(str(images), weights=str(vgg16_he_weights), out=url, **ARGS)
    finally:
        s3.restart()
    line = caught.value.format_message()
    assert line.startswith(url) and "did not answer" in line and "\n" not in line
    fs = s3fs_of(s3)
    manifest = json.loads(fs.cat_file(f"{url}/manifest.json"))
    done = [s["file"] for s in manifest["shards"] if s["status"] == "done"]
    assert done and not manifest["complete"]
    assert all(fs.exists(f"{url}/{name}") for name in done)  # never a missing shard named
    monkeypatch.setattr("bottleneck.cache.remote.upload", real_upload)
    fs.pipe_file(f"{url}/.bottleneck.lock", b"{}")  # the dead run's lock: stale at once
    monkeypatch.setenv("BOTTLENECK_LOCK_STALE_S", "0")
    cache = bottleneck.extract(str(images), weights=str(vgg16_he_weights), out=url,
                               **ARGS | {"progress": True})
    assert cache.rows == 12 and cache.manifest.complete


def test_stores_without_conditional_writes_need_no_lock(images, vgg16_he_weights,
                                                        monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BOTTLENECK_LOCAL_CACHE", str(tmp_path / "lc"))
    url = "memory://bottleneck-tests/no-lock"
    with pytest.raises(UserError, match="--no-lock"):
        bottleneck.extract(str(images), weights=str(vgg16_he_weights), out=url, **ARGS)
    cache = bottleneck.extract(str(images), weights=str(vgg16_he_weights), out=url,
                               lock=False, **ARGS)
    assert bottleneck.open_cache(url).rows == cache.rows == 12
