"""One writer per cache: a lock file holding the owner's pid and host.

A second ``extract`` (or ``targets``) into the same cache refuses in one line while the first
goes on untouched. The lock is removed when the writer ends; one left by a process that died
on this host (``kill -9``, a power cut) is taken over. A reader that finds a cache incomplete
asks :func:`live_writer` whether it is being written now, and says so instead of advising a
re-run.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bottleneck.errors import UserError
from bottleneck.storage.atomic import process_alive

LOCK_FILE = ".bottleneck.lock"


def _holder(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _stale(holder: dict[str, object] | None) -> bool:
    """A lock whose writer died on this host (or an unreadable one left half-written)."""
    if holder is None:
        return True
    pid = holder.get("pid")
    return holder.get("host") == socket.gethostname() and isinstance(pid, int) \
        and not process_alive(pid)


def live_writer(root: Path) -> dict[str, object] | None:
    """The record (``action``, ``pid``, ``host``, ``since``) of the writer holding ``root``'s
    lock now, or None when none does (no lock, or one left by a process that died here). A
    lock taken on another host counts as live: its process cannot be checked from here."""
    path = Path(root) / LOCK_FILE
    holder = _holder(path) if path.is_file() else None
    return None if _stale(holder) else holder


def describe_writer(root: Path, holder: dict[str, object]) -> str:
    """``ROOT is being written by extract (pid 123 on host, since 2026-12-03T08:00:00)``."""
    return (f"{root} is being written by {holder.get('action', 'another run')} (pid "
            f"{holder.get('pid')} on {holder.get('host')}, since {holder.get('since')})")


def _try_create(path: Path, action: str) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    record = {"pid": os.getpid(), "host": socket.gethostname(), "action": action,
              "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    return True


@contextmanager
def cache_lock(root: Path, action: str) -> Iterator[None]:
    """Hold ``root``'s lock for the block (``root`` must exist)."""
    path = root / LOCK_FILE
    if not _try_create(path, action):
        holder = _holder(path)
        if not _stale(holder):
            raise UserError(f"{describe_writer(root, holder)}; wait for it to finish, or "
                            f"delete {path} if that process is gone.")
        path.unlink(missing_ok=True)  # the writer died: take the lock over
        if not _try_create(path, action):
            raise UserError(f"{root} was just locked by another run; try again when it ends.")
    try:
        yield
    finally:
        holder = _holder(path)
        if holder is not None and holder.get("pid") == os.getpid():
            path.unlink(missing_ok=True)
