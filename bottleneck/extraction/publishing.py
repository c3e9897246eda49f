"""Where an extraction's files go once made: nowhere further for a local ``--out``; for a URL,
the store (see :mod:`bottleneck.cache.remote`), with Ray workers uploading their own shards.

The run loop calls the same hooks either way, so the local path stays exactly as it was.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from bottleneck.cache.manifest import Manifest, shard_index
from bottleneck.cache.reader import Cache
from bottleneck.extraction.executors import Outcome, ShardFailure, ShardJob
from bottleneck.storage.location import is_url, local_path, storage_options


class Publishing:
    """The ``--out`` of one run: a local folder, or a URL behind a local staging folder."""

    def __init__(self, out: str | Path, lock: bool = True) -> None:
        self.remote: Any = None
        if is_url(out):
            from bottleneck.cache.remote import RemoteOutput

            self.remote = RemoteOutput(str(out), lock)
        self.folder = self.remote.staging if self.remote is not None else local_path(out)

    @property
    def label(self) -> str:
        """The output as the progress bar names it."""
        return self.remote.remote.url if self.remote is not None else self.folder.name

    def session(self, outs: list[Path]) -> contextlib.AbstractContextManager[Any]:
        """For a URL: hold its lock and mirror what it holds into staging."""
        return self.remote.session(outs) if self.remote is not None \
            else contextlib.nullcontext()

    def publish(self, folder: Path, wait: bool = True) -> None:
        """Send what ``folder``'s manifest names to the store, then the manifest;
        ``wait=False``: on a background thread, so the next shard's compute overlaps it."""
        if self.remote is not None:
            self.remote.publish(folder, wait)

    def job(self, job: ShardJob, executor: str) -> ShardJob:
        """On Ray into a URL, workers upload their shards themselves (no shared disk)."""
        if self.remote is None or executor != "ray":
            return job
        return replace(job, remote_out=tuple(self.remote.url_of(f) for f in job.out),
                       storage_options=storage_options())

    def landed(self, job: ShardJob, outcome: Outcome, manifest: Manifest) -> None:
        """A shard a worker uploaded is fetched into staging before it is recorded."""
        if job.remote_out is None or isinstance(outcome, ShardFailure):
            return
        file = next(r.file for r in manifest.shards if shard_index(r.file) == outcome.index)
        for folder, sha in zip(job.out, outcome.sha256s or [outcome.sha256], strict=True):
            self.remote.adopt(folder, file, sha)

    def located(self, cache: Cache, folder: Path) -> Cache:
        """The cache, knowing its URL."""
        if self.remote is not None:
            cache.location = self.remote.url_of(folder)
        return cache
