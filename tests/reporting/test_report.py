"""bottleneck report: one self-contained page whose every number is what evaluate and bench
print, made from real caches, model directories and a bench folder."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import bottleneck
from bottleneck.benching.leaderboard import format_table, table_rows
from bottleneck.cache import Cache
from bottleneck.models.predictions import PREDICTIONS_DIR

pytest_plugins = ["tests.heads_fixtures"]

html5lib = pytest.importorskip("html5lib")
DATA_URI = re.compile(r'src="data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def made(feature_cache: Cache, price_cache: Cache, tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, Any]:
    """Three models (probabilities, decision scores, regression), a bench folder, what
    evaluate and bench printed for them, and one report of them all."""
    root = tmp_path_factory.mktemp("report")
    models = {"logreg": root / "logreg", "svm": root / "linear-svm", "price": root / "price"}
    bottleneck.fit(feature_cache, "logreg", models["logreg"])
    bottleneck.fit(feature_cache, "linear-svm", models["svm"])
    bottleneck.fit(price_cache, "ridge", models["price"], task="regress")
    printed = {name: bottleneck.evaluate(path, split="test") for name, path in models.items()}
    bench = bottleneck.bench([feature_cache.root], heads=["logreg", "ridge"], out=root / "bench",
                             jobs=1)
    out = root / "report.html"
    result = bottleneck.report([models["logreg"], models["svm"], models["price"],
                                root / "bench"], out, json_out=root / "report.json")
    return {"root": root, "models": models, "printed": printed, "bench": bench, "out": out,
            "result": result, "html": out.read_text(encoding="utf-8"),
            "json": json.loads((root / "report.json").read_text())}


def _tree(html: str) -> Any:
    return html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=False)


def _section(tree: Any, section_id: str) -> Any:
    found = tree.find(f".//section[@id='{section_id}']")
    assert found is not None, section_id
    return found


def _model(doc: dict[str, Any], root: Path) -> dict[str, Any]:
    return next(m for c in doc["caches"] for m in c["models"] if m["root"] == str(root))


def _text(element: Any) -> str:
    return "".join(element.itertext()).strip()


def test_page_is_strict_html_with_no_network_reference(made: dict[str, Any]) -> None:
    html5lib.HTMLParser(strict=True).parse(made["html"])
    assert not re.search(r"https?://", made["html"])
    assert "<link" not in made["html"] and "@import" not in made["html"]
    assert made["out"].stat().st_size < 8 << 20
    assert "report of 2 caches, 4 models, 1 bench" in made["result"].summary()


def test_every_embedded_image_decodes(made: dict[str, Any]) -> None:
    images = DATA_URI.findall(made["html"])
    assert len(images) == made["html"].count("<img ")
    assert len(images) > 50  # thumbnails and plots
    for kind, data in images:
        image = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
        assert image.format == kind.upper()
        image.load()
        assert image.width > 0 and image.height > 0


@pytest.mark.parametrize("name", ["logreg", "svm", "price"])
def test_every_number_is_what_evaluate_printed(made: dict[str, Any], name: str) -> None:
    evaluation = made["printed"][name]
    model = _model(made["json"], made["models"][name])
    assert model["predictions"]["test"] == "read from the stored predictions"
    view = next(v for v in model["splits"] if v["split"] == "test")
    assert view["metrics"] == json.loads(json.dumps(evaluation.metrics))
    section = _section(_tree(made["html"]), model["id"])
    assert evaluation.report() in [_text(p) for p in section.iter("pre")]
    printed = evaluation.report().splitlines()
    split = section.find(".//div[@data-split='test']")
    assert _text(split.find("h3")).split() == printed[0].split()
    tables = split.findall("table")
    if evaluation.task == "regress":
        cells = {_text(r[0]): _text(r[1]) for r in tables[0].iter("tr")}
        assert (cells["MSE"], cells["RMSE"], cells["MAE"], cells["R²"]) == tuple(
            printed[1].split()[i] for i in (1, 3, 5, 7))
        return
    summary = {_text(r[0]): _text(r[1]) for r in tables[0].iter("tr")}
    assert f"{evaluation.metrics['accuracy']:.3f}" == summary["accuracy"]
    assert printed[-len(evaluation.classes) - 2].split()[2].rstrip(",") == summary["macro F1"]
    rows = [[_text(td) for td in tr] for tr in tables[1].find("tbody")]
    expected = [line.split() for line in printed[2:2 + len(evaluation.classes)]]
    assert rows == expected


def test_scores_and_calibration_follow_what_the_head_can_do(made: dict[str, Any]) -> None:
    logreg = _model(made["json"], made["models"]["logreg"])
    svm = _model(made["json"], made["models"]["svm"])
    assert "calibration" not in logreg and logreg["reliability_note"].startswith(
        "No reliability diagram: test has 18 rows")  # too few for one
    assert "calibration" not in svm and svm["mistakes"]["by"].startswith("decision margin")
    assert logreg["mistakes"]["by"] == "probability of the predicted class"
    for model in (logreg, svm):
        predicted = [r["predicted"] != r["truth"] for r in model["mistakes"]["rows"]]
        assert all(predicted) and len(predicted) == min(12, model["mistakes"]["wrong"])
        scores = [r["score"] for r in model["mistakes"]["rows"]]
        assert scores == sorted(scores, reverse=True)
        for row in model["mistakes"]["rows"]:
            assert len(row["neighbours"]) == 3
            assert all(n["split"] == "train" for n in row["neighbours"])
    price = _model(made["json"], made["models"]["price"])
    errors = [r["score"] for r in price["mistakes"]["rows"]]
    assert errors == sorted(errors, reverse=True) and len(errors) == 12


def test_the_leaderboard_is_what_bench_printed(made: dict[str, Any]) -> None:
    bench = made["bench"]
    section = made["json"]["benches"][0]
    headings, cells = table_rows(bench)
    assert (section["headings"], section["cells"]) == (headings, cells)
    assert section["lines"] == format_table(bench).splitlines()[len(cells) + 2:]
    table = _section(_tree(made["html"]), "bench-0").find(".//table")
    assert [[_text(td) for td in tr] for tr in table.find("tbody")] == cells
    assert "leak check: no identical images across splits" in section["lines"]


def test_bench_keeps_its_chosen_model_and_its_predictions(made: dict[str, Any],
                                                          feature_cache: Cache) -> None:
    bench_dir = made["root"] / "bench" / "best-model"
    best = made["bench"]["rows"][0]
    assert made["bench"]["model"]["variant"] == best["variant"]
    metrics = json.loads((bench_dir / "metrics.json").read_text())
    assert metrics["val"]["accuracy"] == best["val_accuracy"]  # one seed: the same fit
    assert metrics["test"]["accuracy"] == best["test_accuracy"]
    assert len(list((bench_dir / PREDICTIONS_DIR).glob("*.npz"))) == 2
    model = _model(made["json"], bench_dir)
    assert model["origin"] == str(made["root"] / "bench")
    assert all(v == "read from the stored predictions" for v in model["predictions"].values())


def test_cache_sections_say_what_the_cache_holds(made: dict[str, Any],
                                                 feature_cache: Cache) -> None:
    cache = next(c for c in made["json"]["caches"] if c["root"] == str(feature_cache.root))
    assert cache["facts"]["backbone"] == "vgg16 @ 32 px"
    assert cache["counts"][-1][1:] == [feature_cache.split_counts()[s] for s in cache["splits"]]
    assert cache["failures"] == [] and cache["rows"]["loaded"] == cache["rows"]["view0_rows"]
    steps = [s["step"] for item in cache["lineage"] for s in item["steps"]]
    assert steps.count("cache") == 3 and steps.count("head") == 3
    assert cache["leaks"]["exact"] == [] and cache["leaks"]["near"]["total"] == 0
    errors = cache["label_errors"]
    assert errors["rows"] == 72 and errors["folds"] == 5 and errors["flagged"] == len(
        errors["all"])
    assert cache["map"]["n"] == feature_cache.rows and cache["map"]["marked"] >= 0


def test_the_table_of_contents_names_each_cache(made: dict[str, Any]) -> None:
    names = [Path(c["root"]).name for c in made["json"]["caches"]]
    titles = [t["title"] for t in made["json"]["toc"]]
    assert len(set(names)) == 2
    for name in names:
        assert f"Cache {name}" in titles
        for part in ("label errors", "near-duplicates", "feature map"):
            assert f"{name}: {part}" in titles


def test_the_browser_renders_every_image(made: dict[str, Any], tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (make test installs it as root: apt-get install "
                    "chromium)")
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=1200,1600"]
    url = made["out"].resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    images = made["html"].count("<img ")
    status = re.search(r'<p id="report-status"[^>]*>([^<]*)</p>', dom)
    assert status is not None, dom[-500:]
    assert status.group(1) == f"report ready: {images} of {images} images loaded"
    assert 'data-state="ready"' in status.group(0)
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=120,
                   check=True)
    pixels = np.asarray(Image.open(shot).convert("L"), np.float64)
    assert pixels.shape == (1600, 1200)
    assert pixels.std() > 20 and len(np.unique(pixels)) > 50  # text, tables and thumbnails


def test_a_second_report_reads_the_stored_predictions_again(made: dict[str, Any],
                                                            tmp_path: Path) -> None:
    logreg = made["models"]["logreg"]
    stored = sorted((logreg / PREDICTIONS_DIR).glob("*.npz"))
    assert [p.name.split("-")[0] for p in stored] == ["test", "val"]
    before = {p: p.stat().st_mtime_ns for p in stored}
    result = bottleneck.report(logreg, tmp_path / "again.html")
    model = result.document["caches"][0]["models"][0]
    assert set(model["predictions"].values()) == {"read from the stored predictions"}
    assert {p: p.stat().st_mtime_ns for p in stored} == before


def test_missing_sources_leave_thumbnails_out_and_nothing_fails(feature_cache: Cache,
                                                                tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(feature_cache.root, moved)
    manifest = json.loads((moved / "manifest.json").read_text())
    manifest["source"]["root"] = str(tmp_path / "gone")
    (moved / "manifest.json").write_text(json.dumps(manifest))
    result = bottleneck.report(moved, tmp_path / "moved.html")
    html = (tmp_path / "moved.html").read_text()
    assert 'class="thumb"' not in html and "source not found" in html
    cache = result.document["caches"][0]
    assert cache["source_problem"].startswith("source not found")
    near = cache["leaks"]["near"]
    assert near["pixels_compared"] == 0 and near["by_features_alone"] == near["candidates"]
    assert cache["label_errors"]["flagged"] >= 0 and cache["map"]["n"] == feature_cache.rows


def test_a_cache_bigger_than_memory_is_still_analysed_whole(feature_cache: Cache,
                                                            tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """The report streams the features (the index and a 64-d projection stay in memory):
    a memory limit below the features' size no longer makes it sample."""
    monkeypatch.setenv("BOTTLENECK_MEMORY_LIMIT", "160K")  # the features take 184 KiB
    cache = tmp_path / "cache"
    shutil.copytree(feature_cache.root, cache)
    result = bottleneck.report(cache, tmp_path / "whole.html", json_out=tmp_path / "whole.json")
    doc = json.loads((tmp_path / "whole.json").read_text())["caches"][0]
    assert doc["rows"] == {"loaded": feature_cache.rows, "view0_rows": feature_cache.rows}
    assert doc["map"]["n"] == feature_cache.rows and "sampled" not in result.summary()
    assert (cache / "index" / "index.json").is_file()  # the index it searched, kept


def test_cli_report_and_its_one_line_refusals(made: dict[str, Any], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bottleneck.cli import main

    run = CliRunner().invoke
    out = tmp_path / "cli.html"
    result = run(main, ["report", str(made["models"]["svm"]), "--out", str(out), "--json",
                        str(tmp_path / "cli.json")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("report of 1 cache, 1 model, 0 benches → ")
    assert json.loads((tmp_path / "cli.json").read_text())["caches"][0]["models"]
    (tmp_path / "plain").mkdir()
    for args, message in (
            ([str(tmp_path / "nothing")], "not found; give a cache, a model directory or a "
                                          "bench folder"),
            ([str(tmp_path / "plain")], "is not a cache, a model directory or a bench folder"),
            ([str(made["models"]["svm"]), "--out", str(tmp_path / "no" / "r.html")],
             "does not exist; create it first")):
        if "--out" not in args:
            args += ["--out", str(tmp_path / "refused.html")]
        result = run(main, ["report", *args])
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "refused.html").exists()
