"""Run a frozen backbone once over a source and write the features as HDF5 shards.

The run is: resolve the config and build the feature model → plan shards (keeping what an
earlier run of the same config finished and is still valid) → hand the shards to an executor
(local or Ray), recording each outcome in the manifest as it lands → count rows and mark the
cache complete. A crashed run resumes where it stopped; a grown source computes only its new
images.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck import __version__
from bottleneck._io import remove_stale_temp_files
from bottleneck.backbones import get_backbone
from bottleneck.cache.lock import cache_lock
from bottleneck.cache.manifest import Manifest, shard_index
from bottleneck.cache.reader import TARGETS_FILE, Cache
from bottleneck.cache.shards import read_column
from bottleneck.cache.targets import attach_targets, reattach_targets
from bottleneck.data import SPLITS, Source, images, open_source
from bottleneck.errors import PartialFailure, UserError
from bottleneck.extraction.config import ExtractConfig
from bottleneck.extraction.executors import Outcome, ShardFailure, ShardJob, get_executor
from bottleneck.extraction.feature_model import FeatureExtractor
from bottleneck.extraction.outdir import check_out_dir, previous_run, shard_keys
from bottleneck.extraction.plan import ShardPlan, plan_shards, replan
from bottleneck.extraction.progress import progress_bar


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shaped the features."""
    import h5py
    import keras
    import tensorflow as tf

    return {"bottleneck": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "h5py": h5py.__version__, "numpy": np.__version__}


def fresh_manifest(source: Source, extractor: FeatureExtractor) -> Manifest:
    """The manifest of a run that has planned and computed nothing yet."""
    backbone = get_backbone(extractor.config.backbone)
    config = extractor.config.to_dict() | {
        "feature_shape": list(extractor.feature_shape),
        "preprocessing": images.PREPROCESSING | {"preprocess_input": backbone.preprocess_name},
    }
    if extractor.config.augment:
        config["preprocessing"]["augmentation"] = (
            f"{extractor.config.augment} seeded views per train image "
            f"({extractor.config.augment_ops}) after the resize; view 0, val and test: none")
    return Manifest(config=config, source=source.describe(), classes=source.classes,
                    versions=library_versions(), shards=[])


def plan_run(out: Path, source: Source, manifest: Manifest, shard_size: int,
             overwrite: bool, progress: bool) -> tuple[list[ShardPlan], Manifest | None]:
    """Fill ``manifest.shards`` (kept and planned) and save it; returns what to compute and
    the earlier run's manifest. Shards an earlier run made that are no longer planned are
    deleted (they are ours), after the new manifest is saved."""
    items = source.items()
    old = previous_run(out, manifest, overwrite)
    if old is None:
        plans, kept, dropped = plan_shards(items, shard_size), [], []
    else:
        found = replan(items, old, shard_keys(out, old), shard_size)
        plans, kept, dropped = found.plans, found.kept, found.dropped
    manifest.shards = sorted(kept + [p.record() for p in plans],
                             key=lambda record: shard_index(record.file))
    remove_stale_temp_files(out)
    manifest.save(out)
    planned = {record.file for record in manifest.shards}
    for record in (old.shards if old else []):
        if record.file not in planned:
            (out / record.file).unlink(missing_ok=True)
    if old is not None and progress:
        new = sum(len(p.items) for p in plans)
        print(f"kept {len(kept)} finished shards ({sum(r.inputs for r in kept)} images); "
              f"computing {len(plans)} shards ({new} images)"
              + (f"; {len(dropped)} shards lost images and are recomputed" if dropped else ""),
              file=sys.stderr)
    return plans, old


def record_outcome(manifest: Manifest, out: Path, outcome: Outcome) -> None:
    """Write one shard's outcome into the manifest and save it (the driver alone does)."""
    record = next(r for r in manifest.shards if shard_index(r.file) == outcome.index)
    if isinstance(outcome, ShardFailure):
        record.status, record.error = "failed", outcome.error
    else:
        record.status, record.rows, record.sha256 = "done", outcome.rows, outcome.sha256
        record.failures, record.error = outcome.failures, None
        record.bytes = (out / record.file).stat().st_size
    manifest.save(out)


def finish(out: Path, manifest: Manifest, source: Source,
           previous_targets: dict[str, Any] | None = None) -> Cache:
    """Count rows per split, mark the cache complete, attach the source's targets or those
    of the earlier run (see :func:`~bottleneck.cache.targets.reattach_targets`)."""
    failed = [r for r in manifest.shards if not r.done]
    if failed:
        reason = (failed[0].error or "not computed").strip().splitlines()[-1]
        raise PartialFailure(f"{len(failed)} shard(s) failed, e.g. {failed[0].file} ({reason}); "
                           f"the others are kept: re-run the same command to retry (the "
                           f"traceback is in {out / 'manifest.json'}).")
    counts = dict.fromkeys(SPLITS, 0)
    for shard in manifest.shards:
        splits, n = np.unique(read_column(out / shard.file, "split"), return_counts=True)
        for split, count in zip(splits, n, strict=True):
            counts[str(split)] += int(count)
    manifest.complete = True
    manifest.rows = sum(counts.values())
    manifest.split_counts = counts
    manifest.failures = len(manifest.failure_list)
    manifest.save(out)
    cache = Cache(out, manifest)
    source_targets = source.targets()
    if source_targets is not None:
        attach_targets(cache, source_targets, {"kind": "source"})
    elif previous_targets is not None:
        problem = reattach_targets(cache, previous_targets)
        if problem:
            stale = out / previous_targets.get("file", TARGETS_FILE)
            stale.unlink(missing_ok=True)  # ours, and no longer recorded
            print(f"note: the targets attached earlier were dropped ({problem}); attach them "
                  f"again with `bottleneck targets {out} ...`", file=sys.stderr)
    return cache


def extract(
    source: Source | str, backbone: str, out: str | Path, weights: str = "imagenet",
    layer: str | None = None, pooling: str = "avg", image_size: int | None = None,
    dtype: str = "float32", batch_size: int = 32, shard_size: int = 1024,
    overwrite: bool = False, progress: bool = True, executor: str = "local",
    workers: int | None = None, ray_address: str | None = None, augment: int = 0,
    augment_ops: str | None = None,
) -> Cache:
    """Extract features of every image in ``source`` into a cache at ``out``; resumable and
    incremental. ``executor``: ``local`` (one process) or ``ray`` (``workers`` actors on a
    local cluster, or on the cluster at ``ray_address``). ``augment``: K seeded views of each
    train image besides itself (``augment_ops``, see :mod:`bottleneck.data.augment`)."""
    if isinstance(source, str):
        source = open_source(source)
    if batch_size <= 0:
        raise UserError("--batch-size must be a positive number of images.")
    if shard_size <= 0:
        raise UserError("--shard-size must be a positive number of images.")
    runner = get_executor(executor, workers, ray_address)
    out = Path(out).expanduser()
    extractor = FeatureExtractor(ExtractConfig(backbone=backbone, weights=weights, layer=layer,
                                               pooling=pooling, image_size=image_size,
                                               dtype=dtype, augment=augment,
                                               augment_ops=augment_ops))
    check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    with cache_lock(out, "extract"):
        manifest = fresh_manifest(source, extractor)
        plans, old = plan_run(out, source, manifest, shard_size, overwrite, progress)
        job = ShardJob(source, extractor.config, out, batch_size)
        label = f"{extractor.config.backbone} → {out.name}"
        with progress_bar(sum(len(p.items) for p in plans), label, enabled=progress) as bar:
            runner.run(job, plans, lambda outcome: record_outcome(manifest, out, outcome),
                       bar.update, extractor)
        remove_stale_temp_files(out)
        return finish(out, manifest, source, old.targets if old else None)
