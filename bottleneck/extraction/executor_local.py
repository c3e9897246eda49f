"""The local executor: this machine. One worker computes the shards one after another in
this process; with several GPUs visible (or ``--workers N``) there is one worker process per
GPU, each seeing only its own (``CUDA_VISIBLE_DEVICES``), or N CPU processes sharing the
cores. Workers only compute shards; the driver records every outcome."""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Callable
from typing import Any

from bottleneck.errors import UserError
from bottleneck.extraction.executors import Outcome, ShardJob, attempt_shard
from bottleneck.extraction.feature_model import FeatureExtractor
from bottleneck.extraction.plan import ShardPlan
from bottleneck.extraction.runtime import visible_gpus


class LocalExecutor:
    """Runs every shard on this machine: in this process, or one process per device."""

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        if address:
            raise UserError("--ray-address needs --executor ray.")
        self.workers = workers

    def run(self, job: ShardJob, plans: list[ShardPlan], on_outcome: Callable[[Outcome], None],
            on_images: Callable[[int], object], extractor: FeatureExtractor | None) -> None:
        gpus = visible_gpus() if extractor is None or extractor.device.kind == "gpu" else []
        workers = min(self.workers or max(1, len(gpus)), max(1, len(plans)))
        if workers == 1:
            extractor = extractor or job.feature_model()
            for plan in plans:
                on_outcome(attempt_shard(job, extractor, plan, on_batch=on_images))
            return
        _run_processes(job, plans, workers, gpus, on_outcome, on_images)


def _run_processes(job: ShardJob, plans: list[ShardPlan], workers: int, gpus: list[str],
                   on_outcome: Callable[[Outcome], None],
                   on_images: Callable[[int], object]) -> None:
    """Start ``workers`` processes (one per GPU when there are GPUs), feed them the plans,
    record outcomes as they come back. A worker that dies fails its shard; the run goes on."""
    context = multiprocessing.get_context("spawn")  # a fresh backend in each child
    tasks, results = context.Queue(), context.Queue()
    for plan in plans:
        tasks.put(plan)
    cores = max(1, (os.cpu_count() or 1) // workers)
    processes = []
    for index in range(workers):
        device = gpus[index] if gpus else ""
        process = context.Process(target=_worker,
                                  args=(job, tasks, results, index, device, cores), daemon=True)
        process.start()
        processes.append(process)
        tasks.put(None)  # one stop sign per worker, after the plans
    try:
        _collect(plans, processes, results, on_outcome, on_images)
    finally:  # a run stopped by the driver (a full disk, Ctrl-C) leaves no worker behind
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join(timeout=30)


def _collect(plans: list[ShardPlan], processes: list[Any], results: Any,
             on_outcome: Callable[[Outcome], None], on_images: Callable[[int], object]) -> None:
    """Record outcomes as the workers send them, until every shard has one."""
    pending = {plan.index for plan in plans}
    taken: dict[int, int] = {}  # shard → the worker computing it
    while pending:
        try:
            kind, worker, value = results.get(timeout=5)
        except queue.Empty:
            _fail_dead_workers(processes, taken, pending, on_outcome)
            continue
        if kind == "start":
            taken[value] = worker
        elif kind == "images":
            on_images(value)
        else:
            pending.discard(value.index)
            taken.pop(value.index, None)
            on_outcome(value)


def _fail_dead_workers(processes: list[Any], taken: dict[int, int], pending: set[int],
                       on_outcome: Callable[[Outcome], None]) -> None:
    from bottleneck.extraction.executors import ShardFailure

    for shard, worker in list(taken.items()):
        if not processes[worker].is_alive():
            code = processes[worker].exitcode
            on_outcome(ShardFailure(shard, f"the worker process died (exit code {code})"))
            pending.discard(shard)
            taken.pop(shard)
    if not any(p.is_alive() for p in processes) and pending:
        for shard in sorted(pending):
            on_outcome(ShardFailure(shard, "no worker process left to compute it"))
        pending.clear()


def _worker(job: ShardJob, tasks: Any, results: Any, worker: int, device: str,
            cores: int) -> None:
    """One worker process: its own device, its own feature model, shard after shard."""
    os.environ["CUDA_VISIBLE_DEVICES"] = device
    if not device:
        os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ["KERAS_BACKEND"] = job.backend
    extractor = job.feature_model(threads=cores)
    while (plan := tasks.get()) is not None:
        results.put(("start", worker, plan.index))
        outcome = attempt_shard(job, extractor, plan,
                                on_batch=lambda n: results.put(("images", worker, n)))
        results.put(("done", worker, outcome))
