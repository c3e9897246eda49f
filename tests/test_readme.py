"""The README's Python API example runs as written: one script, offline, on generated photos."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import draw_image
from tests.heads_fixtures import write_split_folder

ROOT = Path(__file__).parents[1]


def api_example() -> str:
    """The first python block under the README's "## Python API" heading."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_api_example_runs_as_written(tmp_path: Path) -> None:
    write_split_folder(tmp_path / "photos")
    Image.fromarray(draw_image("square", np.random.default_rng(3))).save(
        tmp_path / "new_photo.jpg")
    (tmp_path / "example.py").write_text(api_example())
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "PYTHONPATH")}
    env |= {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    for made in ("cache/l0/manifest.json", "cache/l0-layers/top_activation/manifest.json",
                 "models/l0-ft/model.keras", "l0-ft.keras", "reports/l0/leaderboard.csv",
                 "report.html", "report.json"):
        assert (tmp_path / made).exists(), made
