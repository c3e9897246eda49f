"""One writer per remote cache: a lock object created with a conditional write.

On S3 (and S3-compatible stores) the lock ``.bottleneck.lock`` is created with
``If-None-Match: *``, so of two writers exactly one succeeds. It records owner, host, pid, the
action and a heartbeat that a background thread renews (``If-Match`` on its own ETag). A lock
whose heartbeat is older than ``BOTTLENECK_LOCK_STALE_S`` seconds (default 300) is taken over,
the takeover itself conditional on the stale lock's ETag; one whose writer died on this
machine is taken over at once. Stores without such a primitive
(``memory://``, ``gs://`` and ``az://`` for now) refuse to write unless ``--no-lock`` is given.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from bottleneck.errors import UserError
from bottleneck.storage.atomic import process_alive
from bottleneck.storage.location import Remote
from bottleneck.storage.ours import LOCK_FILE

STALE_ENV, HEARTBEAT_ENV = "BOTTLENECK_LOCK_STALE_S", "BOTTLENECK_LOCK_HEARTBEAT_S"
CONDITIONAL = ("s3", "s3a")


def _seconds(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise UserError(f"{name} must be a number of seconds.") from None


def _precondition_failed(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, FileExistsError) or "pre-condition" in text \
        or "precondition" in text or "412" in text


class S3Lock:
    """The lock object of one S3 folder, held between :meth:`acquire` and :meth:`release`."""

    def __init__(self, remote: Remote, action: str) -> None:
        self.remote, self.action = remote, action
        self.bucket, _, self.key = remote.child(LOCK_FILE).partition("/")
        self.record = {"owner": uuid.uuid4().hex, "host": socket.gethostname(),
                       "pid": os.getpid(), "action": action,
                       "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.etag: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> bytes:
        return json.dumps(self.record | {"heartbeat": time.time()}).encode()

    def _put(self, **condition: str) -> str:
        reply = self.remote.fs.call_s3("put_object", Bucket=self.bucket, Key=self.key,
                                       Body=self._body(), **condition)
        return str(reply["ETag"])

    def _current(self) -> tuple[dict[str, object] | None, str | None]:
        """The lock's record and its ETag (read before the body: a takeover conditional on
        it fails if the body read was newer)."""
        path = self.remote.child(LOCK_FILE)
        try:
            etag = str(self.remote.fs.info(path, refresh=True)["ETag"])
            body = self.remote.fs.cat_file(path)
        except FileNotFoundError:
            return None, None
        try:
            data = json.loads(body)
        except ValueError:
            data = {}
        return (data if isinstance(data, dict) else {}), etag

    def acquire(self) -> None:
        try:
            self.etag = self._put(IfNoneMatch="*")
        except OSError as exc:
            if not _precondition_failed(exc):
                raise
            self._take_over_if_stale()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name="bottleneck-lock-heartbeat")
        self._thread.start()

    def _take_over_if_stale(self) -> None:
        holder, etag = self._current()
        url = self.remote.url_of(LOCK_FILE)
        if holder is None:  # released in between: try once more
            try:
                self.etag = self._put(IfNoneMatch="*")
                return
            except OSError as exc:
                if not _precondition_failed(exc):
                    raise
                raise UserError(f"{self.remote.url} was just locked by another run; try "
                                "again when it ends.") from None
        stale_after = _seconds(STALE_ENV, 300)
        age = time.time() - float(holder.get("heartbeat", 0) or 0)
        pid = holder.get("pid")
        died_here = holder.get("host") == socket.gethostname() and isinstance(pid, int) \
            and not process_alive(pid)  # its writer died on this machine: no need to wait
        if age < stale_after and not died_here:
            raise UserError(
                f"{self.remote.url} is being written by {holder.get('action', 'another run')} "
                f"(pid {holder.get('pid')} on {holder.get('host')}, since "
                f"{holder.get('since')}, alive {age:.0f} s ago); wait for it to finish, or "
                f"once it is gone (stale after {stale_after:.0f} s) run again.")
        try:
            self.etag = self._put(IfMatch=etag)
        except OSError as exc:
            if not _precondition_failed(exc):
                raise
            raise UserError(f"{self.remote.url} was just taken over by another run; try "
                            "again when it ends.") from None
        print(f"note: took over the lock {url} of {holder.get('action', 'a run')} (pid "
              f"{holder.get('pid')} on {holder.get('host')}), silent for {age:.0f} s",
              file=sys.stderr)

    def _beat(self) -> None:
        every = _seconds(HEARTBEAT_ENV, 30)
        while not self._stop.wait(every):
            try:
                self.etag = self._put(IfMatch=self.etag or "")
            except OSError as exc:
                if _precondition_failed(exc):
                    self.lost = True
                    return
            except Exception:  # a network hiccup: the next beat tries again
                continue

    def check(self) -> None:
        """Refuse to publish once another run has taken the lock over."""
        if self.lost:
            raise UserError(f"{self.remote.url}: another run took over this cache's lock (this "
                            "one looked stale); stop one of them and re-run the same command.")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost:
            return
        holder, etag = self._current()
        if holder is not None and holder.get("owner") == self.record["owner"]:
            self.remote.fs.call_s3("delete_object", Bucket=self.bucket, Key=self.key)


class NoLock:
    """What ``--no-lock`` holds: nothing (the user vouches that no one else writes)."""

    def check(self) -> None:
        return None


@contextmanager
def remote_lock(remote: Remote, action: str, enabled: bool = True) -> Iterator[S3Lock | NoLock]:
    """Hold ``remote``'s lock for the block, or refuse in one line where the store has no
    conditional write (unless ``enabled`` is False: ``--no-lock``)."""
    if not enabled:
        yield NoLock()
        return
    if remote.protocol not in CONDITIONAL:
        raise UserError(f"{remote.url}: {remote.protocol}:// offers no conditional write to "
                        "lock the cache with; pass --no-lock to write without the lock (only "
                        "if no other run writes there).")
    lock = S3Lock(remote, action)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
