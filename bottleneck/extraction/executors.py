"""Executors: who runs the shards. The run loop hands an executor the shard plans and a
:class:`ShardJob` (everything a worker needs, serialisable); the executor calls
:func:`attempt_shard` for each plan wherever it likes and reports each outcome back. Only the
driver touches the manifest. Adding an executor is one module plus a line in ``EXECUTORS``.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bottleneck.cache.inputs import write_inputs
from bottleneck.data.sources import Source
from bottleneck.errors import UserError
from bottleneck.extraction.config import ExtractConfig
from bottleneck.extraction.feature_model import FeatureExtractor
from bottleneck.extraction.plan import ShardPlan
from bottleneck.extraction.shard import ShardResult, run_shard
from bottleneck.storage.machine import machine_error

EXECUTORS = {
    "local": "bottleneck.extraction.executor_local:LocalExecutor",
    "ray": "bottleneck.extraction.executor_ray:RayExecutor",
}


@dataclass(frozen=True)
class ShardJob:
    """What every shard of a run shares: the source, the resolved config, where to write (a
    folder per layer), the layers, and the engine's threads (None: the cores it may use)."""

    source: Source
    config: ExtractConfig
    out: tuple[Path, ...]
    batch_size: int
    layers: tuple[str | None, ...] = (None,)
    threads: int | None = None
    backend: str = "tensorflow"  # the Keras backend every worker runs
    # a run into a URL on workers without the driver's disk: each worker writes its shards
    # in a temp folder of its own and uploads them to these URLs (one per layer), opened with
    # these storage options; the driver alone writes the manifest
    remote_out: tuple[str, ...] | None = None
    storage_options: dict[str, Any] | None = None

    def feature_model(self, threads: int | None = None) -> FeatureExtractor:
        """The feature model this job's shards are computed with, built from the job alone."""
        return FeatureExtractor(self.config, layers=list(self.layers),
                                threads=threads or self.threads, source=self.source)


KEPT = "finished shards are kept"


@dataclass(frozen=True)
class ShardFailure:
    """A shard whose computation raised: which one and the traceback, or with ``stop`` the
    one line of an error the machine caused (a full disk), which ends the run."""

    index: int
    error: str
    stop: bool = False


Outcome = ShardResult | ShardFailure


def attempt_shard(job: ShardJob, extractor: FeatureExtractor, plan: ShardPlan,
                  on_batch: Callable[[int], object] | None = None) -> Outcome:
    """Run one shard and record which bytes it read (:mod:`bottleneck.cache.inputs`); an error
    becomes a :class:`ShardFailure`, so the other shards go on (unless the machine caused it:
    a full disk fails every shard alike)."""
    if job.remote_out is not None:
        return _attempt_uploaded(job, extractor, plan, on_batch)
    try:
        return _compute(job, extractor, plan, job.out, on_batch)
    except Exception as exc:  # recorded in the manifest and named at the end of the run
        line = machine_error(exc, job.out[0], KEPT)
        if line is not None:
            return ShardFailure(plan.index, line, stop=True)
        return ShardFailure(plan.index, traceback.format_exc(limit=8))


def _compute(job: ShardJob, extractor: FeatureExtractor, plan: ShardPlan,
             out: tuple[Path, ...], on_batch: Callable[[int], object] | None) -> ShardResult:
    result = run_shard(job.source, extractor, plan, out, job.batch_size, on_batch)
    if result.inputs is not None:  # each file's identity, hashed from the bytes it read
        for folder in out:
            write_inputs(folder, plan.file, plan.inputs_sha256, result.inputs)
        result.inputs = None  # the sidecar has them; the driver does not need them
    return result


def _attempt_uploaded(job: ShardJob, extractor: FeatureExtractor, plan: ShardPlan,
                      on_batch: Callable[[int], object] | None) -> Outcome:
    """The shard made in a temp folder of this worker, then uploaded whole (with its
    sidecar) to the run's URLs; a store's error ends the run in one line."""
    import tempfile

    from bottleneck.cache.inputs import inputs_name
    from bottleneck.storage.location import Remote, remote_errors, resolve
    from bottleneck.storage.remote_files import upload

    assert job.remote_out is not None
    with tempfile.TemporaryDirectory(prefix="bottleneck-shard-") as tmp:
        out = tuple(Path(tmp) / str(i) for i in range(len(job.remote_out)))
        for folder in out:
            folder.mkdir()
        try:
            result = _compute(job, extractor, plan, out, on_batch)
        except Exception:
            return ShardFailure(plan.index, traceback.format_exc(limit=8))
        try:
            for folder, url in zip(out, job.remote_out, strict=True):
                remote = resolve(url, job.storage_options)
                assert isinstance(remote, Remote)
                files = {name: folder / name for name in (plan.file, inputs_name(plan.file))
                         if (folder / name).is_file()}
                with remote_errors(url, "re-run the same command (finished shards are kept)"):
                    upload(remote, files)
        except UserError as exc:
            return ShardFailure(plan.index, exc.format_message(), stop=True)
        return result


class Executor(Protocol):
    """Runs shard plans and reports each outcome (and images done) as it lands."""

    def run(self, job: ShardJob, plans: list[ShardPlan], on_outcome: Callable[[Outcome], None],
            on_images: Callable[[int], object], extractor: FeatureExtractor | None) -> None: ...


def get_executor(name: str, workers: int | None = None, address: str | None = None) -> Any:
    """An executor by name (``local``, ``ray``)."""
    if name not in EXECUTORS:
        raise UserError(f"unknown executor '{name}'; choose one of: {', '.join(EXECUTORS)}.")
    if workers is not None and workers < 1:
        raise UserError("--workers must be a positive number of workers.")
    module, attribute = EXECUTORS[name].split(":")
    return getattr(importlib.import_module(module), attribute)(workers=workers, address=address)
