"""The Ray executor: an actor pool over cores, GPUs and machines (Ray Core, not Ray Data).

Each actor builds its feature model once from the serialised :class:`ShardJob` (the weights
digest recorded in the config proves every machine runs the same weights), writes the shards
it is given straight into ``--out`` (which every worker must reach, as it must reach the
images), and returns the :class:`ShardResult`; the driver alone updates the manifest. A worker
process that dies is restarted and its shard retried. With GPUs visible there is one worker per
GPU (on the driver's Keras backend; memory grown, not pre-allocated); CPU workers see no GPU
and get an explicit thread budget, so N workers on N cores do not oversubscribe.

Workers import the installed package wherever the command runs: Ray puts the driver's working
folder first on its workers' ``sys.path`` (a folder holding a ``bottleneck/`` folder, such as
the parent of a clone, would shadow the package), unless the job has a ``working_dir``; so a
cluster started here gets an empty one, and every path a worker reads is made absolute first.
Ray's own log lines stay off the terminal.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bottleneck.errors import UserError
from bottleneck.extraction.executors import Outcome, ShardJob, attempt_shard
from bottleneck.extraction.feature_model import FeatureExtractor
from bottleneck.extraction.plan import ShardPlan

INSTALL_HINT = "the ray executor needs Ray: pip install 'bottleneck[ray]'"


class ShardWorker:
    """One Ray actor: a feature model built on its first shard, then shard after shard.

    The job comes with each shard (one object-store copy, shared), not to the constructor: Ray
    warns on the terminal about an actor that restarts with constructor arguments in the store.
    """

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.extractor: FeatureExtractor | None = None

    def _build(self, job: ShardJob) -> FeatureExtractor:
        from bottleneck.backend import import_keras

        import_keras(job.backend)  # memory growth / no pre-allocation, exact fp32
        if job.backend == "tensorflow":
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(self.threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, self.threads)))
        elif job.backend == "torch":
            import torch

            torch.set_num_threads(self.threads)
        return job.feature_model(self.threads)

    def run(self, job: ShardJob, plan: ShardPlan) -> Outcome:
        if self.extractor is None:
            self.extractor = self._build(job)
        return attempt_shard(job, self.extractor, plan)

    def pid(self) -> int:
        return os.getpid()


class RayExecutor:
    """Schedules shards on a pool of Ray actors (a local cluster unless ``address``)."""

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError(INSTALL_HINT) from None
        self.workers, self.address = workers, address
        self.actors: list[Any] = []

    def _start(self) -> tuple[bool, int, int]:
        """Connect or start a cluster; (started here, workers, GPUs per worker)."""
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        started = not ray.is_initialized()
        if started:
            # never every core by default: the driver needs one too (ray#44687)
            cores = os.cpu_count() or 1
            where = {"address": self.address} if self.address else \
                {"num_cpus": min(cores, self.workers or cores)}
            with tempfile.TemporaryDirectory(prefix="bottleneck-ray-") as empty:
                ray.init(**where, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.ERROR, runtime_env={"working_dir": empty})
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        workers = self.workers or gpus or max(1, int(resources.get("CPU", 1)))
        return started, workers, 1 if gpus else 0

    def run(self, job: ShardJob, plans: list[ShardPlan], on_outcome: Callable[[Outcome], None],
            on_images: Callable[[int], object], extractor: FeatureExtractor | None) -> None:
        import ray
        from ray.util import ActorPool

        if not plans:
            return
        job = absolute(job)
        started, workers, gpus = self._start()
        try:
            cpus = max(1, int(ray.cluster_resources().get("CPU", 1)) // workers)
            env = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": job.backend,
                   "XLA_PYTHON_CLIENT_PREALLOCATE": "false"} | (
                {} if gpus else {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"})
            worker = ray.remote(ShardWorker).options(
                num_cpus=cpus, num_gpus=gpus, max_restarts=-1, max_task_retries=-1,
                runtime_env={"env_vars": env})
            job_ref = ray.put(job)
            self.actors = [worker.remote(cpus) for _ in range(min(workers, len(plans)))]
            pool = ActorPool(self.actors)
            sizes = {plan.index: len(plan.items) for plan in plans}
            shards = pool.map_unordered(lambda actor, plan: actor.run.remote(job_ref, plan), plans)
            for outcome in shards:
                on_outcome(outcome)
                on_images(sizes[outcome.index])
        finally:
            for actor in self.actors:
                ray.kill(actor)
            self.actors = []
            if started:
                ray.shutdown()


def absolute(job: ShardJob) -> ShardJob:
    """The job with its output folders absolute: a worker runs in its own working folder
    (sources and weights files resolve their paths when they are opened)."""
    return dataclasses.replace(job, out=tuple(Path(os.path.abspath(p)) for p in job.out))
