"""The same features on every Keras backend: TensorFlow here, JAX and PyTorch in fresh
processes (a process runs one backend), and extract → fit → predict on each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bottleneck.data import images
from tests.conftest import he_normal_weights

OTHERS = [b for b in ("jax", "torch") if __import__("importlib").util.find_spec(b)]
PROBE = Path(__file__).with_name("backend_probe.py")
TOLERANCE = 1e-5  # per row: ‖a − b‖ / ‖b‖


@pytest.fixture(scope="module")
def probes(tmp_path_factory, image_folder, vgg16_he_weights):
    """Run the probe on TensorFlow in this process and on the others in parallel."""
    work = tmp_path_factory.mktemp("backends")
    mnv2 = he_normal_weights("mobilenet_v2", 64, work / "mnv2.weights.h5")
    paths = sorted(image_folder.rglob("*.*"))[:8]
    np.savez(work / "batch.npz", **{str(size): np.stack(
        [images.load_image(p, size) for p in paths]) for size in (32, 64)})
    args = [str(work), str(mnv2), str(vgg16_he_weights), str(image_folder)]
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[2])}
    running = {b: subprocess.Popen([sys.executable, str(PROBE), b, *args], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for b in OTHERS}
    sys.path.insert(0, str(PROBE.parent))
    from backend_probe import main as probe

    probe("tensorflow", *map(Path, args[:1]), *args[1:])
    for backend, process in running.items():
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, f"{backend} probe failed:\n{output[-3000:]}"
    return work


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)))


@pytest.mark.parametrize("backend", OTHERS)
@pytest.mark.parametrize("backbone", ["mobilenet_v2", "vgg16", "efficientnet_lite0"])
def test_fp32_features_equal_tensorflow_on_every_backend(probes, backend, backbone):
    reference = np.load(probes / "tensorflow.npz")[backbone]
    other = np.load(probes / f"{backend}.npz")[backbone]
    assert np.linalg.norm(reference, axis=1).min() > 1e-3  # features that do not vanish
    assert _relative(other, reference) <= TOLERANCE


@pytest.mark.parametrize("backend", OTHERS)
def test_extract_fit_predict_run_on_every_backend(probes, backend):
    reference = json.loads((probes / "tensorflow.json").read_text())
    report = json.loads((probes / f"{backend}.json").read_text())
    assert report["backend"] == backend and report["runtime"]["backend"] == backend
    assert report["runtime"]["device"] == "cpu" and report["rows"] == reference["rows"]
    # extraction (decode, hash, model, shards) needs no TensorFlow; Keras' own
    # set_random_seed (the dense head's seed) imports it when it is installed
    assert not report["tensorflow_imported"]
    assert report["predictions"]["logreg"] == reference["predictions"]["logreg"]
    assert len(report["predictions"]["dense"]) == 6
    import bottleneck

    ours = bottleneck.open_cache(probes / f"cache-{backend}").load(with_paths=True)
    theirs = bottleneck.open_cache(probes / "cache-tensorflow").load(with_paths=True)
    assert list(ours["paths"]) == list(theirs["paths"])
    assert _relative(ours["features"], theirs["features"]) <= TOLERANCE


@pytest.mark.parametrize("backend", OTHERS)
def test_a_cache_made_on_one_backend_resumes_on_another(probes, backend, image_folder,
                                                       vgg16_he_weights):
    import bottleneck

    cache = probes / f"cache-{backend}"
    before = [s["sha256"] for s in json.loads((cache / "manifest.json").read_text())["shards"]]
    resumed = bottleneck.extract(str(image_folder), backbone="vgg16",
                                 weights=str(vgg16_he_weights), image_size=32, out=cache,
                                 shard_size=16, progress=False)
    assert [s.sha256 for s in resumed.manifest.shards] == before  # nothing recomputed
    assert resumed.manifest.runtime["backend"] == backend  # nothing ran here: still theirs
    assert {s.runtime["backend"] for s in resumed.manifest.shards} == {backend}


@pytest.mark.skipif("torch" not in OTHERS, reason="torch is not installed")
def test_a_gpu_decode_shard_runs_tensors_through_the_torch_backend(probes):
    """--decode gpu's pipeline on torch's CPU device (the CPU JPEG decoder in nvJPEG's place):
    the same rows, hashes and, within the resize's float rounding, features."""
    import bottleneck

    got = json.loads((probes / "torch.json").read_text())["gpu_decode"]
    cache = bottleneck.open_cache(probes / "cache-torch")
    theirs = cache.load(with_paths=True)
    assert got["rows"] == len(theirs["paths"]) and got["paths"] == list(theirs["paths"])
    assert got["content_hash"] == [str(h) for h in cache.column("content_hash")]
    assert _relative(np.array(got["features"]), theirs["features"]) <= 1e-4
    # here: a torch without CUDA (and without torchvision) is named as the reason
    assert "--decode gpu needs" in got["problem"]
