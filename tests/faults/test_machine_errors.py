"""Errors the user's machine causes, for real: a full disk (a small tmpfs), a read-only one,
a file-size limit. Each ends in one line naming the path and what to do, leaves every output
whole (a cache resumable, its manifest true), and the same command completes once the space
is back."""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cache import Cache, open_cache
from bottleneck.cli import main
from bottleneck.errors import PartialFailure, UserError
from bottleneck.storage.machine import machine_error

pytest_plugins = ["tests.heads_fixtures"]

REPO = Path(__file__).resolve().parents[2]


class Disk:
    """A small tmpfs of our own: filled with ballast to leave a little room, then freed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ballast = root / "ballast"

    def leave(self, free_bytes: int) -> None:
        self.free()
        stat = os.statvfs(self.root)
        room = stat.f_bavail * stat.f_frsize - free_bytes
        with open(self.ballast, "wb") as handle:
            handle.write(b"\0" * max(0, room))

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def read_only(self, on: bool = True) -> None:
        mode = "ro" if on else "rw"
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.root)], check=True)


def mount_tmpfs(root: Path, size: str) -> Disk:
    root.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'})")
    return Disk(root)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    """A 512 KiB file system."""
    found = mount_tmpfs(tmp_path / "disk", "512k")
    yield found
    subprocess.run(["umount", "-l", str(found.root)], check=False)


@pytest.fixture
def big_disk(tmp_path: Path) -> Iterator[Disk]:
    """A 2 MiB file system."""
    found = mount_tmpfs(tmp_path / "big_disk", "2m")
    yield found
    subprocess.run(["umount", "-l", str(found.root)], check=False)


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    """``python -m bottleneck.cli ARGS`` in a fresh process (a crash at exit would show)."""
    env = os.environ | {"PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "bottleneck.cli", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300, cwd=REPO)


def run_cli(*args: object) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line(done: subprocess.CompletedProcess[str] | object, text: str) -> str:
    stderr = getattr(done, "stderr", None) or getattr(done, "output", "")
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and text in lines[0], stderr
    return lines[0]


def extract_args(images: Path, weights: Path, out: Path) -> list[object]:
    return ["extract", images, "-b", "vgg16", "--weights", weights, "--image-size", "32",
            "--shard-size", "5", "--batch-size", "5", "-o", out, "-q"]


def rows_with_h5py(out: Path) -> dict[str, np.ndarray]:
    manifest = json.loads((out / "manifest.json").read_text())
    rows = {}
    for shard in manifest["shards"]:
        with h5py.File(out / shard["file"], "r") as handle:
            rows |= dict(zip(handle["paths"].asstr()[:], handle["features"][:], strict=True))
    return rows


def test_extract_on_a_full_disk_stops_in_one_line_and_completes_once_freed(
        big_disk, split_images, vgg16_he_weights, feature_cache):
    out = big_disk.root / "cache"
    big_disk.leave(96 * 1024)  # the manifest and a few shards of the 90 images
    done = cli(*extract_args(split_images, vgg16_he_weights, out))
    assert done.returncode == 1, done.stderr  # partial: the finished shards are kept
    line = one_line(done, "no space left on the device")
    assert str(out) in line and "re-run the same command" in line
    manifest = json.loads((out / "manifest.json").read_text())  # whole, and true:
    finished = [s for s in manifest["shards"] if s["status"] == "done"]
    assert finished and not manifest["complete"]
    for shard in finished:
        assert (out / shard["file"]).stat().st_size == shard["bytes"]
    assert not [p for p in out.iterdir() if ".tmp-" in p.name], "temp files are cleaned up"

    big_disk.free()
    cache = bottleneck.extract(str(split_images), backbone="vgg16",
                               weights=str(vgg16_he_weights), image_size=32, shard_size=5,
                               batch_size=5, out=out, progress=False)
    cache.verify()
    rows, expected = rows_with_h5py(out), rows_with_h5py(feature_cache.root)
    assert len(rows) == cache.rows == len(expected) == 90
    for key, feature in expected.items():
        np.testing.assert_allclose(rows[key], feature, rtol=1e-5, atol=1e-5)


def test_extract_into_a_read_only_file_system(disk, image_folder, vgg16_he_weights):
    disk.read_only()
    try:
        result = run_cli(*extract_args(image_folder, vgg16_he_weights, disk.root / "cache"))
    finally:
        disk.read_only(False)
    assert result.exit_code == 2
    assert "read-only file system" in one_line(result, "choose a writable --out")


def test_extract_past_a_file_size_limit(image_folder, vgg16_he_weights, tmp_path):
    """No mount needed: RLIMIT_FSIZE makes the shard writes fail with EFBIG."""
    out = tmp_path / "cache"
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it: EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (12 * 1024, limits[1]))
    try:
        result = run_cli(*extract_args(image_folder, vgg16_he_weights, out))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    assert result.exit_code in (1, 2), result.output
    one_line(result, "file too large")
    json.loads((out / "manifest.json").read_text())  # the manifest is whole
    assert run_cli(*extract_args(image_folder, vgg16_he_weights, out)).exit_code == 0
    assert len(rows_with_h5py(out)) == 36


@pytest.mark.parametrize("room", [0, 8 * 1024])
def test_targets_on_a_full_disk_leave_the_cache_as_it_was(big_disk, feature_cache: Cache,
                                                          tmp_path, room):
    root = big_disk.root / "cache"
    shutil.copytree(feature_cache.root, root)
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"circle": 1.0, "square": 2.0, "stripes": 3.0}))
    args = ["targets", root, "--synthetic-prices", "--class-prices", prices]
    before = (root / "manifest.json").read_bytes()
    big_disk.leave(room)  # none: the lock cannot be taken; a little: the targets file fails
    result = run_cli(*args)
    assert result.exit_code == 2
    one_line(result, "no space left on the device")
    assert (root / "manifest.json").read_bytes() == before
    assert not [p for p in root.iterdir() if ".tmp-" in p.name or p.name.startswith("targets")]
    open_cache(root).verify()
    big_disk.free()
    assert run_cli(*args).exit_code == 0
    assert open_cache(root).has_targets


@pytest.mark.parametrize("room", [0, 16 * 1024])  # nothing, or part of the files
def test_fit_and_bench_on_a_full_disk(disk, feature_cache: Cache, room):
    disk.leave(room)
    model, report = disk.root / "model", disk.root / "bench"
    result = run_cli("fit", feature_cache.root, "--head", "logreg", "-o", model, "-q")
    assert result.exit_code == 2
    assert str(disk.root) in one_line(result, "no space left on the device")
    result = run_cli("bench", feature_cache.root, "--heads", "logreg", "--jobs", "1", "-o",
                     report)
    assert result.exit_code == 2
    assert str(disk.root) in one_line(result, "no space left on the device")
    assert sorted(p.name for p in disk.root.iterdir()) in (["ballast"], ["ballast", "bench"])
    disk.free()
    assert run_cli("fit", feature_cache.root, "--head", "logreg", "-o", model,
                   "-q").exit_code == 0
    assert (model / "checksums.json").is_file()


def test_export_on_a_full_disk_keeps_nothing_half_written(disk, feature_cache: Cache,
                                                          tmp_path):
    model = tmp_path / "model"
    bottleneck.fit(feature_cache, "logreg", model)
    disk.leave(64 * 1024)
    with pytest.raises(UserError, match=f"^{disk.root}/model.keras: no space left on the"):
        bottleneck.export(model, disk.root / "model.keras")
    assert sorted(p.name for p in disk.root.iterdir()) == ["ballast"]


def test_only_the_machines_errors_lose_their_traceback(tmp_path):
    assert machine_error(OSError(errno.ENOSPC, "No space left", "/x/y")) is not None
    assert machine_error(OSError(errno.EEXIST, "File exists", "/x/y")) is None  # a bug
    assert machine_error(ValueError("bad")) is None
    gone = tmp_path / "gone"
    missing = FileNotFoundError(errno.ENOENT, "No such file", str(gone / "manifest.json"))
    assert "vanished" in machine_error(missing, gone)
    gone.mkdir()  # the folder is there: a missing file in it is ours to explain
    assert machine_error(missing, gone) is None
    assert issubclass(PartialFailure, UserError)
    temp = OSError(errno.ENOSPC, "No space left", "/c/.manifest.json.tmp-123")
    assert machine_error(temp).startswith("/c/manifest.json: no space left")  # the known name
