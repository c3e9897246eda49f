"""Several --layer in one pass: OUT/<layer>/ ordinary caches with the same rows, equal to
single-layer runs, usable by fit, predict and bench, resumed together; OUT is never a cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cache import is_cache
from bottleneck.cli import main
from bottleneck.errors import UserError

LAYERS = ["block3_pool", "block4_pool", "block5_pool"]


def run(folder: Path, weights: Path, out: Path, layers, **options):
    return bottleneck.extract(str(folder), backbone="vgg16", weights=str(weights),
                              image_size=32, out=out, layer=layers, shard_size=16,
                              progress=False, **options)


@pytest.fixture(scope="module")
def layered(image_folder, vgg16_he_weights, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("layers") / "vgg"
    caches = run(image_folder, vgg16_he_weights, out, LAYERS)
    assert list(caches) == LAYERS
    return out


def test_out_holds_one_complete_cache_per_layer_and_is_not_a_cache(layered):
    assert not is_cache(layered) and not (layered / "manifest.json").exists()
    assert sorted(p.name for p in layered.iterdir()) == sorted(LAYERS)
    dims = {"block3_pool": 256, "block4_pool": 512, "block5_pool": 512}
    rows = None
    for layer in LAYERS:
        cache = bottleneck.open_cache(layered / layer)
        assert cache.manifest["complete"] and cache.config["layer"] == layer
        assert cache.feature_shape == (dims[layer],)
        with_rows = [(s, list(cache.load(s, with_paths=True)["paths"])) for s in ("train", "val")]
        assert rows is None or with_rows == rows  # the same rows in the same order
        rows = with_rows


def test_each_layer_equals_a_single_layer_run(layered, image_folder, vgg16_he_weights,
                                              tmp_path):
    single = run(image_folder, vgg16_he_weights, tmp_path / "b4", "block4_pool")
    layer = bottleneck.open_cache(layered / "block4_pool")
    assert layer.config["weights_digest"] == single.config["weights_digest"]
    np.testing.assert_allclose(layer.load("train")["features"], single.load("train")["features"],
                               rtol=1e-5, atol=1e-6)


def test_fit_predict_and_bench_work_on_each_layer(layered, image_folder, tmp_path):
    cache = bottleneck.open_cache(layered / "block4_pool")
    bottleneck.fit(cache, "logreg", tmp_path / "model", progress=False)
    data = cache.load("val", with_paths=True)
    predicted = bottleneck.predict(tmp_path / "model", [image_folder / p for p in data["paths"]])
    head = bottleneck.load_model(tmp_path / "model").head
    assert [r["class"] for r in predicted] == \
        [cache.classes[i] for i in head.predict(data["features"])]
    result = CliRunner().invoke(main, ["bench", *[str(layered / n) for n in LAYERS],
                                       "--heads", "logreg", "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    board = json.loads((tmp_path / "report" / "leaderboard.json").read_text())
    assert len(board["rows"]) == 3  # one logreg per layer


def test_rerun_resumes_every_layer(image_folder, vgg16_he_weights, tmp_path):
    out = tmp_path / "vgg"
    first = run(image_folder, vgg16_he_weights, out, LAYERS[:2])
    shas = {n: [s["sha256"] for s in c.manifest["shards"]] for n, c in first.items()}
    # as after a crash: block4_pool lost its last shard, block3_pool has it
    manifest = json.loads((out / "block4_pool" / "manifest.json").read_text())
    manifest["shards"][-1]["status"], manifest["complete"] = "pending", False
    (out / "block4_pool" / "manifest.json").write_text(json.dumps(manifest))
    (out / "block4_pool" / manifest["shards"][-1]["file"]).unlink()
    again = run(image_folder, vgg16_he_weights, out, LAYERS[:2])
    for name, cache in again.items():
        assert cache.manifest["complete"]
        now = [s["sha256"] for s in cache.manifest["shards"]]
        assert now[:-1] == shas[name][:-1]  # finished shards kept in every layer
    assert again["block4_pool"].rows == again["block3_pool"].rows == 36
    # another layer later: OUT already holds our caches, which it leaves alone
    run(image_folder, vgg16_he_weights, out, ["block5_pool", "block2_pool"])
    assert sorted(p.name for p in out.iterdir()) == sorted([*LAYERS, "block2_pool"])


def test_the_cli_takes_repeated_layer_and_reports_each_cache(image_folder, vgg16_he_weights,
                                                             tmp_path):
    result = CliRunner().invoke(main, [
        "extract", str(image_folder), "-b", "vgg16", "--weights", str(vgg16_he_weights),
        "--image-size", "32", "--layer", "block4_pool", "--layer", "block5_pool",
        "-o", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and "block4_pool" in lines[0] and "block5_pool" in lines[1]


def test_refusals_touch_nothing(image_folder, vgg16_he_weights, tmp_path):
    single = tmp_path / "single"
    run(image_folder, vgg16_he_weights, single, None)
    with pytest.raises(UserError, match="is a single-layer cache"):
        run(image_folder, vgg16_he_weights, single, LAYERS[:2])
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="'notes.txt', which is not a bottleneck cache"):
        run(image_folder, vgg16_he_weights, stranger, LAYERS[:2])
    assert sorted(p.name for p in stranger.iterdir()) == ["notes.txt"]
    with pytest.raises(UserError, match="given twice"):
        run(image_folder, vgg16_he_weights, tmp_path / "twice", ["block4_pool", "block4_pool"])
    # one layer's folder holds a cache made another way: refused before any layer is written
    mixed = tmp_path / "mixed"
    run(image_folder, vgg16_he_weights, mixed / "block5_pool", None)  # last block, not block5
    with pytest.raises(UserError, match="different config"):
        run(image_folder, vgg16_he_weights, mixed, ["block4_pool", "block5_pool"])
    assert sorted(p.name for p in mixed.iterdir()) == ["block5_pool"]
    with pytest.raises(UserError, match="no layer 'block9_pool'"):
        run(image_folder, vgg16_he_weights, tmp_path / "none", ["block4_pool", "block9_pool"])
