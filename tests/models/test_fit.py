"""fit / evaluate: MODEL_DIR contents, checksums, safe loading, params and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import bottleneck
from bottleneck.cache import Cache
from bottleneck.cli import main
from bottleneck.errors import UserError
from bottleneck.heads import class_scores
from bottleneck.heads.hyperparams import collect_params, parse_param_pairs, parse_value
from bottleneck.models.fit import FitResult, default_task
from bottleneck.models.memory import check_fits_in_memory
from bottleneck.models.model_dir import load_model, write_checksums

pytest_plugins = ["tests.heads_fixtures"]

DENSE_QUICK = {"epochs": 12, "hidden": (64,)}


@pytest.fixture(scope="module")
def logreg_dir(feature_cache: Cache, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "logreg"
    bottleneck.fit(feature_cache, "logreg", out, params={"C": 0.5}, progress=False)
    return out


@pytest.fixture(scope="module")
def dense_dir(feature_cache: Cache, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "dense"
    bottleneck.fit(feature_cache, "dense", out, params=DENSE_QUICK, progress=False)
    return out


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()


def test_model_dir_holds_head_metrics_plots_and_checksums(
    logreg_dir: Path, feature_cache: Cache
) -> None:
    files = {p.name for p in logreg_dir.iterdir()}
    assert {"head.skops", "head.json", "metrics.json", "confusion_val.png",
            "confusion_test.png", "checksums.json"} <= files
    info = json.loads((logreg_dir / "head.json").read_text())
    assert info["head"] == "logreg" and info["task"] == "classify"
    assert info["params"] == {"C": 0.5} and info["resolved_params"]["C"] == 0.5
    assert info["classes"] == feature_cache.classes
    assert info["config"] == feature_cache.config
    assert info["cache"] == str(feature_cache.root.resolve())
    assert info["feature_shape"] == [512]
    sums = json.loads((logreg_dir / "checksums.json").read_text())["files"]
    assert set(sums) == files - {"checksums.json"}
    for name in ("confusion_val.png", "confusion_test.png"):
        assert_png(logreg_dir / name)


def test_metrics_json_has_per_split_scores(logreg_dir: Path, feature_cache: Cache) -> None:
    metrics = json.loads((logreg_dir / "metrics.json").read_text())
    assert set(metrics) == {"val", "test"}
    for split, scores in metrics.items():
        n = feature_cache.split_counts()[split]
        assert scores["n"] == n
        assert scores["accuracy"] >= 0.8
        assert set(scores["per_class"]) == set(feature_cache.classes)
        for row in scores["per_class"].values():
            assert {"precision", "recall", "f1", "support"} <= set(row)
        matrix = np.array(scores["confusion_matrix"])
        assert matrix.shape == (3, 3) and matrix.sum() == n
        assert np.trace(matrix) / n == pytest.approx(scores["accuracy"])
        assert scores["log_loss"] > 0


def test_dense_model_dir_has_history_and_curves(dense_dir: Path, feature_cache: Cache) -> None:
    for name in ("model.keras", "dense.json", "history.json", "training_curves.png"):
        assert (dense_dir / name).is_file()
    assert_png(dense_dir / "training_curves.png")
    history = json.loads((dense_dir / "history.json").read_text())
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(history)
    model = load_model(dense_dir)
    data = feature_cache.load("test")
    accuracy = (model.head.predict(data["features"]) == data["labels"]).mean()
    assert accuracy == pytest.approx(model.metrics()["test"]["accuracy"])


def test_regression_uses_targets_and_reports_price_units(
    price_cache: Cache, tmp_path: Path
) -> None:
    assert default_task("ridge", price_cache) == "regress"
    assert default_task("logreg", price_cache) == "classify"
    result = bottleneck.fit(price_cache, "ridge", tmp_path / "ridge", progress=False)
    assert result.task == "regress"
    val = result.metrics["val"]
    assert {"mse", "rmse", "mae", "r2", "n"} <= set(val)
    assert val["r2"] > 0.8 and val["mae"] < 10  # prices 20..80 with noise sigma 3
    assert_png(tmp_path / "ridge" / "predictions_test.png")
    ceiling = result.metrics["test"]["r2_ceiling"]  # the true class price's R²
    assert 0.9 < ceiling <= 1.0 and result.metrics["test"]["r2"] <= ceiling + 0.05
    assert "ceiling R²" in result.summary()
    assert json.loads((tmp_path / "ridge" / "head.json").read_text())["targets"]["kind"] == \
        "synthetic-prices"


def test_dense_streams_regression_from_the_shards(price_cache: Cache, tmp_path: Path) -> None:
    result = bottleneck.fit(price_cache, "dense", tmp_path / "dense", stream=True,
                            params={"epochs": 40, "hidden": (64,), "dropout": 0.2,
                                    "patience": 10}, progress=False)
    assert result.streamed and result.task == "regress"
    assert result.metrics["val"]["r2"] > 0.5
    targets = price_cache.load("val")["targets"]
    assert result.metrics["val"]["mae"] < targets.std()  # un-standardised: price units


def test_regression_without_targets_says_how_to_add_them(
    feature_cache: Cache, tmp_path: Path
) -> None:
    with pytest.raises(UserError, match="bottleneck targets .* --synthetic-prices"):
        bottleneck.fit(feature_cache, "ridge", tmp_path / "m", task="regress")


def test_changed_artifact_is_refused(logreg_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(logreg_dir, copy)
    load_model(copy)  # intact
    with open(copy / "head.skops", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(UserError, match="head.skops changed since .*sha256"):
        load_model(copy)
    (copy / "checksums.json").unlink()
    with pytest.raises(UserError, match="no readable checksums.json"):
        load_model(copy)


def test_keras_model_loads_in_safe_mode(dense_dir: Path, tmp_path: Path) -> None:
    import keras

    copy = tmp_path / "model"
    shutil.copytree(dense_dir, copy)
    inputs = keras.Input((512,))
    outputs = keras.layers.Lambda(lambda x: x[:, :3])(inputs)
    keras.Model(inputs, outputs).save(copy / "model.keras")
    write_checksums(copy)  # checksums pass: only safe mode stands in the way
    with pytest.raises(UserError, match="safe mode"):
        load_model(copy)


def test_evaluate_reproduces_fit_metrics(logreg_dir: Path) -> None:
    evaluation = bottleneck.evaluate(logreg_dir, split="test")
    recorded = json.loads((logreg_dir / "metrics.json").read_text())["test"]
    assert evaluation.metrics.pop("log_loss") == pytest.approx(recorded.pop("log_loss"))
    assert evaluation.metrics == recorded
    assert "confusion matrix" in evaluation.report()


def test_evaluate_refuses_a_cache_with_other_features(
    logreg_dir: Path, spatial_cache: Cache
) -> None:
    with pytest.raises(UserError, match="holds 4×4×256 features but the model was trained on 512"):
        bottleneck.evaluate(logreg_dir, spatial_cache)


def test_memory_check_names_the_streaming_head(feature_cache: Cache) -> None:
    with pytest.raises(UserError, match="use --head linear .*--head dense"):
        check_fits_in_memory(feature_cache, "train", "svm", available=1000)
    check_fits_in_memory(feature_cache, "train", "svm", available=1 << 30)


def test_out_dir_is_protected(logreg_dir: Path, feature_cache: Cache, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="already holds a model; pass overwrite=True"):
        bottleneck.fit(feature_cache, "logreg", logreg_dir)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a bottleneck model directory"):
        bottleneck.fit(feature_cache, "logreg", other)
    result = bottleneck.fit(feature_cache, "ridge", tmp_path / "fresh", progress=False)
    assert isinstance(result, FitResult) and "ridge (classify): val accuracy" in result.summary()


@pytest.mark.parametrize(("text", "value"), [
    ("0.1", 0.1), ("1e-4", 1e-4), ("30", 30), ("true", True), ("False", False),
    ("none", None), ("None", None), ("512,128", (512, 128)), ("(256,)", (256,)),
    ("256,", (256,)), ("[64, 32]", (64, 32)), ("relu", "relu"), ("()", ()),
])
def test_param_values_are_typed(text: str, value: object) -> None:
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_params_file_and_pairs_merge(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("hidden: [512, 128]\ndropout: 0.3\n")
    (tmp_path / "p.json").write_text('{"C": 2.0, "class_weight": "balanced"}')
    assert collect_params(["dropout=0.1"], tmp_path / "p.yaml") == {
        "hidden": (512, 128), "dropout": 0.1}
    assert collect_params((), tmp_path / "p.json") == {"C": 2.0, "class_weight": "balanced"}
    (tmp_path / "bad.yaml").write_text("- just\n- a list\n")
    with pytest.raises(UserError, match="must hold a mapping"):
        collect_params((), tmp_path / "bad.yaml")
    with pytest.raises(UserError, match="must look like key=value"):
        parse_param_pairs(["C"])


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_fit_and_evaluate(feature_cache: Cache, tmp_path: Path) -> None:
    (tmp_path / "params.json").write_text('{"C": 0.2}')
    code, out, err = run_cli("fit", feature_cache.root, "--head", "logreg", "--params",
                             tmp_path / "params.json", "-p", "max_iter=500",
                             "--out", tmp_path / "m", "-q")
    assert code == 0, err
    assert "logreg (classify): val accuracy" in out and "test accuracy" in out
    info = json.loads((tmp_path / "m" / "head.json").read_text())
    assert info["params"] == {"C": 0.2, "max_iter": 500}
    code, out, err = run_cli("evaluate", tmp_path / "m", feature_cache.root, "--split", "val")
    assert code == 0, err
    assert out.startswith("val: accuracy") and "confusion matrix" in out
    code, out, _ = run_cli("evaluate", tmp_path / "m", "--json")
    assert code == 0 and json.loads(out)["metrics"]["n"] == feature_cache.split_counts()["test"]


def test_cli_dense_prints_epochs_unless_quiet(feature_cache: Cache, tmp_path: Path) -> None:
    code, out, err = run_cli("fit", feature_cache.root, "--head", "dense", "-p", "epochs=2",
                             "-p", "hidden=16,", "--out", tmp_path / "m")
    assert code == 0, err
    assert "Epoch 1/2" in out and "dense (classify)" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--head", "nope"], "unknown head 'nope'; choose one of"),
    (["--head", "logreg", "--task", "regress"], "cannot regress"),
    (["--head", "ridge", "--task", "regress"], "has no targets"),
    (["--head", "logreg", "-p", "gamma=1"], "has no parameter 'gamma'"),
    (["--head", "logreg", "-p", "C=-1"], "bad parameter value for head 'logreg'"),
    (["--head", "dense", "-p", "hidden=wide"], "bad parameter value for head 'dense'"),
    (["--head", "logreg", "-p", "C"], "must look like key=value"),
    (["--head", "svm", "--stream"], "cannot stream"),
])
def test_cli_fit_errors_are_one_line(feature_cache: Cache, tmp_path: Path, args: list[str],
                                     message: str) -> None:
    code, _, err = run_cli("fit", feature_cache.root, *args, "--out", tmp_path / "m", "-q")
    assert code == 2
    assert message in err and err.startswith("error: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_evaluate_errors_are_one_line(logreg_dir: Path, spatial_cache: Cache,
                                          tmp_path: Path) -> None:
    for args, message in [
        ([tmp_path / "missing"], "model directory not found"),
        ([spatial_cache.root], "not a bottleneck model directory"),
        ([logreg_dir, spatial_cache.root], "features but the model was trained on"),
    ]:
        code, _, err = run_cli("evaluate", *args)
        assert code == 2 and message in err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_cached_scores_match_for_every_row(logreg_dir: Path, feature_cache: Cache) -> None:
    model = load_model(logreg_dir)
    features = feature_cache.load("val")["features"]
    kind, scores = class_scores(model.head, features, 3)
    assert kind == "probability"
    np.testing.assert_allclose(scores, model.head.predict_proba(features))


def test_the_confusion_png_shades_each_cell_by_its_count(tmp_path: Path) -> None:
    from bottleneck.models.confusion_png import CELL, cell_colour, confusion_png

    matrix = [[9, 0, 1], [0, 5, 0], [3, 0, 0]]
    path = confusion_png(matrix, ["cat", "dog", "a long class name"], tmp_path / "c.png",
                         "logreg on test: accuracy 0.78")
    assert_png(path)
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    # the grid's top-left corner is the first pixel of the largest count's colour
    darkest = np.array(cell_colour(9, 9))
    ys, xs = np.nonzero((pixels == darkest).all(axis=2))
    top, left = ys.min(), xs.min()
    for row, counts in enumerate(matrix):
        for col, count in enumerate(counts):
            corner = pixels[top + row * CELL + 2, left + col * CELL + 2]
            assert tuple(corner) == cell_colour(count, 9), (row, col)
    assert cell_colour(0, 9) == (247, 251, 255) and cell_colour(9, 9) == (8, 48, 107)


def test_a_thousand_class_confusion_png_stays_small_and_shaded(tmp_path: Path) -> None:
    """Drawn at 44 px a cell with a million counts written in, 1,000 classes made a 6 GB
    image (and minutes of drawing) in every fit: the cells shrink to fit 2,000 pixels, the
    counts and names are left out, and each cell keeps its shade."""
    from bottleneck.models.confusion_png import cell_colour, cell_size, confusion_png

    n = 1000
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 5, (n, n))
    matrix[np.arange(n), np.arange(n)] = 50
    path = confusion_png(matrix.tolist(), [f"class{i}" for i in range(n)], tmp_path / "c.png",
                         "linear on test")
    cell = cell_size(n)
    assert cell == 2
    with Image.open(path) as image:
        assert max(image.size) <= 2200
        pixels = np.asarray(image.convert("RGB"))
    ys, xs = np.nonzero((pixels == np.array(cell_colour(50, 50))).all(axis=2))
    top, left = ys.min(), xs.min()
    for row, col in [(0, 0), (0, 1), (17, 400), (999, 998), (999, 999)]:
        corner = pixels[top + row * cell, left + col * cell]
        assert tuple(corner) == cell_colour(matrix[row, col], 50), (row, col)
