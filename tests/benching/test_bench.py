"""bench: many head variants on the same cached features, ranked on val, reported on test."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from PIL import Image

import bottleneck
from bottleneck.benching import bench, expand_grid, parse_grid
from bottleneck.benching.leaderboard import FILES
from bottleneck.errors import UserError

pytest_plugins = ["tests.heads_fixtures"]


def test_grid_parsing_and_expansion():
    grid = parse_grid(["C=0.1,1", "hidden=(256,),(64,32)"])
    assert grid == {"C": [0.1, 1], "hidden": [(256,), (64, 32)]}
    assert len(expand_grid(grid)) == 4
    with pytest.raises(UserError, match="key=v1,v2"):
        parse_grid(["C"])


def test_bench_ranks_on_val_and_writes_every_report(feature_cache, tmp_path):
    report = bench([feature_cache.root], heads=["logreg", "ridge", "dense"],
                   grid={"C": [0.01, 1.0], "epochs": [15]}, seeds=2, out=tmp_path / "r",
                   jobs=2)
    rows = report["rows"]
    assert [r["variant"] for r in rows if r["head"] == "logreg"] != []
    assert len(rows) == 4  # logreg × 2 C values, ridge, dense (epochs=15)
    assert report["ranked_by"] == "val_accuracy"
    vals = [r["val_accuracy"] for r in rows]
    assert vals == sorted(vals, reverse=True) and [r["rank"] for r in rows] == [1, 2, 3, 4]
    for row in rows:
        assert row["runs"] == 2 and "val_accuracy_std" in row and "test_accuracy" in row
        assert row["fit_seconds"] > 0 and row["predict_us_per_row"] > 0 and row["model_bytes"] > 0
    assert max(vals) > 0.8  # random VGG features separate the three generated classes
    for name in FILES:
        assert (tmp_path / "r" / name).stat().st_size > 0
    assert (tmp_path / "r" / "score_vs_fit_time.png").read_bytes()[:4] == b"\x89PNG"
    with open(tmp_path / "r" / "leaderboard.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    assert json.loads((tmp_path / "r" / "leaderboard.json").read_text())["rows"][0]["rank"] == 1
    assert "| 1 |" in (tmp_path / "r" / "leaderboard.md").read_text()
    assert report["leaks"] == []


def test_several_caches_in_one_leaderboard_and_cv(feature_cache, spatial_cache, tmp_path):
    report = bench([feature_cache.root, spatial_cache.root], heads=["logreg"], cv=3,
                   out=tmp_path / "r", jobs=1)
    caches = {r["cache"] for r in report["rows"]}
    assert caches == {"vgg16@32/avg", "vgg16:block3_pool@32/none"}
    assert all(r["runs"] == 3 for r in report["rows"])
    from matplotlib.legend import Legend

    from bottleneck.benching.leaderboard import score_vs_time_figure

    legends = score_vs_time_figure(report).findobj(Legend)
    texts = {t.get_text() for legend in legends for t in legend.get_texts()}
    assert texts == caches | {"logreg"}  # the markers' caches and the colours' heads


def test_regression_bench_reports_r2_beside_the_ceiling(price_cache, tmp_path):
    report = bench([price_cache.root], heads=["ridge"], out=tmp_path / "r")
    assert report["task"] == "regress" and report["ranked_by"] == "val_r2"
    row = report["rows"][0]
    assert {"val_r2", "test_r2", "val_mae", "test_mse"} <= set(row)
    assert 0.9 < report["r2_ceiling"]["test"] <= 1.0
    assert row["test_r2"] <= report["r2_ceiling"]["test"] + 0.05


def test_mismatched_caches_and_unused_grid_keys_are_refused(feature_cache, price_cache,
                                                           image_folder, vgg16_he_weights,
                                                           tmp_path):
    other = bottleneck.extract(str(image_folder), backbone="vgg16", weights=str(vgg16_he_weights),
                               image_size=32, out=tmp_path / "other", progress=False)
    with pytest.raises(UserError, match="do not hold the same images"):
        bench([feature_cache.root, other.root], heads=["logreg"], out=tmp_path / "r")
    with pytest.raises(UserError, match="no head in logreg takes --grid alpha"):
        bench([feature_cache.root], heads=["logreg"], grid={"alpha": [1.0]}, out=tmp_path / "r")
    with pytest.raises(UserError, match="needs targets"):
        bench([feature_cache.root, price_cache.root], heads=["ridge"], task="regress",
              out=tmp_path / "r")


def test_leak_check_finds_the_same_image_in_two_splits(split_images, vgg16_he_weights, tmp_path):
    leaky = tmp_path / "leaky"
    shutil.copytree(split_images, leaky)
    image = leaky / "train" / "circle" / "000.jpg"
    shutil.copy(image, leaky / "test" / "circle" / "copy-of-train-000.jpg")
    # the same pixels in another lossless format are the same image too
    Image.open(leaky / "train" / "square" / "004.png").save(leaky / "val" / "square" / "re.bmp")
    cache = bottleneck.extract(str(leaky), backbone="vgg16", weights=str(vgg16_he_weights),
                               image_size=32, out=tmp_path / "c", progress=False)
    report = bench([cache.root], heads=["ridge"], out=tmp_path / "r")
    groups = sorted(sorted((r["path"], r["split"]) for r in group) for group in report["leaks"])
    assert groups == [
        [("test/circle/copy-of-train-000.jpg", "test"), ("train/circle/000.jpg", "train")],
        [("train/square/004.png", "train"), ("val/square/re.bmp", "val")],
    ]


def test_ranking_follows_val_even_when_test_disagrees():
    from bottleneck.benching import Variant, rank

    variants = [Variant("c", "logreg", {"C": 1}), Variant("c", "ridge"), Variant("c", "svm")]
    scores = {0: (0.70, 0.95), 1: (0.90, 0.60), 2: (0.80, 0.80)}  # (val, test): they disagree
    results = {i: [{"val": {"accuracy": v}, "test": {"accuracy": t}, "fit_seconds": 1.0,
                    "predict_us_per_row": 1.0, "model_bytes": 1}] for i, (v, t) in scores.items()}
    rows = rank(variants, results, "val_accuracy")
    assert [r["head"] for r in rows] == ["ridge", "svm", "logreg"]  # by test it would be reversed
    assert [r["rank"] for r in rows] == [1, 2, 3]


def test_bench_streams_the_dense_head_when_the_cache_does_not_fit(feature_cache, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("BOTTLENECK_MEMORY_LIMIT", "64K")  # smaller than the three splits
    with pytest.raises(UserError, match="does not fit in memory for the heads logreg"):
        bench([feature_cache.root], heads=["logreg", "dense"], out=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    report = bench([feature_cache.root], heads=["dense"], grid={"epochs": [8]},
                   out=tmp_path / "r")
    row = report["rows"][0]
    assert row["head"] == "dense" and row["val_accuracy"] > 0.6 and row["test_accuracy"] > 0.6
