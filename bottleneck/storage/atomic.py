"""The floor every stage stands on: atomic writes, sha256, JSON, the user cache directory.

Every file the tool writes goes through :func:`atomic_path` (temp name, fsync, rename), so a
reader never sees half a file and a crash leaves only a temp file that the next run removes.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

TEMP_MARK = ".tmp-"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def temp_name(path: Path) -> Path:
    """``dir/.NAME.tmp-PID``: where ``path`` is written before it is renamed into place."""
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, fsync: bool = True) -> Iterator[Path]:
    """Yield a temp path to write; on success fsync it and rename it over ``path``.

    On an exception the temp file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = temp_name(path)
    try:
        yield tmp
        install(tmp, path, fsync)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def install(tmp: Path, path: Path, fsync: bool = True) -> None:
    """Put the finished file ``tmp`` in place as ``path`` in one rename (fsync'd first).

    The single step where anything this tool writes becomes visible: a reader sees the old
    file or the new one, never half of either.
    """
    if fsync:
        _fsync(tmp)
    os.replace(tmp, path)


def atomic_write(path: str | Path, data: bytes | str, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (text is UTF-8)."""
    with atomic_path(path, fsync) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def to_jsonable(value: Any) -> Any:
    """Tuples, numpy values and paths → plain JSON values; other objects → their repr."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def write_json(path: str | Path, data: Any, fsync: bool = True) -> None:
    """Pretty UTF-8 JSON, written atomically."""
    atomic_write(path, json.dumps(to_jsonable(data), indent=2) + "\n", fsync)


def read_json(path: str | Path) -> Any:
    """Parsed JSON of a file (``OSError``/``ValueError`` propagate to the caller)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _fresh_staging(out: Path) -> Path:
    """An empty temp sibling of ``out``, after recovering what an interrupted swap left."""
    out.parent.mkdir(parents=True, exist_ok=True)
    recover_staging(out)
    staging = temp_name(out)
    _remove(staging)
    staging.mkdir()
    return staging


@contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A temp sibling of ``out`` to fill; swapped in for ``out`` only when the block succeeds.

    An earlier ``out`` (which the caller has checked is ours to replace) is moved aside
    first and deleted only after the new one is in place (see :func:`swap_in`).
    """
    tmp = _fresh_staging(out)
    try:
        yield tmp
        swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_output(out: Path) -> Iterator[Path]:
    """A path named like ``out`` in a temp sibling folder, for writers that pick the format
    by the name (Keras) or make a folder (SavedModel); swapped in for ``out`` on success."""
    staging = _fresh_staging(out)
    try:
        target = staging / out.name
        yield target
        if target.is_file():
            _fsync(target)
        swap_in(target, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def swap_in(new: Path, out: Path) -> None:
    """Replace ``out`` (a file, a folder or nothing) by ``new``, a sibling of it.

    A folder cannot be renamed over another, so an earlier ``out`` is first moved aside and
    deleted only once ``new`` is in place; :func:`recover_staging` puts it back if the process
    died in between.
    """
    old = _aside_name(out, os.getpid())
    moved = out.exists() or out.is_symlink()
    if moved:
        os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        if moved:  # the new one did not land: the old one goes back
            os.replace(old, out)
        raise
    _remove(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _aside_name(out: Path, pid: int) -> Path:
    return out.with_name(f".{out.name}.old{TEMP_MARK}{pid}")


def recover_staging(out: Path) -> None:
    """Clean up after a writer of ``out`` that died: put a moved-aside ``out`` (file or
    folder) back if the new one never landed, and delete its half-filled staging."""
    for path in out.parent.glob(f".{glob.escape(out.name)}*{TEMP_MARK}*"):
        pid = path.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or process_alive(int(pid)):
            continue
        aside = _aside_name(out, int(pid))
        if path == aside and not (out.exists() or out.is_symlink()):
            os.replace(path, out)
        elif path in (aside, out.with_name(f".{out.name}{TEMP_MARK}{pid}")):
            _remove(path)


def process_alive(pid: int) -> bool:
    """True if a process with ``pid`` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale_temp(path: Path) -> bool:
    """A temp file of this tool whose writer died (its pid no longer runs)."""
    pid = path.name.rsplit("-", 1)[-1]
    return path.name.startswith(".") and TEMP_MARK in path.name and pid.isdigit() \
        and not process_alive(int(pid)) and path.is_file()


def remove_stale_temp_files(folder: Path) -> None:
    """Delete temp files of this tool left by writers that died."""
    for tmp in folder.glob(f".*{TEMP_MARK}*"):
        if is_stale_temp(tmp):
            tmp.unlink(missing_ok=True)


def user_cache_dir() -> Path:
    """``$BOTTLENECK_CACHE_DIR``, else ``$XDG_CACHE_HOME/bottleneck``, else
    ``~/.cache/bottleneck``."""
    if os.environ.get("BOTTLENECK_CACHE_DIR"):
        return Path(os.environ["BOTTLENECK_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "bottleneck"
    return Path.home() / ".cache" / "bottleneck"
