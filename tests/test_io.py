"""The floor: every write lands through ``storage/atomic``; its helpers are crash-safe."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bottleneck.storage import atomic as _io

PACKAGE = Path(__file__).resolve().parents[1] / "bottleneck"
OWNER = "storage/atomic.py"  # the one module that renames files into place


def dead_pid() -> int:
    """The pid of a process that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_only_io_renames_files_into_place():
    """The crash-safety rule has one owner: only storage/atomic renames a file into place."""
    rename = re.compile(r"os\.replace\(|os\.rename\(|\.rename\(|shutil\.move\(")
    offenders = [f"{path.relative_to(PACKAGE)}:{n}"
                 for path in sorted(PACKAGE.rglob("*.py"))
                 if path.relative_to(PACKAGE).as_posix() != OWNER
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if rename.search(line.split("#")[0]) and "``" not in line]
    assert offenders == []


def test_atomic_path_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), _io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash in the middle")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_install_renames_a_finished_file_over_the_old_one(tmp_path):
    tmp, final = tmp_path / ".x.tmp-1", tmp_path / "x"
    final.write_text("old")
    tmp.write_text("new")
    _io.install(tmp, final)
    assert final.read_text() == "new" and not tmp.exists()


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_atomic_output_swaps_a_file_or_a_folder_in(tmp_path, kind):
    out = tmp_path / ("model.keras" if kind == "file" else "saved")

    def make(target: Path, text: str) -> None:
        if kind == "file":
            target.write_text(text)
        else:
            target.mkdir()
            (target / "inside.txt").write_text(text)

    def read() -> str:
        return out.read_text() if kind == "file" else (out / "inside.txt").read_text()

    with _io.atomic_output(out) as target:
        assert target.name == out.name  # writers that choose the format by name see it
        make(target, "one")
    assert read() == "one"
    with pytest.raises(RuntimeError), _io.atomic_output(out) as target:
        make(target, "half")
        raise RuntimeError("crash before the swap")
    assert read() == "one"
    with _io.atomic_output(out) as target:
        make(target, "two")
    assert read() == "two" and [p.name for p in tmp_path.iterdir()] == [out.name]


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_death_between_moving_aside_and_swapping_in_is_undone(tmp_path, kind):
    """The old output moved aside by a writer that died is put back; its staging goes."""
    pid = dead_pid()
    out = tmp_path / "model.keras"
    aside = tmp_path / f".model.keras.old{_io.TEMP_MARK}{pid}"
    staging = tmp_path / f".model.keras{_io.TEMP_MARK}{pid}"
    if kind == "file":
        aside.write_text("old")
    else:
        aside.mkdir()
        (aside / "inside.txt").write_text("old")
    staging.mkdir()
    (staging / "model.keras").write_text("half")
    _io.recover_staging(out)
    assert (out.read_text() if kind == "file" else (out / "inside.txt").read_text()) == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_staging_dir_replaces_a_folder_only_when_the_block_succeeds(tmp_path):
    out = tmp_path / "model"
    with _io.staging_dir(out) as tmp:
        (tmp / "head.json").write_text("1")
    with pytest.raises(RuntimeError), _io.staging_dir(out) as tmp:
        (tmp / "head.json").write_text("2")
        raise RuntimeError
    assert (out / "head.json").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
