"""Outputs kept inside the images they came from are never read as data, in every layout:
``extract photos/ -o photos/features`` twice resumes, and caches, model directories, bench,
report and export outputs of ours beside or among the class folders are skipped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cli import main
from bottleneck.data import FolderSource
from bottleneck.storage import ours as _ours
from tests.conftest import write_class_folder

pytest_plugins = ["tests.heads_fixtures"]


def run_cli(*args: object):  # noqa: ANN201 - click's Result
    return CliRunner().invoke(main, [str(a) for a in args])


def extract_args(source: Path, weights: Path, out: Path) -> list[object]:
    return ["extract", source, "-b", "vgg16", "--weights", weights, "--image-size", "32",
            "-o", out]


def scanned(root: Path) -> tuple[list[str], set[str]]:
    source = FolderSource(root)
    return source.classes, {item.key for item in source.items()}


@pytest.mark.parametrize("layout", ["classes", "splits"])
def test_extract_into_its_own_source_twice_resumes(layout, image_folder, split_images,
                                                   vgg16_he_weights, tmp_path):
    photos = tmp_path / "photos"
    shutil.copytree(image_folder if layout == "classes" else split_images, photos)
    out = photos / "features" if layout == "classes" else photos / "train" / "features"
    before = scanned(photos)
    first = run_cli(*extract_args(photos, vgg16_he_weights, out))
    assert first.exit_code == 0, first.output
    again = run_cli(*extract_args(photos, vgg16_he_weights, out))
    assert again.exit_code == 0, again.output
    assert "kept 1 finished shard " in again.stderr and "computing 0 shards" in again.stderr
    assert again.stderr.count(f"note: skipped {out} (a bottleneck cache)") == 1
    assert scanned(photos) == before  # the cache is not a class, nor its files images
    cache = bottleneck.open_cache(out)
    assert cache.rows == len(before[1]) and cache.classes == before[0]


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.parametrize("left", ["lock", "temp file", "nothing"])
def test_a_run_killed_before_its_manifest_still_resumes(left, image_folder, vgg16_he_weights,
                                                         tmp_path):
    """An --out killed early holds a lock or a temp file (or nothing): no class either."""
    photos = tmp_path / "photos"
    shutil.copytree(image_folder, photos)
    out = photos / "features"
    out.mkdir()
    pid = dead_pid()
    if left == "lock":
        (out / _ours.LOCK_FILE).write_text(json.dumps({"pid": pid, "host": os.uname()[1]}))
    elif left == "temp file":
        (out / f".manifest.json.tmp-{pid}").write_text("{")
    if left != "nothing":  # the markers alone keep it out of any scan
        assert scanned(photos) == scanned(image_folder)
    if left == "lock":  # extract takes a dead writer's lock over (tests/extraction)
        return
    cache = bottleneck.extract(str(photos), backbone="vgg16", weights=str(vgg16_he_weights),
                               image_size=32, out=out, progress=False)
    assert cache.classes == ["circle", "square", "stripes"] and cache.rows == 36


@pytest.fixture(scope="module")
def outputs(feature_cache, tmp_path_factory) -> dict[str, Path]:
    """One real output of each kind (a report and an export by their documented names)."""
    root = tmp_path_factory.mktemp("outputs")
    made = {"cache": root / "cache", "model": root / "model", "bench": root / "bench",
            "report": root / "report", "layers": root / "layers"}
    shutil.copytree(feature_cache.root, made["cache"])
    bottleneck.fit(feature_cache, "logreg", made["model"])
    bottleneck.bench([feature_cache.root], heads=["logreg"], jobs=1, out=made["bench"],
                     progress=False)
    made["report"].mkdir()
    (made["report"] / "report.html").write_text("<html></html>")
    (made["report"] / "report.json").write_text("{}")
    for layer in ("block4_pool", "block5_pool"):  # a multi-layer extract's folder
        shutil.copytree(feature_cache.root, made["layers"] / layer)
    return made


@pytest.mark.parametrize("layout", ["classes", "splits"])
@pytest.mark.parametrize("where", ["root", "class folder"])
def test_every_output_of_ours_is_skipped(layout, where, outputs, tmp_path, image_folder,
                                         split_images):
    from bottleneck.models.export import LINEAGE_SUFFIX

    photos = tmp_path / "photos"
    shutil.copytree(image_folder if layout == "classes" else split_images, photos)
    before = scanned(photos)
    base = photos if layout == "classes" else photos / "train"
    target = base if where == "root" else base / "circle"
    for name, path in outputs.items():
        shutil.copytree(path, target / name)
    (target / "model.keras").write_bytes(b"PK")  # an export and its lineage sidecar
    (target / f"model.keras{LINEAGE_SUFFIX}").write_text("{}")
    (target / "saved").mkdir()  # a SavedModel export
    (target / f"saved{LINEAGE_SUFFIX}").write_text("{}")
    source = FolderSource(photos)
    assert (source.classes, {i.key for i in source.items()}) == before
    reasons = {path.name: reason for path, reason in source.skipped}
    assert reasons["cache"] == "a bottleneck cache"
    assert reasons["model"] == "a bottleneck model directory"
    assert reasons["bench"] == "bench output" and reasons["report"] == "a bottleneck report"
    assert reasons["layers"] == "a folder of bottleneck outputs"
    assert reasons["saved"] == "a bottleneck export"
    if where == "class folder":  # files among the images
        assert reasons["model.keras"] == "a bottleneck export"


def test_folders_that_only_look_like_ours_are_read(tmp_path):
    """Another tool's manifest.json, a stray report.html among images: still data."""
    write_class_folder(tmp_path, per_class=2, classes=("circle", "square"))
    (tmp_path / "circle" / "manifest.json").write_text('{"format": "other"}')
    (tmp_path / "square" / "report.html").write_text("<html></html>")
    source = FolderSource(tmp_path)
    assert source.classes == ["circle", "square"] and not source.skipped
    assert {"circle/manifest.json", "square/report.html"} <= {i.key for i in source.items()}


def test_markers_are_the_writers_own():
    from bottleneck.cache.manifest import FORMAT, MANIFEST
    from bottleneck.models.export import LINEAGE_SUFFIX
    from bottleneck.models.model_dir import FORMAT as MODEL_FORMAT
    from bottleneck.models.model_dir import HEAD_JSON
    from bottleneck.storage.lock import LOCK_FILE

    assert (_ours.CACHE_MANIFEST, _ours.CACHE_FORMAT) == (MANIFEST, FORMAT)
    assert (_ours.MODEL_HEAD, _ours.MODEL_FORMAT) == (HEAD_JSON, MODEL_FORMAT)
    assert _ours.LOCK_FILE == LOCK_FILE and _ours.LINEAGE_SUFFIX == LINEAGE_SUFFIX
