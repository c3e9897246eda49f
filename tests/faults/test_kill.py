"""``kill -9`` at the riskiest points of extract, targets, fit and bench, then a re-run.

A real SIGKILL is sent by the process to itself right before or right after the k-th
``os.replace`` (every file the tool writes lands through one): the moments where a
half-done write would show. After the kill, nothing the user had is lost or half-written, and
a re-run of the same command ends exactly as an uninterrupted run does.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

import bottleneck
from bottleneck.cache import Cache, open_cache
from bottleneck.models.model_dir import load_model

pytest_plugins = ["tests.heads_fixtures"]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import os, signal, sys
k, when = int(os.environ["KILL_AT"]), os.environ["KILL_WHEN"]
real, count = os.replace, [0]
def replace(src, dst):
    count[0] += 1
    if count[0] == k and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
    if count[0] == k and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from bottleneck.cli import main
main(sys.argv[1:])
"""
RNG = random.Random(20261123)  # the kill points are random, and the same on every run


def run(args: list[object], kill_at: int = 0, when: str = "before") -> int:
    env = os.environ | {"KILL_AT": str(kill_at), "KILL_WHEN": when, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, *map(str, args)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode


def tree_hash(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def killed(code: int) -> bool:
    return code == -signal.SIGKILL


def test_extract_killed_at_random_renames_then_resumed(split_images: Path,
                                                       vgg16_he_weights: Path,
                                                       tmp_path: Path) -> None:
    args = ["extract", split_images, "-b", "vgg16", "--weights", vgg16_he_weights,
            "--image-size", "32", "--shard-size", "25", "--batch-size", "16", "-q"]
    reference = bottleneck.extract(str(split_images), backbone="vgg16",
                                   weights=str(vgg16_he_weights), image_size=32, shard_size=25,
                                   batch_size=16, out=tmp_path / "ref", progress=False)
    out = tmp_path / "cache"
    kills = sorted(RNG.sample(range(1, 9), 2))  # manifest and shard renames interleave
    for kill_at in kills:
        code = run([*args, "-o", out], kill_at, RNG.choice(["before", "after"]))
        assert killed(code) or code == 0
        leftovers = [p.name for p in out.iterdir() if ".tmp-" in p.name]
        manifest = json.loads((out / "manifest.json").read_text())  # always whole JSON
        assert manifest["format"] == "bottleneck-cache"
        assert all(not (out / s["file"]).exists() or s["status"] == "done"
                   or (out / s["file"]).stat().st_size > 0 for s in manifest["shards"])
        del leftovers  # a dead writer's temp file is allowed: the next run removes it
    assert run([*args, "-o", out]) == 0
    assert not [p for p in out.iterdir() if ".tmp-" in p.name or p.name.endswith(".lock")]
    resumed, expected = open_cache(out).load(with_paths=True), reference.load(with_paths=True)
    order, ref_order = np.argsort(resumed["paths"]), np.argsort(expected["paths"])
    np.testing.assert_array_equal(resumed["paths"][order], expected["paths"][ref_order])
    np.testing.assert_allclose(resumed["features"][order], expected["features"][ref_order],
                               rtol=1e-5, atol=1e-5)


def test_targets_killed_then_rerun(feature_cache: Cache, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    shutil.copytree(feature_cache.root, root)
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"circle": 1.0, "square": 2.0, "stripes": 3.0}))
    args = ["targets", root, "--synthetic-prices", "--class-prices", prices]
    before = tree_hash(root)
    code = run(args, kill_at=RNG.choice([1, 2]), when=RNG.choice(["before", "after"]))
    assert killed(code)
    after = tree_hash(root)
    assert all(after.get(name) == digest for name, digest in before.items()
               if name != "manifest.json")  # nothing the cache had is lost
    open_cache(root).verify()  # every file the manifest records is whole
    assert run(args) == 0
    cache = open_cache(root)
    cache.verify()
    assert cache.load("train")["targets"].shape == (cache.split_counts()["train"],)


def test_fit_overwrite_killed_keeps_the_old_model(feature_cache: Cache, tmp_path: Path) -> None:
    model = tmp_path / "model"
    bottleneck.fit(feature_cache, "logreg", model, params={"C": 0.5}, progress=False)
    old = tree_hash(model)
    args = ["fit", feature_cache.root, "--head", "logreg", "-p", "C=0.1", "-o", model,
            "--overwrite", "-q"]
    code = run(args, kill_at=1, when="before")  # the rename that puts the new model in place
    assert killed(code)
    assert tree_hash(model) == old and load_model(model).info["params"] == {"C": 0.5}
    assert run(args) == 0
    assert load_model(model).info["params"] == {"C": 0.1}
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_bench_killed_mid_report_then_rerun(feature_cache: Cache, tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ["bench", feature_cache.root, "--heads", "logreg,ridge", "--jobs", "1", "-o", out]
    code = run(args, kill_at=RNG.choice([1, 2, 3]), when="after")
    assert killed(code)
    for name in ("leaderboard.csv", "leaderboard.json", "leaderboard.md"):
        path = out / name
        if path.exists() and name.endswith(".json"):
            json.loads(path.read_text())  # whatever landed is whole
    assert run(args) == 0
    report = json.loads((out / "leaderboard.json").read_text())
    assert [r["rank"] for r in report["rows"]] == [1, 2]
