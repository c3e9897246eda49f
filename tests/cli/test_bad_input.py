"""The wrong things people type, for every command: one line, exit 2, nothing changed.

Each case runs the real CLI on a tree holding a cache, a model, images and someone else's
files, and hashes the whole tree before and after: a refused command leaves every byte as it
was (and writes nothing new).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cache import Cache
from bottleneck.cli import main
from tests.conftest import write_class_folder

pytest_plugins = ["tests.heads_fixtures"]


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with the sha256 of each file."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in sorted(root.rglob("*"))}


def invoke(*args: object) -> tuple[int, str, str, BaseException | None]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    exc = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.stdout, result.stderr, exc


@pytest.fixture(scope="module")
def tree(feature_cache: Cache, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cache/, model/, images/, empty/, foreign/ (with a manifest.json of another tool),
    a damaged cache copy, an npz with bad labels, a CSV, files that are not what they seem."""
    root = tmp_path_factory.mktemp("user_tree")
    shutil.copytree(feature_cache.root, root / "cache")
    bottleneck.fit(root / "cache", "logreg", root / "model", progress=False)
    write_class_folder(root / "images", per_class=2)
    (root / "empty").mkdir()
    (root / "foreign").mkdir()
    (root / "foreign" / "manifest.json").write_text('{"name": "my web app", "version": 3}')
    (root / "foreign" / "index.html").write_text("<html></html>")
    (root / "note.txt").write_text("not an image, not a folder")
    damaged = root / "damaged"
    shutil.copytree(root / "cache", damaged)
    shard = damaged / "shard-00000.h5"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])  # truncated shard
    tampered = root / "tampered_model"
    shutil.copytree(root / "model", tampered)
    metrics = json.loads((tampered / "metrics.json").read_text())
    metrics["val"]["accuracy"] = 1.0
    (tampered / "metrics.json").write_text(json.dumps(metrics))
    np.savez(root / "badlabels.npz", images=np.zeros((6, 8, 8, 3), np.uint8),
             labels=np.array([0, 1, 2, 7, 1, 0]), classes=np.array(["a", "b", "c"]))
    np.savez(root / "fivechannels.npz", images=np.zeros((4, 8, 8, 5), np.uint8),
             labels=np.array([0, 1, 0, 1]))
    np.savez(root / "floatimages.npz", images=np.zeros((4, 8, 8, 3), np.float32),
             labels=np.array([0, 1, 0, 1]))
    (root / "prices.csv").write_text("path,target\nsome/file.jpg,notanumber\n")
    (root / "params.yaml").write_text("C: [unclosed\n")
    (root / "prices.json").write_text("[1, 2, 3]")
    return root


CASES = [
    # extract
    (["extract", "{t}/missing", "-b", "vgg16", "-o", "{t}/out"], "source folder not found"),
    (["extract", "{t}/note.txt", "-b", "vgg16", "-o", "{t}/out"], "is a file"),
    (["extract", "{t}/empty", "-b", "vgg16", "--weights", "none", "--image-size", "32",
      "-o", "{t}/out"], "no images found"),
    (["extract", "{t}/images", "-b", "vgg17", "-o", "{t}/out"], "unknown backbone 'vgg17'"),
    (["extract", "{t}/images", "-b", "vgg16", "--image-size", "8", "-o", "{t}/out"],
     "below vgg16's minimum"),
    (["extract", "{t}/images", "-b", "vgg16", "--weights", "{t}/nowhere.h5", "-o", "{t}/out"],
     "weights file not found"),
    (["extract", "{t}/images", "-b", "vgg16", "--weights", "{t}/note.txt",
      "--image-size", "32", "-o", "{t}/out"], "cannot load weights"),
    (["extract", "{t}/images", "-b", "vgg16", "--weights", "none", "--image-size", "32",
      "--layer", "block9_pool", "-o", "{t}/out"], "has no layer 'block9_pool'"),
    (["extract", "{t}/images", "-b", "vgg16", "--weights", "none", "--image-size", "32",
      "--batch-size", "0", "-o", "{t}/out"], "--batch-size must be a positive"),
    (["extract", "{t}/images", "-b", "vgg16", "--weights", "none", "--image-size", "32",
      "--shard-size", "-4", "-o", "{t}/out"], "--shard-size must be a positive"),
    (["extract", "{t}/images", "-b", "vgg16", "--limit", "0", "-o", "{t}/out"],
     "--limit must be a positive"),
    (["extract", "{t}/images", "-b", "vgg16", "--val-percent", "95", "-o", "{t}/out"],
     "add up to less than 100"),
    (["extract", "{t}/images", "-b", "vgg16", "--weights", "none", "--image-size", "32",
      "-o", "{t}/note.txt"], "is a file"),
    (["extract", "{t}/images", "-b", "vgg16", "--weights", "none", "--image-size", "32",
      "-o", "{t}/foreign"], "not a bottleneck cache"),
    (["extract", "{t}/images", "-b", "vgg16", "--weights", "none", "--image-size", "32",
      "-o", "{t}/foreign", "--overwrite"], "not a bottleneck cache"),
    (["extract", "{t}/images", "-b", "vgg16", "--weights", "none", "--image-size", "32",
      "-o", "{t}/cache"], "different config"),
    (["extract", "{t}/badlabels.npz", "-b", "vgg16", "-o", "{t}/out"], "labels must be"),
    (["extract", "{t}/fivechannels.npz", "-b", "vgg16", "-o", "{t}/out"], "5 channels"),
    (["extract", "{t}/floatimages.npz", "-b", "vgg16", "-o", "{t}/out"], "must be uint8"),
    (["extract", "{t}/missing.npz", "-b", "vgg16", "-o", "{t}/out"], "npz source not found"),
    # info
    (["info", "{t}/missing"], "not a bottleneck cache"),
    (["info", "{t}/foreign"], "not a bottleneck cache"),
    (["info", "{t}/damaged", "--verify"], "changed since it was written"),
    # layers / imagenet
    (["layers", "resnet51"], "unknown backbone"),
    (["layers", "vgg16", "--image-size", "4"], "below vgg16's minimum"),
    (["imagenet", "{t}/missing.jpg"], "no such file or folder"),
    (["imagenet", "{t}/images", "-b", "nope"], "unknown backbone"),
    (["imagenet", "{t}/images", "--top", "0"], "--top must be positive"),
    # targets
    (["targets", "{t}/cache"], "choose one of --synthetic-prices or --from-csv"),
    (["targets", "{t}/cache", "--synthetic-prices", "--from-csv", "{t}/prices.csv"],
     "choose one of"),
    (["targets", "{t}/cache", "--from-csv", "{t}/missing.csv"], "targets CSV not found"),
    (["targets", "{t}/cache", "--from-csv", "{t}/prices.csv"], "is not a number"),
    (["targets", "{t}/cache", "--synthetic-prices", "--sigma", "-1"], "--sigma must be"),
    (["targets", "{t}/cache", "--synthetic-prices"], "no price for class"),
    (["targets", "{t}/cache", "--synthetic-prices", "--class-prices", "{t}/prices.json"],
     "must be a JSON object"),
    (["targets", "{t}/foreign", "--synthetic-prices"], "not a bottleneck cache"),
    # fit
    (["fit", "{t}/missing", "--head", "logreg", "-o", "{t}/m2"], "not a bottleneck cache"),
    (["fit", "{t}/cache", "--head", "logreg", "-o", "{t}/model"], "already holds a model"),
    (["fit", "{t}/cache", "--head", "logreg", "-o", "{t}/foreign", "--overwrite"],
     "not a bottleneck model directory"),
    (["fit", "{t}/cache", "--head", "logreg", "--params", "{t}/params.yaml", "-o", "{t}/m2"],
     "not valid JSON or YAML"),
    (["fit", "{t}/cache", "--head", "logreg", "--params", "{t}/none.yaml", "-o", "{t}/m2"],
     "params file not found"),
    (["fit", "{t}/damaged", "--head", "logreg", "-o", "{t}/m2"], "the cache is damaged"),
    # evaluate / predict
    (["evaluate", "{t}/tampered_model"], "changed since"),
    (["evaluate", "{t}/cache"], "not a bottleneck model directory"),
    (["evaluate", "{t}/model", "{t}/foreign"], "not a bottleneck cache"),
    (["predict", "{t}/tampered_model", "{t}/images"], "changed since"),
    (["predict", "{t}/model", "{t}/note.txt"], "could not be read as an image"),
    (["predict", "{t}/model", "{t}/empty"], "no image files found"),
    (["predict", "{t}/model", "{t}/images", "--top", "0"], "must be positive"),
    # bench
    (["bench", "{t}/cache", "--heads", "logreg", "--grid", "C=-1", "-o", "{t}/r"],
     "bad parameter value"),
    (["bench", "{t}/cache", "--heads", "dense", "--grid", "hidden=wide", "-o", "{t}/r"],
     "bad parameter value"),
    (["bench", "{t}/cache", "--heads", "logreg", "--grid", "C", "-o", "{t}/r"],
     "must look like key=v1,v2"),
    (["bench", "{t}/cache", "--heads", "logreg", "--grid", "gamma=1", "-o", "{t}/r"],
     "takes --grid gamma"),
    (["bench", "{t}/cache", "--heads", "logreg", "--cv", "99", "-o", "{t}/r"],
     "--cv 99 is more folds"),
    (["bench", "{t}/cache", "--heads", "logreg", "--jobs", "0", "-o", "{t}/r"], "--jobs must"),
    (["bench", "{t}/cache", "--heads", "logreg", "--seeds", "0", "-o", "{t}/r"],
     "--seeds must be"),
    (["bench", "{t}/cache", "--heads", "knn", "-o", "{t}/r"], "unknown head 'knn'"),
    (["bench", "{t}/foreign", "-o", "{t}/r"], "not a bottleneck cache"),
]


@pytest.mark.parametrize(("args", "message"), CASES,
                         ids=[f"{c[0][0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_and_changes_nothing(tree: Path, args: list[str],
                                                   message: str | None) -> None:
    before = snapshot(tree)
    code, _, err, exc = invoke(*[a.format(t=tree) for a in args])
    assert exc is None, f"a traceback: {exc!r}"
    assert code == 2, err
    *reports, last = err.splitlines()
    assert last.startswith("error: "), err
    # predict and imagenet first report each unreadable input on its own line
    assert all(": cannot " in line for line in reports) and len(reports) <= 2, err
    if message:
        assert message in last
    assert snapshot(tree) == before


def test_a_truncated_shard_is_refused_where_it_is_read(tree: Path) -> None:
    """Not only `info --verify`: reading the damaged shard says which file and what to do."""
    code, _, err, exc = invoke("fit", tree / "damaged", "--head", "logreg", "-o", tree / "m3")
    assert exc is None and code == 2
    assert "shard-00000.h5" in err and not (tree / "m3").exists()
    with pytest.raises(OSError):
        h5py.File(tree / "damaged" / "shard-00000.h5", "r")
