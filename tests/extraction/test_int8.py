"""int8 on OpenVINO: quantized by NNCF on the dataset's own images, recorded as its own config,
kept in the user cache, served by predict; refused in one line where it cannot run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cli import main
from bottleneck.data import open_source
from bottleneck.data.sources import Item
from bottleneck.errors import UserError
from bottleneck.extraction import ExtractConfig, FeatureExtractor, int8
from bottleneck.extraction.config import identity_config
from tests.conftest import he_normal_weights

FLAGS = "flags\t\t: fpu sse sse2 avx avx2 fma {}\n"
RUNS_INT8 = (importlib.util.find_spec("openvino") is not None
             and importlib.util.find_spec("nncf") is not None
             and bool((int8.cpu_flags() or set()) & set(int8.INT8_FLAGS)))
needs_int8 = pytest.mark.skipif(not RUNS_INT8, reason="needs openvino, nncf and a CPU with "
                                "VNNI or AMX-INT8")


@pytest.fixture(autouse=True)
def engine_cache_dir(tmp_path_factory, monkeypatch) -> Path:
    """Conversions go to a temp cache dir, never the user's."""
    folder = tmp_path_factory.getbasetemp() / "int8-engine-cache"
    monkeypatch.setenv("BOTTLENECK_CACHE_DIR", str(folder))
    return folder


@pytest.mark.parametrize("flags, ok", [("avx512_vnni", True), ("avx_vnni", True),
                                       ("amx_int8 amx_tile", True), ("avx512f", False),
                                       ("", False)])
def test_int8_runs_only_on_cpus_with_vnni_or_amx_int8(flags, ok):
    cpuinfo = "processor\t: 0\n" + FLAGS.format(flags)
    if ok:
        int8.check_int8_cpu(cpuinfo)
        return
    with pytest.raises(UserError, match="needs a CPU with VNNI or AMX-INT8 .*--precision fp32"):
        int8.check_int8_cpu(cpuinfo)
    with pytest.raises(UserError, match="cannot tell which CPU"):
        int8.check_int8_cpu("processor\t: 0\n")


def test_int8_on_a_cpu_without_vnni_is_one_line_and_writes_nothing(image_folder, tmp_path,
                                                                     monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(FLAGS.format("avx512f avx512bw"))
    monkeypatch.setattr(int8, "CPUINFO", cpuinfo)  # a machine with AVX2/AVX-512 but no VNNI
    result = CliRunner().invoke(main, ["extract", str(image_folder), "-b", "mobilenet_v2",
                                       "--weights", "none", "--image-size", "32", "--engine",
                                       "openvino", "--precision", "int8",
                                       "-o", str(tmp_path / "c")])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "VNNI or AMX-INT8" in result.output and "avx512_vnni" in result.output
    assert not (tmp_path / "c").exists()


def test_int8_on_the_keras_engine_is_refused_in_one_line():
    with pytest.raises(UserError, match="keras engine runs fp32, bf16, fp16 only.*--engine "
                                        "openvino for int8"):
        FeatureExtractor(ExtractConfig("mobilenet_v2", "none", image_size=32, precision="int8"))


def test_the_calibration_sample_is_train_images_by_key_hash():
    items = [Item(f"{split}/{i:03d}.jpg", i % 3, split) for split in ("train", "val")
             for i in range(50)]
    chosen = int8.calibration_items(items, 20)
    assert len(chosen) == 20 and {i.split for i in chosen} == {"train"}
    assert chosen == int8.calibration_items(list(reversed(items)), 20)  # order-free
    assert {i.label for i in chosen} == {0, 1, 2}
    grown = items + [Item(f"train/new-{i}.jpg", 0, "train") for i in range(5)]
    assert len(set(int8.calibration_items(grown, 20)) & set(chosen)) >= 15  # mostly kept
    val_only = [i for i in items if i.split == "val"]
    assert int8.calibration_items(val_only, 5)[0].split == "val"


@pytest.fixture(scope="module")
def int8_caches(image_folder, tmp_path_factory):
    if not RUNS_INT8:
        pytest.skip("needs openvino, nncf and a CPU with VNNI or AMX-INT8")
    root = tmp_path_factory.mktemp("int8")
    weights = he_normal_weights("mobilenet_v2", 32, root / "mnv2.weights.h5")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BOTTLENECK_CACHE_DIR", str(tmp_path_factory.getbasetemp()
                                                 / "int8-engine-cache"))
        caches = {precision: bottleneck.extract(
            str(image_folder), backbone="mobilenet_v2", weights=str(weights), image_size=32,
            out=root / precision, engine="openvino", precision=precision, shard_size=16,
            progress=False) for precision in ("fp32", "int8")}
    return caches, weights


@needs_int8
def test_int8_features_are_their_own_config_calibrated_on_the_datasets_images(
        int8_caches, image_folder, engine_cache_dir):
    caches, _ = int8_caches
    config = caches["int8"].config
    pixels = int8.calibration_pixels(open_source(str(image_folder)), 32, False)
    assert config["precision"] == "int8"
    assert config["calibration"] == int8.pixels_digest(pixels)
    assert caches["fp32"].config["calibration"] is None
    assert identity_config(config) != identity_config(caches["fp32"].config)
    digest = config["calibration"][:16]
    quantized = list(engine_cache_dir.glob(f"openvino/*/*-int8-{digest}-nncf*.xml"))
    assert len(quantized) == 1 and quantized[0].with_suffix(".bin").is_file()
    ours, reference = caches["int8"].load("train")["features"], caches["fp32"].load("train")[
        "features"]
    assert not np.array_equal(ours, reference)  # quantized: not the fp32 function
    cosine = (ours * reference).sum(1) / (np.linalg.norm(ours, axis=1)
                                         * np.linalg.norm(reference, axis=1))
    assert cosine.min() >= 0.9  # random He weights at 32 px; measured ~0.96


@needs_int8
def test_an_int8_cache_resumes_without_quantizing_again_and_predict_serves_it(
        int8_caches, image_folder, engine_cache_dir, tmp_path):
    caches, weights = int8_caches
    cache = caches["int8"]
    (quantized,) = engine_cache_dir.glob("openvino/*/*-int8-*.xml")
    stamp = quantized.stat().st_mtime_ns
    shas = [s["sha256"] for s in cache.manifest["shards"]]
    again = bottleneck.extract(str(image_folder), backbone="mobilenet_v2", weights=str(weights),
                               image_size=32, out=cache.root, engine="openvino",
                               precision="int8", shard_size=16, progress=False)
    assert [s["sha256"] for s in again.manifest["shards"]] == shas  # nothing recomputed
    assert quantized.stat().st_mtime_ns == stamp  # read back, not quantized again
    bottleneck.fit(cache, "logreg", tmp_path / "model", progress=False)
    data = cache.load("test", with_paths=True)
    files = [Path(cache.manifest["source"]["root"]) / p for p in data["paths"]]
    head = bottleneck.load_model(tmp_path / "model").head
    predicted = bottleneck.predict(tmp_path / "model", files)
    assert [r["class"] for r in predicted] == [cache.classes[i]
                                               for i in head.predict(data["features"])]
    # elsewhere (the quantized model is not in this machine's cache): one line, nothing run
    for path in (quantized, quantized.with_suffix(".bin")):
        path.rename(path.with_name(path.name + ".away"))
    try:
        result = CliRunner().invoke(main, ["predict", str(tmp_path / "model"), str(files[0])])
        assert result.exit_code == 2 and "quantized on another machine" in result.output
        assert len(result.output.strip().splitlines()) == 1
    finally:
        for path in (quantized, quantized.with_suffix(".bin")):
            path.with_name(path.name + ".away").rename(path)
    manifest = json.loads((cache.root / "manifest.json").read_text())
    assert manifest["config"]["calibration"] == cache.config["calibration"]


def first_conv_int8_weights(xml: Path) -> np.ndarray:
    """The int8 weights the quantized model's first convolution (on the raw pixels) reads."""
    ov = int8.import_quietly("openvino")
    model = ov.Core().read_model(xml)
    conv = next(op for op in model.get_ordered_ops() if op.get_type_name() == "Convolution")
    stack = [conv.input_value(1).get_node()]
    while stack:  # weights are stored compressed: Constant(i8) → Convert → (Subtract) → Multiply
        node = stack.pop()
        if node.get_type_name() == "Constant" and node.get_output_element_type(0) == ov.Type.i8:
            return node.get_data()
        stack.extend(value.get_node() for value in node.input_values())
    raise AssertionError("the first convolution's weights are not int8")


@needs_int8
def test_the_first_layer_keeps_all_8_bits_on_vnni(int8_caches, engine_cache_dir):
    # NNCF's default overflow fix quantizes the first layer's weights to 7 bits (±63) for CPUs
    # without VNNI; int8 runs only on VNNI/AMX-INT8, so the recipe turns it off: the feature
    # cosine to fp32 on Lite0 (ImageNet weights, Fashion-MNIST) went from 0.983 to 0.994
    digest = int8_caches[0]["int8"].config["calibration"][:16]
    (xml,) = engine_cache_dir.glob(f"openvino/*/*-int8-{digest}-nncf*.xml")
    weights = first_conv_int8_weights(xml)
    assert np.abs(weights.astype(np.int16)).max() >= 127


@needs_int8
def test_another_int8_recipe_is_another_cache_never_mixed(int8_caches, image_folder, tmp_path,
                                                           monkeypatch):
    _, weights = int8_caches
    options = dict(backbone="mobilenet_v2", weights=str(weights), image_size=32,
                   out=tmp_path / "old", engine="openvino", precision="int8", shard_size=16,
                   progress=False)
    with monkeypatch.context() as patch:  # a cache quantized by an earlier recipe
        patch.setattr(int8, "RECIPE", "an earlier recipe")
        old = bottleneck.extract(str(image_folder), **options)
    shas = [s["sha256"] for s in old.manifest["shards"]]
    pixels = int8.calibration_pixels(open_source(str(image_folder)), 32, False)
    assert old.config["calibration"] != int8.pixels_digest(pixels)  # the recipe is in it
    with pytest.raises(UserError, match="different config"):  # not extended with this recipe
        bottleneck.extract(str(image_folder), **options)
    again = json.loads((tmp_path / "old" / "manifest.json").read_text())
    assert [s["sha256"] for s in again["shards"]] == shas
