"""The device kit (benchmarks/gpu): a tiny kit built offline, check.py --quick run over it on
the CPU, every section present with figures or a recorded reason; and the resolver check,
offline, over stub wheels carrying the real metadata of what the kit would carry."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from importlib.metadata import distribution
from numbers import Number
from pathlib import Path

import pytest

from bottleneck.backend import active_backend

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "benchmarks" / "gpu"
BACKEND = "torch" if importlib.util.find_spec("torch") else "jax"  # no compile: fastest here
SECTIONS = ("environment", "jpegs", "decode", f"parity_{BACKEND}", f"model_{BACKEND}",
            f"extract_{BACKEND}", "reference", "finetune", "memory", "summary")


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, GPU / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _numbers(data) -> list[float]:
    if isinstance(data, dict):
        return [n for v in data.values() for n in _numbers(v)]
    if isinstance(data, list):
        return [n for v in data for n in _numbers(v)]
    return [data] if isinstance(data, Number) and not isinstance(data, bool) else []


@pytest.fixture(scope="module")
def quick_check(tmp_path_factory):
    """make_kit --quick (in this process: its Keras is already imported), then check.py
    --quick in a fresh process, as on the device but on the CPU."""
    work = tmp_path_factory.mktemp("gpu-kit")
    make_kit = _module("make_kit")
    assert make_kit.build(work / "kit", True, 6, 60.0, make_kit.DEBIAN_FASHION_MNIST,
                          active_backend()) == 0
    assert "BOTTLENECK_CACHE_DIR" not in os.environ or os.environ["BOTTLENECK_CACHE_DIR"] != \
        str(work / "kit")
    out = work / "out" / "gpu-check.json"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(GPU / "check.py"), "--quick", "--kit",
                           str(work / "kit"), "--out", str(out), "--backends", BACKEND],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return work / "kit", json.loads(out.read_text()), done.stdout


def test_the_quick_kit_holds_what_check_needs(quick_check):
    kit, _, _ = quick_check
    info = json.loads((kit / "kit.json").read_text())
    assert info["images"]["count"] == 6 and len(list((kit / "images").rglob("*.jpg"))) == 6
    assert [r["weights"] for r in info["references"]] == ["imagenet", "he-normal"]
    import numpy as np

    reference = np.load(kit / "reference.npz")
    assert len(reference["keys"]) == 6
    assert reference[info["references"][0]["name"]].shape == (6, 1280)


def test_every_section_has_figures_or_a_reason(quick_check):
    _, doc, stdout = quick_check
    sections = doc["sections"]
    assert set(SECTIONS) <= set(sections)
    assert doc["check"]["finished"] and "wrote" in stdout
    for name in SECTIONS:
        state = sections[name]
        assert state["status"] in ("ok", "skipped"), (name, state)
        if state["status"] == "ok":
            assert _numbers(state["results"]), name
        else:
            assert state["reason"], name


def test_quick_figures_are_real(quick_check):
    kit, doc, _ = quick_check
    sections = doc["sections"]
    parity = sections[f"parity_{BACKEND}"]["results"]
    for label, figures in parity.items():
        if label.endswith("/fp32"):  # another backend than the reference's, same weights
            assert figures["weights_same_as_reference"], label
            assert figures["cosine_min"] >= 0.99999 and figures["rows"] == 6, label
    decode = sections["decode"]["results"]
    assert decode["decode_resize_hash"]["img_s"] > 0
    # issue 27: the compiled per-core rate beside the NumPy one it replaced
    assert decode["compiled"] is True
    assert decode["decode_resize_hash_numpy_1_thread"]["img_s"] > 0
    assert decode["per_core_new_over_old"] > 0 and decode["per_core_time_over_decode"] > 0
    assert sections[f"model_{BACKEND}"]["results"]["fp32"]["device_resident"]["img_s"] > 0
    assert sections[f"extract_{BACKEND}"]["results"]["fp32"]["end_to_end_img_s"] > 0
    if sections["finetune"]["status"] == "ok":
        assert 0 <= sections["finetune"]["results"]["finetune"]["test_accuracy"] <= 1
    assert sections["memory"]["status"] == "skipped"  # no GPU here
    targets = sections["summary"]["results"]["targets"]
    assert any(t["met"] is True for t in targets)
    # "imagenet" resolved to the kit's converted file: nothing was converted into it
    assert [p.name for p in (kit / "weights").iterdir()] == [
        "efficientnet_lite0_imagenet_notop.weights.h5"]


def _requires_of(name: str) -> list[str]:
    return [r for r in distribution(name).requires or [] if "extra ==" not in r]


def test_resolver_check_passes_on_the_device_set_and_fails_without_a_carried_wheel(tmp_path):
    """Offline: the carried packages as stubs with their real requirements (read from this
    machine's installs) and the project as a stub with pyproject's requirements; dropping a
    carried package (namex, which only keras needs) fails the check."""
    tomllib = pytest.importorskip("tomllib")
    kit_wheels = _module("kit_wheels")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = ["jax", "torch"]
    requires = project["dependencies"] + [f"{r}; extra == '{e}'" for e in extras
                                          for r in project["optional-dependencies"][e]]
    wheels, stubs = tmp_path / "wheels", tmp_path / "stubs"
    wheels.mkdir()
    stubs.mkdir()
    kit_wheels.stub_wheel("bottleneck", project["version"], wheels, requires, extras)
    for name in kit_wheels.CARRY:
        kit_wheels.stub_wheel(name, kit_wheels.local_version(name), wheels, _requires_of(name))
    kit_wheels.device_stubs(stubs)
    passed = kit_wheels.resolver_check(wheels, stubs)
    assert passed["ok"], passed["pip_output"]
    carried = {r["name"] for r in passed["resolved"] if r["from"] == "kit"}
    assert {"keras", "simplejpeg", "cityhash", "namex"} <= carried
    assert {r["name"] for r in passed["resolved"] if r["name"] == "jax"} == {"jax"}
    next(wheels.glob("namex-*.whl")).unlink()
    failed = kit_wheels.resolver_check(wheels, stubs)
    assert not failed["ok"] and failed["returncode"] != 0
    assert "namex" in failed["pip_output"]


def test_the_decode_section_says_when_numba_did_not_load(tmp_path, monkeypatch):
    # the device's Python may lack numba: the per-core rows then ran the NumPy path, and the
    # section must say so rather than report a ratio of ~1 as the compiled kernels' gain
    import argparse

    from PIL import Image

    from bottleneck.data import jit

    monkeypatch.syspath_prepend(str(GPU))
    check_ctx, check_host = (importlib.import_module(m) for m in ("check_ctx", "check_host"))
    big = tmp_path / "work" / "jpegs" / "big"
    big.mkdir(parents=True)
    (tmp_path / "work" / "state").mkdir()
    for i in range(3):
        Image.new("RGB", (40 + i, 30), (i * 50, 90, 200)).save(big / f"{i}.jpg")
    ctx = check_ctx.Context(argparse.Namespace(), tmp_path / "kit",
                            {"references": [{"image_size": 24}]}, tmp_path / "work", None,
                            name="decode")
    results = check_host.decode(ctx)
    assert results["compiled"] is True and "note" not in results
    monkeypatch.setattr(jit, "compiled", lambda: None)
    results = check_host.decode(ctx)
    assert results["compiled"] is False and "numba did not load" in results["note"]
    assert results["decode_resize_hash_1_thread"]["img_s"] > 0
