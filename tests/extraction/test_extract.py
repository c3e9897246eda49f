"""Extraction end to end: the cache format, resume after kill -9, bad files, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import bottleneck
from bottleneck.cache import open_cache
from bottleneck.cli import main
from bottleneck.errors import UserError
from bottleneck.storage.atomic import sha256_file
from tests.conftest import write_class_folder

REPO = Path(__file__).resolve().parents[2]


def read_rows(cache_dir: Path) -> dict[str, tuple[np.ndarray, int, str]]:
    """Every cached row by path, read back with h5py."""
    rows = {}
    manifest = json.loads((cache_dir / "manifest.json").read_text())
    for shard in manifest["shards"]:
        with h5py.File(cache_dir / shard["file"], "r") as handle:
            for path, feature, label, split in zip(
                handle["paths"].asstr()[:], handle["features"][:], handle["labels"][:],
                handle["split"].asstr()[:], strict=True,
            ):
                assert path not in rows, f"{path} cached twice"
                rows[path] = (feature, int(label), split)
    return rows


@pytest.fixture(scope="module")
def vgg_cache(image_folder, vgg16_he_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "vgg"
    return bottleneck.extract(str(image_folder), backbone="vgg16", weights=str(vgg16_he_weights),
                              image_size=32, out=out, shard_size=10, batch_size=4,
                              progress=False)


def test_cache_format_is_the_documented_contract(vgg_cache, image_folder):
    manifest = json.loads((vgg_cache.root / "manifest.json").read_text())
    assert manifest["format"] == "bottleneck-cache" and manifest["complete"]
    config = manifest["config"]
    assert config["backbone"] == "vgg16" and config["image_size"] == 32
    assert config["pooling"] == "avg" and config["dtype"] == "float32"
    assert config["weights_sha256"] == sha256_file(config["weights"])
    assert config["preprocessing"]["preprocess"] == "caffe"
    assert set(manifest["versions"]) >= {"tensorflow", "keras", "h5py", "numpy"}
    assert manifest["classes"] == ["circle", "square", "stripes"]
    assert [s["file"] for s in manifest["shards"]] == [f"shard-{i:05d}.h5" for i in range(4)]
    for shard in manifest["shards"]:
        path = vgg_cache.root / shard["file"]
        assert sha256_file(path) == shard["sha256"]
        with h5py.File(path, "r") as handle:
            n = handle["features"].shape[0]
            assert n == shard["rows"] == handle["labels"].shape[0] == handle["paths"].shape[0]
            assert handle["features"].dtype == np.float32 and handle["features"].shape[1] == 512
            assert set(handle["split"].asstr()[:]) <= {"train", "val", "test"}
    rows = read_rows(vgg_cache.root)
    on_disk = {p.relative_to(image_folder).as_posix() for p in image_folder.rglob("*.*")}
    assert set(rows) == on_disk
    for path, (_, label, _) in rows.items():  # labels stay in line with their rows
        assert manifest["classes"][label] == path.split("/")[0]
    assert sum(manifest["split_counts"].values()) == manifest["rows"] == 36
    assert not list(vgg_cache.root.glob(".*tmp*"))


def test_open_cache_streams_batches_of_one_split(vgg_cache):
    cache = open_cache(vgg_cache.root)
    batches = list(cache.iter_batches("train", batch_size=5, with_paths=True))
    assert all(len(b["features"]) <= 5 for b in batches)
    train = cache.load("train", with_paths=True)
    assert len(train["features"]) == cache.split_counts()["train"]
    rows = read_rows(vgg_cache.root)
    for path, feature, label in zip(train["paths"], train["features"], train["labels"],
                                    strict=True):
        assert rows[path][2] == "train" and rows[path][1] == label
        np.testing.assert_array_equal(rows[path][0], feature)
    streamed = np.concatenate([f.numpy() for f, _ in cache.tf_dataset("train", batch_size=4)])
    np.testing.assert_array_equal(streamed, train["features"])


def test_rerun_is_a_no_op_and_other_config_is_refused(vgg_cache, image_folder,
                                                      vgg16_he_weights):
    before = {p.name: p.stat().st_mtime_ns for p in vgg_cache.root.glob("shard-*.h5")}
    bottleneck.extract(str(image_folder), backbone="vgg16", weights=str(vgg16_he_weights),
                       image_size=32, out=vgg_cache.root, shard_size=10, progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in vgg_cache.root.glob("shard-*.h5")}
    assert before == after
    with pytest.raises(UserError, match="different config.*overwrite=True"):
        bottleneck.extract(str(image_folder), backbone="vgg16", weights=str(vgg16_he_weights),
                           image_size=48, out=vgg_cache.root, shard_size=10, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in vgg_cache.root.glob("shard-*.h5")} == after


def test_overwrite_never_deletes_a_folder_that_is_not_a_cache(image_folder, vgg16_he_weights,
                                                               tmp_path):
    precious = tmp_path / "holiday-photos"
    precious.mkdir()
    (precious / "beach.jpg").write_bytes(b"memories")
    with pytest.raises(UserError, match="not empty and is not a bottleneck cache"):
        bottleneck.extract(str(image_folder), backbone="vgg16", weights=str(vgg16_he_weights),
                           image_size=32, out=precious, overwrite=True, progress=False)
    assert (precious / "beach.jpg").read_bytes() == b"memories"


def test_overwrite_replaces_a_cache_made_with_another_config(vgg_cache, image_folder,
                                                             vgg16_he_weights, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(vgg_cache.root, out)
    cache = bottleneck.extract(str(image_folder), backbone="vgg16", weights=str(vgg16_he_weights),
                               image_size=40, out=out, overwrite=True, progress=False)
    assert cache.config["image_size"] == 40 and cache.manifest["rows"] == 36
    assert len(read_rows(out)) == 36


CRASHING_RUN = """
import os, signal, sys
import bottleneck
from bottleneck.cache import shards as cache_module

calls = 0
original = cache_module.ShardWriter.append

def append_then_die(self, *args, **kwargs):
    global calls
    original(self, *args, **kwargs)
    calls += 1
    if calls == {kill_after}:  # mid-shard: a temporary file is open and half written
        os.kill(os.getpid(), signal.SIGKILL)

cache_module.ShardWriter.append = append_then_die
bottleneck.extract({folder!r}, backbone="vgg16", weights={weights!r}, image_size=32,
                   out={out!r}, shard_size=8, batch_size=4, progress=False)
"""


def test_resume_after_kill_9_keeps_done_shards_and_caches_each_image_once(
        image_folder, vgg16_he_weights, tmp_path):
    out = tmp_path / "cache"
    script = CRASHING_RUN.format(kill_after=5, folder=str(image_folder),
                                 weights=str(vgg16_he_weights), out=str(out))
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == -9, run.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    done = [s for s in manifest["shards"] if s["status"] == "done"]
    assert not manifest["complete"] and len(done) == 2  # 2 shards of 2 batches, then death
    kept = {s["file"]: (out / s["file"]).stat().st_mtime_ns for s in done}
    assert list(out.glob(".shard-*.tmp-*")), "the kill should leave a half-written temp file"
    with pytest.raises(UserError, match="incomplete"):
        open_cache(out)

    cache = bottleneck.extract(str(image_folder), backbone="vgg16",
                               weights=str(vgg16_he_weights), image_size=32, out=out,
                               shard_size=8, batch_size=4, progress=False)
    assert {f: (out / f).stat().st_mtime_ns for f in kept} == kept  # not recomputed
    assert cache.manifest["complete"] and cache.manifest["rows"] == 36
    assert len(read_rows(out)) == 36
    assert not list(out.glob(".shard-*.tmp-*")), "stale temp files are cleaned on resume"


@pytest.fixture(scope="module")
def awkward_folder(tmp_path_factory):
    """Every image mode users meet, plus files that are not images at all."""
    root = tmp_path_factory.mktemp("awkward")
    write_class_folder(root, per_class=3, classes=("circle", "square"))
    rng = np.random.default_rng(3)
    rgb = (rng.random((30, 40, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb[..., 0]).save(root / "circle" / "gray.png")
    Image.fromarray(rgb).convert("P").save(root / "circle" / "palette.png")
    Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(root / "circle" / "rgba.png")
    Image.fromarray(rgb).convert("CMYK").save(root / "square" / "cmyk.jpg")
    Image.fromarray((rng.random((30, 40)) * 65535).astype(np.uint16)).save(
        root / "square" / "deep16.png")
    Image.fromarray(rgb).save(root / "square" / "photo.tiff")  # TF cannot decode: Pillow can
    good = (root / "circle" / "000.jpg").read_bytes()
    (root / "circle" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "square" / "empty.jpg").write_bytes(b"")
    (root / "square" / "notes.txt").write_text("not an image")
    return root


def test_bad_files_are_recorded_and_every_mode_becomes_rgb(awkward_folder, vgg16_he_weights,
                                                           tmp_path):
    cache = bottleneck.extract(str(awkward_folder), backbone="vgg16",
                               weights=str(vgg16_he_weights), image_size=32,
                               out=tmp_path / "c", progress=False, shard_size=5)
    failures = {f["path"]: f["reason"] for f in cache.failures}
    assert set(failures) == {"circle/truncated.jpg", "square/empty.jpg", "square/notes.txt"}
    assert "0 bytes" in failures["square/empty.jpg"]
    assert "truncated" in failures["circle/truncated.jpg"]
    rows = read_rows(cache.root)
    for name in ("circle/gray.png", "circle/palette.png", "circle/rgba.png",
                 "square/cmyk.jpg", "square/deep16.png", "square/photo.tiff"):
        assert name in rows and np.all(np.isfinite(rows[name][0]))
    assert cache.manifest["rows"] == 12 and cache.manifest["failures"] == 3


def test_the_decoder_equals_tensorflows_on_awkward_files(awkward_folder):
    from bottleneck.data import images
    from tests.tf_reference import decode_file_tf

    for name in ("circle/gray.png", "circle/rgba.png", "circle/palette.png", "square/deep16.png",
                 "circle/001.jpg", "square/cmyk.jpg"):
        path = awkward_folder / name
        assert np.array_equal(images.decode_file(path), decode_file_tf(str(path)).numpy()), name


def test_layer_pooling_none_and_float16(image_folder, vgg16_he_weights, tmp_path):
    cache = bottleneck.extract(str(image_folder), backbone="vgg16",
                               weights=str(vgg16_he_weights), image_size=32, layer="block4_pool",
                               pooling="none", dtype="float16", out=tmp_path / "c",
                               progress=False)
    assert cache.feature_shape == (2, 2, 512)
    with h5py.File(cache.shard_paths[0], "r") as handle:
        assert handle["features"].dtype == np.float16
        assert handle["features"].shape[1:] == (2, 2, 512)
    pooled = bottleneck.extract(str(image_folder), backbone="vgg16",
                                weights=str(vgg16_he_weights), image_size=32, layer="block4_pool",
                                pooling="max", out=tmp_path / "m", progress=False)
    a = open_cache(cache.root).load(with_paths=True)
    b = open_cache(pooled.root).load(with_paths=True)
    order = np.argsort(a["paths"]), np.argsort(b["paths"])
    np.testing.assert_allclose(a["features"][order[0]].astype(np.float32).max(axis=(1, 2)),
                               b["features"][order[1]], rtol=2e-3, atol=2e-3)


def test_split_folders_are_used_as_splits(tmp_path, vgg16_he_weights):
    for split in ("train", "validation", "test"):
        write_class_folder(tmp_path / "data" / split, per_class=2, classes=("circle", "square"))
    cache = bottleneck.extract(str(tmp_path / "data"), backbone="vgg16",
                               weights=str(vgg16_he_weights), image_size=32,
                               out=tmp_path / "c", progress=False)
    assert cache.split_counts() == {"train": 4, "val": 4, "test": 4}
    assert cache.classes == ["circle", "square"]
    for path, (_, _, split) in read_rows(cache.root).items():
        assert {"train": "train", "validation": "val", "test": "test"}[path.split("/")[0]] == split


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("args, message", [
    (["extract", "{missing}", "-b", "vgg16", "-o", "{out}"], "source folder not found"),
    (["extract", "{images}", "-b", "vgg17", "-o", "{out}"], "choose one of: efficientnet_lite0"),
    (["extract", "{images}", "-b", "vgg16", "--layer", "block9_pool", "--weights", "none",
      "--image-size", "32", "-o", "{out}"], "has no layer 'block9_pool'"),
    (["extract", "{images}", "-b", "xception", "--image-size", "40", "-o", "{out}"],
     "minimum of 71"),
    (["extract", "{empty}", "-b", "vgg16", "-o", "{out}"], "no images found"),
    (["extract", "{images}", "-b", "vgg16", "--weights", "{missing}", "-o", "{out}"],
     "weights file not found"),
    (["info", "{missing}"], "not a bottleneck cache"),
])
def test_bad_input_gets_one_line_and_exit_2_and_writes_nothing(args, message, image_folder,
                                                               tmp_path):
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    values = {"missing": str(tmp_path / "nope"), "out": str(tmp_path / "out"),
              "images": str(image_folder), "empty": str(tmp_path / "empty")}
    code, output = run_cli(*[a.format(**values) for a in args])
    assert code == 2, output
    assert message in output and "Traceback" not in output
    assert len(output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_cli_extract_and_info(image_folder, vgg16_he_weights, tmp_path):
    out = tmp_path / "c"
    code, output = run_cli("extract", str(image_folder), "-b", "vgg16", "--weights",
                           str(vgg16_he_weights), "--image-size", "32", "-o", str(out), "-q")
    assert code == 0, output
    assert "cached 36 images" in output
    code, output = run_cli("info", str(out), "--json")
    summary = json.loads(output)
    assert summary["rows"] == 36 and summary["feature_shape"] == [512]
    assert sum(summary["splits"]["train"].values()) == summary["split_counts"]["train"]
    code, text = run_cli("info", str(out))
    assert code == 0 and "vgg16 @ 32px" in text and "circle" in text


def test_info_verify_catches_a_changed_shard(vgg_cache, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(vgg_cache.root, copy)
    code, output = run_cli("info", str(copy), "--verify")
    assert code == 0, output
    with open(copy / "shard-00001.h5", "r+b") as handle:  # flip one byte in the middle
        handle.seek(4000)
        byte = handle.read(1)
        handle.seek(4000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    code, output = run_cli("info", str(copy), "--verify")
    assert code == 2 and "shard-00001.h5 changed since it was written" in output


def test_backbones_and_layers_commands():
    code, output = run_cli("backbones")
    assert code == 0
    assert "inception_v3" in output and "2048" in output and "efficientnet_lite0" in output
    code, output = run_cli("layers", "vgg19", "--image-size", "32")
    assert code == 0 and "block4_pool" in output and "2×2×512" in output


def test_progress_is_silent_without_a_terminal(image_folder, vgg16_he_weights, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run(
        [sys.executable, "-m", "bottleneck.cli", "extract", str(image_folder), "-b", "vgg16",
         "--weights", str(vgg16_he_weights), "--image-size", "32", "-o", str(tmp_path / "c")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "img/s" not in run.stderr and "%|" not in run.stderr


def test_a_small_run_calls_the_model_eagerly_and_agrees_with_the_compiled_one(
        image_folder, vgg16_he_weights, tmp_path):
    """A run of a few batches skips compiling the model; a longer one compiles it: the
    features agree within float rounding, so a cache may mix the two (grown, resumed)."""
    from bottleneck.extraction import ExtractConfig, FeatureExtractor
    from bottleneck.extraction.feature_model import EAGER_BATCHES

    small = bottleneck.extract(str(image_folder), backbone="vgg16",
                               weights=str(vgg16_he_weights), image_size=32,
                               out=tmp_path / "eager", progress=False, batch_size=32)
    rows = small.rows
    assert rows <= EAGER_BATCHES * 32
    compiled = bottleneck.extract(str(image_folder), backbone="vgg16",
                                  weights=str(vgg16_he_weights), image_size=32,
                                  out=tmp_path / "compiled", progress=False, batch_size=2)
    assert rows > EAGER_BATCHES * 2  # so this one compiled
    a, b = small.load(with_paths=True), compiled.load(with_paths=True)
    assert list(a["paths"]) == list(b["paths"])
    scale = np.linalg.norm(b["features"], axis=1)
    assert np.max(np.linalg.norm(a["features"] - b["features"], axis=1) / scale) <= 1e-5
    extractor = FeatureExtractor(ExtractConfig("vgg16", str(vgg16_he_weights), image_size=32))
    extractor.expect_images(1000, 32)
    assert extractor._run is not None and "eager" not in extractor._run.__qualname__
