"""export: every format, loaded in a fresh process that never imports bottleneck, answers
exactly as ``bottleneck predict`` does on the same image files."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cli import main
from bottleneck.errors import UserError
from bottleneck.models.lineage import sha256_path

pytest_plugins = ["tests.heads_fixtures", "tests.finetune_fixtures"]

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnxruntime"))
FORMATS = {"keras": "model.keras", "saved_model": "saved", "tflite": "model.tflite",
           **({"onnx": "model.onnx"} if HAS_ONNX else {})}

# Runs in a fresh interpreter: loads each export with its own runtime and answers each image.
LOADER = """
import json, sys
import numpy as np
jobs, images, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
import tensorflow as tf  # its JPEG decoder, the one bottleneck uses (Pillow's rounds otherwise)
pixels = [tf.io.decode_image(tf.io.read_file(p), channels=3).numpy()[None] for p in images]
answers = {}
for name, (fmt, path) in jobs.items():
    if fmt == "keras":
        import keras
        model = keras.saving.load_model(path, safe_mode=True)
        run = lambda x: model.predict(x, verbose=0)  # uint8 straight in
    elif fmt == "saved_model":
        import tensorflow as tf
        loaded = tf.saved_model.load(path)
        run = lambda x: loaded.serve(tf.constant(x, tf.float32)).numpy()
    elif fmt == "tflite":
        import tensorflow as tf
        interpreter = tf.lite.Interpreter(model_path=path)
        def run(x):
            entry = interpreter.get_input_details()[0]
            interpreter.resize_tensor_input(entry["index"], x.shape)
            interpreter.allocate_tensors()
            interpreter.set_tensor(entry["index"], x.astype(np.float32))
            interpreter.invoke()
            return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    else:
        import onnxruntime
        session = onnxruntime.InferenceSession(path)
        feed = session.get_inputs()[0].name
        run = lambda x: session.run(None, {feed: x.astype(np.float32)})[0]
    answers[name] = np.concatenate([run(x) for x in pixels])
assert "bottleneck" not in sys.modules
np.savez(out, **answers)
"""


def image_files(split_images: Path) -> list[Path]:
    """Files of different sizes, JPEG and PNG, none of them at the model's 32 px."""
    return [split_images / "test" / c / n for c, n in (("circle", "000.jpg"),
                                                       ("square", "004.png"),
                                                       ("stripes", "003.jpg"))]


@pytest.fixture(scope="module")
def exports(finetuned: Any, small_heads: dict[str, Path],
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The fine-tuned model in every format, and a head that was never fine-tuned."""
    root = tmp_path_factory.mktemp("exports")
    results = {fmt: bottleneck.export(finetuned.model_dir, root / name)
               for fmt, name in FORMATS.items()}
    results["head"] = bottleneck.export(small_heads["dense"], root / "head.keras")
    return results


def test_every_format_answers_like_predict_in_a_fresh_process(
        exports: dict[str, Any], finetuned: Any, small_heads: dict[str, Path],
        split_images: Path, tmp_path: Path) -> None:
    files = image_files(split_images)
    jobs = {name: (result.format, str(result.path)) for name, result in exports.items()}
    answers = tmp_path / "answers.npz"
    subprocess.run([sys.executable, "-c", LOADER, json.dumps(jobs),
                    json.dumps([str(f) for f in files]), str(answers)],
                   check=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin",
                                                  "TF_CPP_MIN_LOG_LEVEL": "3"})
    got = dict(np.load(answers))
    assert set(got) == {*FORMATS, "head"}
    tuned = predicted_probabilities(finetuned.model_dir, files)
    for name, expected in [*((f, tuned) for f in FORMATS),
                           ("head", predicted_probabilities(small_heads["dense"], files))]:
        assert got[name].shape == expected.shape == (len(files), 3)
        np.testing.assert_allclose(got[name], expected, rtol=0, atol=1e-4, err_msg=name)


def predicted_probabilities(model_dir: Path, files: list[Path]) -> np.ndarray:
    """``bottleneck predict``'s probabilities, one column per class in class order."""
    classes = bottleneck.load_model(model_dir).classes
    results = bottleneck.predict(model_dir, files, top=len(classes))
    return np.array([[{e["class"]: e["probability"] for e in r["top"]}[c] for c in classes]
                     for r in results])


def test_each_export_records_its_lineage(exports: dict[str, Any], finetuned: Any) -> None:
    head_info = json.loads((finetuned.model_dir / "head.json").read_text())
    for fmt in FORMATS:
        result = exports[fmt]
        lineage = json.loads(result.lineage_file.read_text())
        assert result.lineage_file.name == result.path.name + ".lineage.json"
        assert lineage["export"]["sha256"] == sha256_path(result.path) == result.sha256
        assert lineage["export"]["format"] == fmt
        assert lineage["cache"] == head_info["lineage"]["cache"]
        assert lineage["head"] == head_info["lineage"]["head"]
        assert lineage["finetuned"]["model_keras_sha256"] == \
            head_info["lineage"]["finetuned"]["model_keras_sha256"]
        # a plain Keras user finds what the output columns are beside the file
        assert lineage["outputs"]["task"] == "classify"
        assert lineage["outputs"]["classes"] == bottleneck.load_model(finetuned.model_dir).classes
    recorded = json.loads((finetuned.model_dir / "exports.json").read_text())
    assert {r["format"] for r in recorded} == set(FORMATS)
    # the record lies outside the checksummed files: the model still loads
    bottleneck.load_model(finetuned.model_dir)


def test_cli_export_refuses_what_it_should(exports: dict[str, Any], finetuned: Any,
                                           feature_cache: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    taken = exports["keras"].path
    result = runner.invoke(main, ["export", str(finetuned.model_dir), "--out", str(taken)])
    assert result.exit_code == 2 and "--overwrite" in result.stderr
    foreign = tmp_path / "mine.keras"
    foreign.write_text("not ours")
    result = runner.invoke(main, ["export", str(finetuned.model_dir), "--out", str(foreign),
                                  "--overwrite"])
    assert result.exit_code == 2 and "not written by `bottleneck export`" in result.stderr
    assert foreign.read_text() == "not ours"
    result = runner.invoke(main, ["export", str(finetuned.model_dir), "--out",
                                  str(tmp_path / "m.h5"), "--format", "keras"])
    assert result.exit_code == 2 and "name --out like m.keras" in result.stderr
    result = runner.invoke(main, ["export", str(finetuned.model_dir), "--out",
                                  str(tmp_path / "model.pdf")])
    assert result.exit_code == 2 and "no format writes .pdf files" in result.stderr
    assert not (tmp_path / "model.pdf").exists()
    bottleneck.fit(feature_cache, "svm", tmp_path / "svm", progress=False)
    with pytest.raises(UserError, match="'svm' head cannot be expressed"):
        bottleneck.export(tmp_path / "svm", tmp_path / "svm.keras")
    assert not (tmp_path / "svm.keras").exists()
