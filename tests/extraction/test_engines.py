"""Engines: OpenVINO's features equal TensorFlow's for every backbone; the choice is recorded,
served by predict, converted once; missing or impossible engines say what to do."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.backbones import BACKBONES, get_backbone
from bottleneck.cli import main
from bottleneck.data import images
from bottleneck.errors import UserError
from bottleneck.extraction import ExtractConfig, FeatureExtractor, engine_openvino
from bottleneck.extraction.engines import get_engine
from bottleneck.extraction.feature_model import conversion_key
from bottleneck.models.predict import serving_config
from tests.conftest import he_normal_init, he_normal_weights

HAVE_OPENVINO = importlib.util.find_spec("openvino") is not None
needs_openvino = pytest.mark.skipif(
    not HAVE_OPENVINO, reason="openvino is not installed (pip install 'bottleneck[openvino]')")


def cpu_has_bf16() -> bool:
    core = engine_openvino._import_openvino().Core()  # imported as the engine does: no telemetry
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@pytest.fixture(autouse=True)
def engine_cache_dir(tmp_path_factory, monkeypatch) -> Path:
    """Conversions go to a temp cache dir, never the user's."""
    folder = tmp_path_factory.getbasetemp() / "engine-cache"
    monkeypatch.setenv("BOTTLENECK_CACHE_DIR", str(folder))
    return folder


def small_size(name: str) -> int:
    return max(get_backbone(name).min_size, 32)


def real_batch(folder: Path, size: int) -> np.ndarray:
    """The generated photos of ``image_folder``, decoded and resized as extraction does."""
    paths = sorted(folder.rglob("*.jpg"))[:6]
    return np.stack([images.load_image(p, size) for p in paths])


def agreement(ours: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(smallest per-image cosine, largest |difference| relative to the image's largest value)."""
    ours, reference = ours.reshape(len(ours), -1), reference.reshape(len(reference), -1)
    cosine = (ours * reference).sum(1) / (np.linalg.norm(ours, axis=1)
                                         * np.linalg.norm(reference, axis=1))
    relative = np.abs(ours - reference).max(1) / np.abs(reference).max(1)
    return float(cosine.min()), float(relative.max())


@needs_openvino
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_openvino_fp32_features_equal_tensorflow_for_every_backbone(name, image_folder):
    size = small_size(name)
    reference = FeatureExtractor(ExtractConfig(name, "none", image_size=size))
    he_normal_init(reference.model)  # features that do not vanish (the variables are traced)
    ov_run = get_engine("openvino").prepare(reference.job)  # the very same traced function
    batch = real_batch(image_folder, size)
    expected = reference(batch)
    got = ov_run(batch)[0]
    assert got.shape == expected.shape == (6, get_backbone(name).dims)
    cosine, relative = agreement(got, expected)
    assert cosine >= 0.99999, (name, cosine)
    assert relative <= 1e-4, (name, relative)  # measured: at most ~2e-6 at these sizes


@pytest.fixture(scope="module")
def vgg_caches(image_folder, vgg16_he_weights, tmp_path_factory) -> dict[str, bottleneck.Cache]:
    """The same images cached by each engine (fp32)."""
    if not HAVE_OPENVINO:
        pytest.skip("openvino is not installed (pip install 'bottleneck[openvino]')")
    root = tmp_path_factory.mktemp("engines")
    cache_dir = tmp_path_factory.getbasetemp() / "engine-cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BOTTLENECK_CACHE_DIR", str(cache_dir))
        return {engine: bottleneck.extract(str(image_folder), backbone="vgg16",
                                           weights=str(vgg16_he_weights), image_size=32,
                                           out=root / engine, engine=engine, shard_size=16,
                                           progress=False)
                for engine in ("keras", "openvino")}


def test_the_manifest_records_engine_precision_and_version(vgg_caches):
    manifest = json.loads((vgg_caches["openvino"].root / "manifest.json").read_text())
    assert manifest["config"]["engine"] == "openvino"
    assert manifest["config"]["precision"] == "fp32"
    assert manifest["config"]["fast_decode"] is False
    assert manifest["versions"]["openvino"] == engine_openvino.version()
    tf_manifest = json.loads((vgg_caches["keras"].root / "manifest.json").read_text())
    assert tf_manifest["config"]["engine"] == "keras" and "openvino" not in \
        tf_manifest["versions"]
    assert manifest["runtime"]["engine"] == "openvino"
    assert tf_manifest["runtime"]["backend"] == "tensorflow"
    assert tf_manifest["runtime"]["device"] == "cpu"


def test_openvino_cache_rows_equal_the_tensorflow_cache(vgg_caches):
    ours, reference = vgg_caches["openvino"].load("train", with_paths=True), \
        vgg_caches["keras"].load("train", with_paths=True)
    assert list(ours["paths"]) == list(reference["paths"])
    cosine, relative = agreement(ours["features"], reference["features"])
    assert cosine >= 0.99999 and relative <= 1e-4


def test_the_conversion_is_made_once_and_kept_in_the_user_cache_dir(
        vgg_caches, vgg16_he_weights, engine_cache_dir):
    key = conversion_key([ExtractConfig.from_dict(vgg_caches["openvino"].config)])
    converted = list(engine_cache_dir.glob(f"openvino/*/vgg16-32-{key[:20]}.xml"))
    assert len(converted) == 1 and converted[0].with_suffix(".bin").is_file()
    stamp = converted[0].stat().st_mtime_ns
    again = FeatureExtractor(ExtractConfig("vgg16", str(vgg16_he_weights), image_size=32,
                                           engine="openvino"))
    assert again.job.key == key and engine_openvino.model_path(again.job) == converted[0]
    assert converted[0].stat().st_mtime_ns == stamp  # read back, not converted again
    other_layer = FeatureExtractor(ExtractConfig("vgg16", str(vgg16_he_weights), image_size=32,
                                                 layer="block4_pool", engine="openvino"))
    assert other_layer.job.key != key
    assert engine_openvino.model_path(other_layer.job).is_file()


def test_predict_serves_with_the_engine_the_cache_was_made_with(vgg_caches, tmp_path):
    cache = vgg_caches["openvino"]
    bottleneck.fit(cache, "logreg", tmp_path / "model", progress=False)
    recorded = bottleneck.load_model(tmp_path / "model").config
    assert serving_config(recorded).engine == "openvino"
    assert serving_config(recorded, engine="tf") == replace(serving_config(recorded),
                                                            engine="tf")
    data = cache.load("test", with_paths=True)
    root = Path(cache.manifest["source"]["root"])
    files = [root / p for p in data["paths"]]
    predicted = bottleneck.predict(tmp_path / "model", files)
    head = bottleneck.load_model(tmp_path / "model").head
    expected = head.predict(data["features"])
    assert [r["class"] for r in predicted] == [cache.classes[i] for i in expected]


def test_a_bf16_cache_keeps_bf16_on_an_engine_that_runs_it():
    recorded = {"backbone": "vgg16", "engine": "openvino", "precision": "bf16"}
    assert serving_config(recorded).precision == "bf16"
    assert serving_config(recorded, engine="keras").precision == "bf16"  # on a bf16 device
    assert serving_config(recorded, engine="keras", precision="fp32").precision == "fp32"


@needs_openvino
@pytest.mark.parametrize("engine", ["openvino", "keras"])
def test_bf16_features_stay_within_cosine_0_999(image_folder, tmp_path, engine):
    if not cpu_has_bf16():
        pytest.skip("this CPU has no bf16 support (OpenVINO reports no BF16 capability)")
    weights = he_normal_weights("mobilenet_v2", 96, tmp_path / "mnv2.weights.h5")
    reference = FeatureExtractor(ExtractConfig("mobilenet_v2", str(weights), image_size=96))
    bf16 = FeatureExtractor(ExtractConfig("mobilenet_v2", str(weights), image_size=96,
                                          engine=engine, precision="bf16"))
    batch = real_batch(image_folder, 96)
    cosine, _ = agreement(bf16(batch), reference(batch))
    assert cosine >= 0.999  # measured on an AMX CPU: 0.9994 (openvino), 0.9993 (keras)


@needs_openvino
def test_bf16_on_a_cpu_without_it_is_refused_not_run_in_fp32(vgg16_he_weights):
    if cpu_has_bf16():
        pytest.skip("this CPU runs bf16; the refusal is for CPUs without it")
    with pytest.raises(UserError, match="cannot run bf16 on this CPU.*--precision fp32"):
        FeatureExtractor(ExtractConfig("vgg16", str(vgg16_he_weights), image_size=32,
                                       engine="openvino", precision="bf16"))


def test_missing_openvino_is_one_line_saying_how_to_install(image_folder, tmp_path,
                                                           monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if it were not installed
    result = CliRunner().invoke(main, ["extract", str(image_folder), "-b", "vgg16", "--weights",
                                       "none", "--image-size", "32", "--engine", "openvino",
                                       "-o", str(tmp_path / "c")])
    assert result.exit_code == 2, result.output
    assert "pip install 'bottleneck[openvino]'" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("engine, precision, message", [
    ("onnx", "fp32", "unknown engine 'onnx'; choose one of: keras, openvino"),
    ("tf", "fp16", "--precision fp16 needs a GPU"),
    ("tf", "fp8", "unknown precision 'fp8'"),
])
def test_unknown_engines_and_precisions_are_refused(engine, precision, message):
    with pytest.raises(UserError, match=message):
        FeatureExtractor(ExtractConfig("vgg16", "none", image_size=32, engine=engine,
                                       precision=precision))


def test_old_manifests_without_engine_fields_load_and_resume(image_folder, tmp_path):
    out = tmp_path / "old"
    bottleneck.extract(str(image_folder), backbone="vgg16", weights="none", image_size=32,
                       out=out, shard_size=16, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("engine", "precision", "fast_decode"):  # as a cache made before them
        del manifest["config"][key]
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert ExtractConfig.from_dict(manifest["config"]).engine == "keras"
    shas = [s["sha256"] for s in manifest["shards"]]
    resumed = bottleneck.extract(str(image_folder), backbone="vgg16", weights="none",
                                 image_size=32, out=out, shard_size=16, progress=False)
    assert [s["sha256"] for s in resumed.manifest["shards"]] == shas  # nothing recomputed
    assert resumed.config["engine"] == "keras" and resumed.config["fast_decode"] is False
