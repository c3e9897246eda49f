"""predict: backbone + head on raw files agrees with the head on the cached rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cache import Cache
from bottleneck.cli import main
from bottleneck.errors import UserError
from bottleneck.heads import class_scores
from bottleneck.models.model_dir import load_model

pytest_plugins = ["tests.heads_fixtures"]

QUICK = {"dense": {"epochs": 10, "hidden": (64,)}}


@pytest.fixture(scope="module")
def models(feature_cache: Cache, price_cache: Cache,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Fitted model directories: three classifiers and a price regressor."""
    root = tmp_path_factory.mktemp("predict_models")
    for head in ("logreg", "dense", "linear-svm"):
        bottleneck.fit(feature_cache, head, root / head, params=QUICK.get(head), progress=False)
    bottleneck.fit(price_cache, "ridge", root / "prices", progress=False)
    return {"logreg": root / "logreg", "dense": root / "dense", "linear-svm": root / "linear-svm",
            "prices": root / "prices"}


def cached_rows(cache: Cache, split: str = "test") -> tuple[list[Path], dict[str, np.ndarray]]:
    """The raw files behind a split's cached rows, and the rows."""
    data = cache.load(split, with_paths=True)
    source_root = Path(cache.manifest["source"]["root"])
    return [source_root / key for key in data["paths"]], data


@pytest.mark.parametrize("head", ["logreg", "dense"])
def test_raw_files_predict_like_their_cached_rows(head: str, models: dict[str, Path],
                                                  feature_cache: Cache) -> None:
    files, data = cached_rows(feature_cache)
    model = load_model(models[head])
    _, cached = class_scores(model.head, data["features"], 3)
    results = bottleneck.predict(models[head], files, top=3, batch_size=7)
    assert [r["path"] for r in results] == [str(f) for f in files]
    for result, row, label in zip(results, cached, model.head.predict(data["features"]),
                                  strict=True):
        assert result["class"] == feature_cache.classes[int(label)]
        assert result["probability"] == pytest.approx(row[int(label)], abs=1e-4)
        by_class = {entry["class"]: entry["probability"] for entry in result["top"]}
        np.testing.assert_allclose([by_class[c] for c in feature_cache.classes], row, atol=1e-4)
        assert [e["probability"] for e in result["top"]] == sorted(by_class.values(),
                                                                   reverse=True)


def test_regression_predicts_the_cached_value(models: dict[str, Path], price_cache: Cache
                                              ) -> None:
    files, data = cached_rows(price_cache, "val")
    model = load_model(models["prices"])
    expected = model.head.predict(data["features"][:4])
    results = bottleneck.predict(models["prices"], files[:4])
    np.testing.assert_allclose([r["value"] for r in results], expected, rtol=1e-4)


def test_heads_without_probabilities_give_scores(models: dict[str, Path],
                                                 feature_cache: Cache) -> None:
    files, _ = cached_rows(feature_cache)
    [result] = bottleneck.predict(models["linear-svm"], files[:1], top=2)
    assert "score" in result and "probability" not in result
    assert len(result["top"]) == 2 and result["top"][0]["class"] == result["class"]


@pytest.fixture
def mixed_folder(split_images: Path, tmp_path: Path) -> Path:
    """Two good images (one nested) plus an unreadable file and an empty one."""
    folder = tmp_path / "inbox"
    (folder / "nested").mkdir(parents=True)
    shutil.copy(split_images / "test" / "circle" / "000.jpg", folder / "a.jpg")
    shutil.copy(split_images / "test" / "stripes" / "004.png", folder / "nested" / "b.png")
    (folder / "notes.jpg").write_text("not an image")
    (folder / "empty.png").write_bytes(b"")
    (folder / ".hidden.jpg").write_text("skipped")
    return folder


def test_cli_predict_walks_folders_and_reports_unreadable_files(
    models: dict[str, Path], mixed_folder: Path
) -> None:
    result = CliRunner().invoke(main, ["predict", str(models["logreg"]), str(mixed_folder)])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{mixed_folder / 'a.jpg'}\tcircle\t")
    assert lines[1].startswith(f"{mixed_folder / 'nested' / 'b.png'}\tstripes\t")
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and all("cannot predict" in e for e in errors)
    assert any("empty file" in e for e in errors)
    assert "Traceback" not in result.stderr


def test_cli_predict_json_and_top(models: dict[str, Path], mixed_folder: Path) -> None:
    result = CliRunner().invoke(main, ["predict", str(models["dense"]),
                                       str(mixed_folder / "a.jpg"), "--json", "--top", "3"])
    assert result.exit_code == 0, result.stderr
    [entry] = json.loads(result.stdout)
    assert entry["class"] == "circle" and len(entry["top"]) == 3
    assert sum(e["probability"] for e in entry["top"]) == pytest.approx(1.0, abs=1e-5)


def test_cli_predict_fails_only_when_nothing_is_readable(models: dict[str, Path],
                                                         mixed_folder: Path) -> None:
    result = CliRunner().invoke(main, ["predict", str(models["logreg"]),
                                       str(mixed_folder / "notes.jpg"),
                                       str(mixed_folder / "missing.jpg")])
    assert result.exit_code == 2
    assert "none of the 2 inputs could be read" in result.stderr
    assert "no such file or folder" in result.stderr and "Traceback" not in result.stderr


def test_predict_refuses_a_changed_model(models: dict[str, Path], tmp_path: Path,
                                         mixed_folder: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(models["logreg"], copy)
    info = json.loads((copy / "head.json").read_text())
    info["classes"] = ["x", "y", "z"]
    (copy / "head.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match="head.json changed since"):
        bottleneck.predict(copy, [mixed_folder / "a.jpg"])
