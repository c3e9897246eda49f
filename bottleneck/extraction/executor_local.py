"""The local executor: one process, shards one after another (today's behaviour)."""

from __future__ import annotations

from collections.abc import Callable

from bottleneck.errors import UserError
from bottleneck.extraction.executors import Outcome, ShardJob, attempt_shard
from bottleneck.extraction.feature_model import FeatureExtractor
from bottleneck.extraction.plan import ShardPlan


class LocalExecutor:
    """Runs every shard in this process with one feature model."""

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        if address:
            raise UserError("--ray-address needs --executor ray.")
        if workers not in (None, 1):
            raise UserError("--workers needs --executor ray (the local executor is one "
                            "process; TensorFlow already uses every core).")

    def run(self, job: ShardJob, plans: list[ShardPlan], on_outcome: Callable[[Outcome], None],
            on_images: Callable[[int], object], extractor: FeatureExtractor | None) -> None:
        extractor = extractor or job.feature_model()
        for plan in plans:
            on_outcome(attempt_shard(job, extractor, plan, on_batch=on_images))
