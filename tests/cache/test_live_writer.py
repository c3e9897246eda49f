"""A command that finds a cache incomplete while an ``extract`` holds its lock says that it is
being written (by what, since when) and what to do, instead of advising to re-run extract."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

import bottleneck
from bottleneck.cache import open_cache
from bottleneck.cache.manifest import Manifest
from bottleneck.cli import main
from bottleneck.errors import UserError
from bottleneck.storage.lock import LOCK_FILE
from tests.conftest import write_class_folder

ARGS = {"backbone": "vgg16", "weights": "none", "image_size": 32, "progress": False,
        "shard_size": 4}
REPO = Path(__file__).resolve().parents[2]
HOLD = ("import sys; from pathlib import Path; from bottleneck.storage.lock import cache_lock\n"
        "with cache_lock(Path(sys.argv[1]), 'extract'):\n"
        "    print('held', flush=True); sys.stdin.read()")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("live_writer")
    images = write_class_folder(root / "images", per_class=2)
    return bottleneck.extract(str(images), out=root / "cache", **ARGS).root


@pytest.fixture()
def incomplete(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the cache as an extract leaves it midway: its last shard still pending."""
    out = tmp_path / "cache"
    shutil.copytree(pristine, out)
    manifest = Manifest.load(out)
    manifest.complete = False
    manifest.shards[-1].status = "pending"
    manifest.save(out)
    return out


@contextmanager
def hold_lock(folder: Path) -> Iterator[subprocess.Popen]:
    """Another live process holding ``folder``'s lock as extract does, until the block ends."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get(
        "PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "held"
        yield child
    finally:
        child.stdin.close()
        child.wait(timeout=60)


def test_an_incomplete_cache_being_written_names_its_writer(incomplete: Path,
                                                            tmp_path: Path) -> None:
    with hold_lock(incomplete) as child:
        writer = (f"{incomplete} is being written by extract \\(pid {child.pid} on "
                  f"{socket.gethostname()}, since 20")
        with pytest.raises(UserError, match=writer + r".*wait for it to finish.*ps -p"):
            open_cache(incomplete)
        result = CliRunner().invoke(main, ["fit", str(incomplete), "--head", "logreg",
                                           "-o", str(tmp_path / "model")])
        assert result.exit_code == 2 and "being written by extract" in result.stderr
        assert "re-run" not in result.stderr and "Traceback" not in result.output
        assert not (tmp_path / "model").exists()
    assert not (incomplete / LOCK_FILE).exists()
    with pytest.raises(UserError, match="is incomplete .*re-run the same extract command"):
        open_cache(incomplete)  # the writer is gone: finish it


def test_a_cache_whose_manifest_is_not_written_yet(tmp_path: Path) -> None:
    out = tmp_path / "starting"
    out.mkdir()
    with hold_lock(out) as child, pytest.raises(
            UserError, match=f"being written by extract \\(pid {child.pid}"):
        open_cache(out)
    with pytest.raises(UserError, match="not a bottleneck cache"):
        open_cache(out)


def test_a_complete_cache_reads_while_a_lock_is_held(pristine: Path, tmp_path: Path) -> None:
    """Attaching targets holds the lock of a complete cache: readers go on reading it."""
    out = tmp_path / "cache"
    shutil.copytree(pristine, out)
    with hold_lock(out):
        assert open_cache(out).load()["features"].shape[0] == 6
