"""finetune: the assembled model equals the head before training; training moves only the
unfrozen top of the backbone, in inference mode; the result is a MODEL_DIR like any other."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import bottleneck
from bottleneck.cache import Cache, open_cache
from bottleneck.cli import main
from bottleneck.errors import UserError
from bottleneck.extraction import ExtractConfig, FeatureExtractor
from bottleneck.models.assemble import assemble
from bottleneck.models.finetune_parts import trainer
from bottleneck.models.image_data import cache_images, split_dataset
from bottleneck.models.model_dir import load_model
from bottleneck.storage.atomic import sha256_file
from tests.finetune_fixtures import FINETUNE, KERAS_HEADS, reference

pytest_plugins = ["tests.heads_fixtures", "tests.finetune_fixtures"]


@pytest.mark.parametrize(("name", "task"), KERAS_HEADS)
def test_assembled_model_equals_the_head_on_cached_rows(
        name: str, task: str, head_dirs: dict[tuple[str, str], Path]) -> None:
    model = load_model(head_dirs[name, task])
    assembled = assemble(model)
    cache = open_cache(model.info["cache"])
    source, data = cache_images(cache, task, ("val",), assembled.image_size)
    stream, order = split_dataset(source, data["val"], assembled.image_size, batch_size=10)
    got = assembled.model.predict(stream, verbose=0)
    rows = cache.load("val")["features"][order]
    expected = reference(model.head, task, rows, len(model.classes))
    scale = 1.0 if task == "classify" else float(np.abs(expected).max())
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4 * scale)


def test_finetune_writes_a_model_dir_with_lineage_and_both_scores(
        finetuned: Any, small_heads: dict[str, Path], spatial_cache: Cache) -> None:
    root, head_dir = finetuned.model_dir, small_heads["logreg"]
    for name in ("model.keras", "metrics.json", "metrics_before.json", "history.json",
                 "training_curves.png", "confusion_test.png", "head.json", "checksums.json"):
        assert (root / name).is_file(), name
    info = json.loads((root / "head.json").read_text())
    assert info["input"] == "images" and info["head"] == "logreg"
    lineage = info["lineage"]
    assert lineage["cache"]["manifest_sha256"] == sha256_file(spatial_cache.root /
                                                              "manifest.json")
    assert lineage["head"]["head_json_sha256"] == sha256_file(head_dir / "head.json")
    assert lineage["finetuned"]["model_keras_sha256"] == sha256_file(root / "model.keras")
    assert info["finetune"]["unfrozen"]["trainable_layers"] == FINETUNE["unfreeze_top"]
    assert info["finetune"]["augment"] == {"flip": "horizontal", "zoom": 0.1}
    # before training the assembled model is the head: the head's own scores
    head_metrics = json.loads((head_dir / "metrics.json").read_text())
    for split in ("val", "test"):
        assert finetuned.before[split]["accuracy"] == head_metrics[split]["accuracy"]
        assert finetuned.before[split]["log_loss"] == pytest.approx(
            head_metrics[split]["log_loss"], abs=1e-4)
    history = json.loads((root / "history.json").read_text())
    assert len(history["val_loss"]) == info["finetune"]["epochs_run"] == 2


def _changed_layers(tuned: Any, original: Any) -> list[bool]:
    """Per backbone layer with weights: whether any of them differs from the original's."""
    return [not all(np.array_equal(a, b) for a, b in zip(mine.get_weights(),
                                                          theirs.get_weights(), strict=True))
            for mine, theirs in zip(tuned.layers, original.layers, strict=True)]


def test_fine_tuning_never_changes_the_frozen_layers(finetuned: Any) -> None:
    model = load_model(finetuned.model_dir)
    tuned = model.head.model_.get_layer("vgg16_features")
    original = FeatureExtractor(ExtractConfig.from_dict(model.config)).model
    first_trained = finetuned.settings["unfrozen"]["index"]
    changed = _changed_layers(tuned, original)
    assert not any(changed[:first_trained])
    if finetuned.settings["best_epoch"]:  # a kept epoch: the top trained
        assert any(changed[first_trained:])
    else:  # the start was kept: nothing changed
        assert not any(changed)


def test_one_training_step_moves_the_unfrozen_top_and_nothing_below(
        small_heads: dict[str, Path]) -> None:
    """The same parts finetune trains (assemble → unfreeze → trainer), one epoch, no
    selection on val: deterministic, whatever the tiny val set would prefer."""
    import keras

    from bottleneck.models.finetune_parts import unfreeze

    model = load_model(small_heads["logreg"])
    assembled = assemble(model)
    unfrozen = unfreeze(assembled.backbone, unfreeze_top=FINETUNE["unfreeze_top"])
    cache = open_cache(model.info["cache"])
    source, data = cache_images(cache, "classify", ("train",), assembled.image_size)
    train, _ = split_dataset(source, data["train"], assembled.image_size, 16, seed=0)
    trained = trainer(assembled.preprocess, assembled.backbone, assembled.head)
    trained.compile(keras.optimizers.RMSprop(1e-3), "sparse_categorical_crossentropy")
    trained.fit(train, epochs=1, verbose=0)
    original = FeatureExtractor(ExtractConfig.from_dict(model.config)).model
    changed = _changed_layers(assembled.backbone, original)
    with_weights = [bool(layer.get_weights()) for layer in original.layers]
    assert not any(changed[:unfrozen.index])
    assert any(with_weights[unfrozen.index:])
    assert all(c for c, w in zip(changed[unfrozen.index:], with_weights[unfrozen.index:],
                                 strict=True) if w)


def test_the_backbone_trains_in_inference_mode() -> None:
    """BatchNorm's moving statistics stay put while the layers around it learn."""
    import keras

    pixels = keras.Input((8, 8, 3))
    preprocess = keras.Model(pixels, keras.layers.Rescaling(1 / 255)(pixels))
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    backbone = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    features = keras.Input((4,))
    head = keras.Model(features, keras.layers.Dense(2, activation="softmax")(features))
    model = trainer(preprocess, backbone, head)
    model.compile("sgd", "sparse_categorical_crossentropy")
    bn, conv = backbone.get_layer("bn"), backbone.get_layer("conv")
    stats = [w.copy() for w in (bn.moving_mean.numpy(), bn.moving_variance.numpy())]
    kernel = conv.kernel.numpy().copy()
    rng = np.random.default_rng(0)
    model.fit(rng.uniform(0, 255, (16, 8, 8, 3)), rng.integers(0, 2, 16), epochs=1, verbose=0)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), stats[0])
    np.testing.assert_array_equal(bn.moving_variance.numpy(), stats[1])
    assert not np.array_equal(conv.kernel.numpy(), kernel)


def test_evaluate_and_predict_use_the_fine_tuned_model(finetuned: Any, split_images: Path
                                                       ) -> None:
    evaluation = bottleneck.evaluate(finetuned.model_dir, split="test")
    assert evaluation.metrics["accuracy"] == finetuned.metrics["test"]["accuracy"]
    assert evaluation.metrics["log_loss"] == pytest.approx(finetuned.metrics["test"]["log_loss"],
                                                           abs=1e-6)
    files = sorted((split_images / "test" / "square").iterdir())[:3]
    results = bottleneck.predict(finetuned.model_dir, files, top=3)
    for result in results:
        assert sum(e["probability"] for e in result["top"]) == pytest.approx(1, abs=1e-5)
    assert [r["class"] for r in results] == ["square"] * 3
    assert bottleneck.load_model(finetuned.model_dir).takes_images


def test_cli_finetune_keeps_the_start_when_training_only_hurts(
        small_heads: dict[str, Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [
        "finetune", str(small_heads["dense"]), "--out", str(tmp_path / "ft"), "--optimizer",
        "sgd", "--learning-rate", "1000", "--epochs", "3", "--patience", "1",
        "--unfreeze-from", "block3_conv3"])
    assert result.exit_code == 0, result.output
    assert "kept the starting weights: no epoch of 1 improved val_loss; stopped after 1 of 3 " \
           "epochs, 1 without improvement (--patience)" in result.stdout
    assert "top 2 of 11" in result.stdout
    assert "Epoch 1/3 - " in result.stderr and "val_loss" in result.stderr  # one header line
    said = result.stderr.splitlines()  # what it does before the first epoch, in order
    assert said[0].startswith("built the model (vgg16 + dense head, top 2 of 11 backbone "
                              "layers trainable); decoding the 90 images of train, val, test")
    assert said[1].startswith("scoring the start on val, test, then training up to 3 epochs")
    after = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    before = json.loads((tmp_path / "ft" / "metrics_before.json").read_text())
    assert after == before


@pytest.mark.parametrize(("args", "message"), [
    (["--unfreeze-top", "2", "--unfreeze-from", "block3_conv1"], "not both"),
    (["--unfreeze-from", "block5_conv1"], "no layer 'block5_conv1'"),
    (["--unfreeze-top", "11"], "between 1 and 10"),
    (["--augment", "flip,blur=2"], "unknown augmentation 'blur'"),
    (["--augment", "zoom=2"], "fraction between 0 and 1"),
    (["--epochs", "0"], "must be positive"),
])
def test_cli_finetune_refuses_bad_settings_in_one_line(
        args: list[str], message: str, small_heads: dict[str, Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["finetune", str(small_heads["logreg"]),
                                       "--out", str(tmp_path / "ft"), *args])
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "ft").exists()


def test_heads_without_a_keras_form_and_fine_tuned_models_are_refused(
        feature_cache: Cache, finetuned: Any, tmp_path: Path) -> None:
    bottleneck.fit(feature_cache, "svm", tmp_path / "svm", progress=False)
    with pytest.raises(UserError, match="'svm' head cannot be expressed as Keras layers"):
        bottleneck.finetune(tmp_path / "svm", tmp_path / "ft")
    with pytest.raises(UserError, match="already fine-tuned"):
        bottleneck.finetune(finetuned.model_dir, tmp_path / "ft2")


@pytest.fixture(scope="module")
def own_cache(split_images: Path, vgg16_he_weights: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Cache:
    """A cache of a copy of the images, which the tests below may change."""
    root = tmp_path_factory.mktemp("changing")
    images = shutil.copytree(split_images / "val", root / "images")
    return bottleneck.extract(str(images), backbone="vgg16", out=root / "cache", image_size=32,
                              weights=str(vgg16_he_weights), progress=False)


@pytest.mark.parametrize(("change", "message"), [
    ("edit", "1 [a-z]+ image decodes to other pixels"), ("add", "holds 1 image the cache does not"),
    ("remove", "1 of the [a-z]+ images of .* is gone, moved or relabelled"),
    ("relabel", "1 of the [a-z]+ images of .* is gone, moved or relabelled")])
def test_changed_images_are_refused(change: str, message: str, own_cache: Cache,
                                    tmp_path: Path) -> None:
    folder = Path(own_cache.manifest.source["root"])
    backup = tmp_path / "backup"
    shutil.copytree(folder, backup)
    target = sorted((folder / "circle").glob("*.jpg"))[0]
    try:
        if change == "edit":
            with Image.open(target) as img:
                img.rotate(90).save(target)
        elif change == "add":
            shutil.copy(target, folder / "square" / "extra.jpg")
        elif change == "remove":
            target.unlink()
        else:
            shutil.move(target, folder / "square" / target.name)
        with pytest.raises(UserError, match=message):
            cache_images(own_cache, "classify", ("train", "val", "test"), 32)
    finally:
        shutil.rmtree(folder)
        shutil.copytree(backup, folder)
    source, data = cache_images(own_cache, "classify", ("train", "val", "test"), 32)
    assert sum(len(d) for d in data.values()) == own_cache.rows


def test_finetune_records_how_well_the_head_fits_its_train_rows(
        finetuned: Any, small_heads: dict[str, Path], spatial_cache: Cache) -> None:
    head = load_model(small_heads["logreg"]).head
    train = spatial_cache.load("train")
    accuracy = float(np.mean(head.predict(train["features"]) == train["labels"]))
    assert finetuned.settings["head_train"]["accuracy"] == pytest.approx(accuracy)
    assert finetuned.settings["head_train"]["log_loss"] >= 0


def test_summary_says_why_a_memorising_head_kept_its_start(finetuned: Any) -> None:
    from dataclasses import replace

    kept = replace(finetuned, settings=finetuned.settings | {
        "best_epoch": 0, "head_train": {"accuracy": 1.0, "log_loss": 0.002}})
    assert "already fits its train rows (accuracy 1.000, log loss 0.002)" in kept.summary()
    assert "--augment" not in kept.summary()  # this run already augmented
    plain = replace(kept, settings=kept.settings | {"augment": None})
    assert "fine-tune with --augment, or from a head that does not memorise" in plain.summary()
    improved = replace(kept, settings=kept.settings | {"best_epoch": 2})
    assert "note:" not in improved.summary()
    underfit = replace(kept, settings=kept.settings | {"head_train": {"accuracy": 0.9}})
    assert "note:" not in underfit.summary()


def test_the_python_api_is_quiet_unless_asked(small_heads: dict[str, Path], tmp_path: Path,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    bottleneck.finetune(small_heads["dense"], tmp_path / "quiet", epochs=1,
                        unfreeze_from="block3_conv3")
    captured = capfd.readouterr()
    assert "Epoch" not in captured.out + captured.err and "loss" not in captured.err
