"""Commands and error paths that need no model import no backend: a logreg fit, `info`, and
the refusal of a bad argument or a missing image run without TensorFlow, Keras, JAX or PyTorch
(the backends' imports are most of a short command's time). Checked in a fresh process by what
``sys.modules`` holds after each command, not by timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bottleneck.cache import Cache

pytest_plugins = ["tests.heads_fixtures"]

ROOT = Path(__file__).parents[2]
BACKENDS = ("tensorflow", "keras", "jax", "torch")
# what a scikit-learn fit needs no more of: a plotting library, pandas (scikit-learn imports it
# only to have it), skops' listing of every estimator (it imports all of scikit-learn)
SLOW = ("matplotlib", "pandas", "sklearn.gaussian_process")

SCRIPT = f"""
import json, sys
from click.testing import CliRunner
from bottleneck.cli import main
report = []
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(main, args)
    report.append({{"args": args, "code": result.exit_code, "stderr": result.stderr,
                   "loaded": [m for m in {BACKENDS!r} if m in sys.modules],
                   "slow": [m for m in {SLOW!r} if m in sys.modules],
                   "sklearn": "sklearn" in sys.modules}})
print(json.dumps(report))
"""


def run_commands(commands: list[list[str]], cwd: Path) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("KERAS_BACKEND", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(commands)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_commands_that_need_no_model_import_no_backend(feature_cache: Cache, tmp_path: Path):
    cache = str(feature_cache.root)
    model = str(tmp_path / "logreg")
    commands = [
        ["info", cache],
        ["fit", cache, "--head", "logreg", "-o", model],
        ["fit", cache, "--head", "no-such-head", "-o", str(tmp_path / "x")],
        ["extract", cache, "-b", "no_such_net", "-o", str(tmp_path / "c")],
        ["extract", cache, "-b", "vgg16", "--pooling", "median", "-o", str(tmp_path / "c")],
        ["predict", model, str(tmp_path / "missing.jpg")],
        ["heads"],
    ]
    report = run_commands(commands, tmp_path)
    assert [r["code"] for r in report] == [0, 0, 2, 2, 2, 2, 0], report
    for entry in report:
        assert entry["loaded"] == [] and entry["slow"] == [], entry
    assert "unknown backbone 'no_such_net'" in report[3]["stderr"]
    assert report[5]["stderr"].strip() == \
        f"error: {tmp_path / 'missing.jpg'} could not be read as an image: no such file or folder."
    head = json.loads((tmp_path / "logreg" / "head.json").read_text())
    from importlib.metadata import version

    assert head["versions"]["keras"] == version("keras")
    assert not (tmp_path / "c").exists() and not (tmp_path / "x").exists()


def test_refusing_inputs_or_a_head_name_loads_no_model(feature_cache: Cache,
                                                       tmp_path: Path) -> None:
    """`predict` on files that do not exist, and `fit` with a head that does not exist, are
    refused before any head is loaded: scikit-learn is not even imported."""
    model = str(tmp_path / "logreg")
    assert run_commands([["fit", str(feature_cache.root), "--head", "logreg", "-o", model]],
                        tmp_path)[0]["code"] == 0
    refused = run_commands([["predict", model, str(tmp_path / "missing.jpg")],
                            ["fit", model, "--head", "knn", "-o", str(tmp_path / "x")]], tmp_path)
    assert [r["code"] for r in refused] == [2, 2], refused
    assert "no such file or folder" in refused[0]["stderr"]
    assert "unknown head 'knn'; choose one of: logreg, linear-svm" in refused[1]["stderr"]
    for entry in refused:
        assert not entry["sklearn"] and entry["loaded"] == [], entry


def test_python_dash_m_bottleneck_is_the_command_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "bottleneck", "fit", "--help"], cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: bottleneck fit [OPTIONS] CACHE")
