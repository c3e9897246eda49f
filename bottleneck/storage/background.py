"""One background thread that runs jobs (uploads) in the order they were given, so the
caller's next step (the next shard's compute) overlaps them.

The queue is bounded: a caller more than ``depth`` jobs ahead waits, so the work never runs
far ahead of the store. The first job that fails stops the rest (they are dropped, not run:
a later job may name what the failed one should have sent) and its exception is raised in
the caller by every later :meth:`Background.submit` and :meth:`Background.drain`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class Background:
    """A FIFO of jobs run one at a time on a daemon thread named ``name``."""

    def __init__(self, name: str, depth: int = 2) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    job()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
                self._error = exc
            finally:
                self._jobs.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job`` (waiting while the queue is full); raise instead the error of an
        earlier job, if one failed."""
        self._raise()
        self._jobs.put(job)

    def drain(self) -> None:
        """Wait until every queued job has run; raise the first error of one."""
        self._jobs.join()
        self._raise()

    def close(self) -> None:
        """Drop what has not started yet, wait for the running job, end the thread."""
        while True:
            try:
                self._jobs.get_nowait()
                self._jobs.task_done()
            except queue.Empty:
                break
        self._jobs.put(None)
        self._thread.join()
