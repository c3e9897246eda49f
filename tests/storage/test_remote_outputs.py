"""Models, predictions, reports and exports at URLs on the S3 emulator: each is made in local
staging and uploaded whole (its marker last); reading one downloads it whole first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cli import main
from bottleneck.errors import UserError
from tests.conftest import write_class_folder


def test_extract_fit_predict_report_export_on_s3(s3, vgg16_he_weights, tmp_path: Path) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(**s3.options())
    base = f"s3://{s3.new_bucket()}"
    images = write_class_folder(tmp_path / "images", per_class=4)
    bottleneck.extract(str(images), "vgg16", out=f"{base}/cache", weights=str(vgg16_he_weights),
                       image_size=32, shard_size=6, progress=False)
    fitted = bottleneck.fit(f"{base}/cache", head="logreg", out=f"{base}/model")
    assert fitted.model_dir == f"{base}/model"
    assert fs.exists(f"{base}/model/head.json") and fs.exists(f"{base}/model/checksums.json")
    head = json.loads(fs.cat_file(f"{base}/model/head.json"))
    assert head["cache"] == f"{base}/cache" == head["lineage"]["cache"]["path"]
    with pytest.raises(UserError, match="already holds a model directory"):
        bottleneck.fit(f"{base}/cache", head="logreg", out=f"{base}/model")
    fs.pipe_file(f"{base}/other/notes.txt", b"mine")
    with pytest.raises(UserError, match="is not a bottleneck model directory"):
        bottleneck.fit(f"{base}/cache", head="logreg", out=f"{base}/other", overwrite=True)
    assert fs.cat_file(f"{base}/other/notes.txt") == b"mine"

    run = CliRunner().invoke(main, ["predict", f"{base}/model",
                                    str(images / "circle" / "000.jpg"), "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)[0]["class"] in ("circle", "square", "stripes")
    run = CliRunner().invoke(main, ["report", f"{base}/model", "--out",
                                    f"{base}/reports/report.html"])
    assert run.exit_code == 0, run.output
    assert b"<html" in fs.cat_file(f"{base}/reports/report.html")[:2000].lower()
    exported = bottleneck.export(f"{base}/model", f"{base}/exports/model.keras")
    assert exported.path == f"{base}/exports/model.keras"
    lineage = json.loads(fs.cat_file(f"{base}/exports/model.keras.lineage.json"))
    assert lineage["export"]["path"] == f"{base}/exports/model.keras"
    assert lineage["cache"]["path"] == f"{base}/cache"
    with pytest.raises(UserError, match="already exists"):
        bottleneck.export(f"{base}/model", f"{base}/exports/model.keras")
