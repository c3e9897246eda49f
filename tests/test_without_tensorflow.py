"""A virtualenv without TensorFlow: extract, fit, bench and predict on JAX through the CLI
(local paths: fsspec and s3fs are never imported), and one line naming the extra when no
backend is installed at all.

The virtualenv is real (``python -m venv``) and sees this project's packages through a
``.pth`` file, except the ones it blocks: importing them fails as if they were not installed.
"""

from __future__ import annotations

import os
import site
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
BLOCKER = '''
import importlib.abc, sys
BLOCKED = {blocked!r}
class _Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Absent())
'''

SCRIPT = '''
import sys
from click.testing import CliRunner
from bottleneck.cli import main
import bottleneck
assert "tensorflow" not in sys.modules and "keras" not in sys.modules
images, work, weights = sys.argv[1:4]
run = CliRunner().invoke
for args in (["extract", images, "-b", "vgg16", "--weights", weights, "--image-size", "32",
              "-o", f"{work}/cache", "--backend", "jax", "-q"],
             ["info", f"{work}/cache"],
             ["fit", f"{work}/cache", "--head", "logreg", "-o", f"{work}/logreg"],
             ["fit", f"{work}/cache", "--head", "dense", "-p", "epochs=2", "-o", f"{work}/dense",
              "-q"],
             ["bench", f"{work}/cache", "--heads", "logreg,ridge", "--out", f"{work}/bench"],
             ["predict", f"{work}/dense", images]):
    result = run(main, args, catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    print(result.output.strip().splitlines()[-1])
import keras
assert keras.backend.backend() == "jax"
assert "tensorflow" not in sys.modules, "TensorFlow was imported"
remote = sorted({"fsspec", "s3fs", "botocore"} & set(sys.modules))
assert not remote, f"a local run imported the remote machinery: {remote}"
print("OK without tensorflow")
'''


def make_venv(where: Path, blocked: set[str]) -> Path:
    """A virtualenv whose site-packages reach ours and the project, minus ``blocked``."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(where)
    python = where / "bin" / "python"
    target = Path(subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        text=True).strip())
    (target / "_absent.py").write_text(BLOCKER.format(blocked=sorted(blocked)))
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (target / "zz_project.pth").write_text(
        "import _absent\n" + "\n".join([str(ROOT), *ours]) + "\n")
    return python


@pytest.mark.skipif(__import__("importlib").util.find_spec("jax") is None,
                    reason="JAX is not installed")
def test_extract_fit_bench_predict_with_jax_and_no_tensorflow(tmp_path, image_folder,
                                                               vgg16_he_weights):
    python = make_venv(tmp_path / "venv", {"tensorflow", "tf2onnx", "tensorboard"})
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "PYTHONPATH")}
    env |= {"BOTTLENECK_CACHE_DIR": str(tmp_path / "user-cache")}
    result = subprocess.run([str(python), "-c", SCRIPT, str(image_folder), str(tmp_path),
                             str(vgg16_he_weights)], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "OK without tensorflow" in result.stdout


def test_no_backend_at_all_is_one_line_naming_the_extra(tmp_path, image_folder):
    python = make_venv(tmp_path / "venv", {"tensorflow", "jax", "torch"})
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "PYTHONPATH")}
    env |= {"KERAS_HOME": str(tmp_path / "keras-home")}  # no keras.json: TensorFlow
    result = subprocess.run([str(python), "-m", "bottleneck.cli", "extract", str(image_folder),
                             "-b", "vgg16", "--weights", "none", "-o", str(tmp_path / "c")],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: the tensorflow backend is not installed; pip install "
                     "'bottleneck[tensorflow]' or choose another with --backend (tensorflow, "
                     "jax, torch)."]
    assert not (tmp_path / "c").exists()
