"""Run a frozen backbone once over a source and write the features as HDF5 shards.

The run is: resolve the config and build the feature model → plan shards → prepare ``--out``
(carry over finished shards of an earlier run with the same config) → compute the shards that
are not done, recording each in the manifest as it lands → count rows and mark the cache
complete. A crashed run resumes where it stopped.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck import __version__
from bottleneck._io import remove_stale_temp_files, sha256_file
from bottleneck.backbones import get_backbone
from bottleneck.cache.lock import LOCK_FILE, cache_lock
from bottleneck.cache.manifest import MANIFEST, Manifest, ShardRecord, is_cache
from bottleneck.cache.reader import TARGETS_FILE, Cache
from bottleneck.cache.shards import read_column
from bottleneck.cache.targets import attach_targets, reattach_targets
from bottleneck.data import SPLITS, Source, images, open_source
from bottleneck.errors import UserError
from bottleneck.extraction.config import ExtractConfig
from bottleneck.extraction.feature_model import FeatureExtractor
from bottleneck.extraction.plan import ShardPlan, plan_shards
from bottleneck.extraction.progress import progress_bar
from bottleneck.extraction.shard import run_shard


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shaped the features."""
    import h5py
    import keras
    import tensorflow as tf

    return {"bottleneck": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "h5py": h5py.__version__, "numpy": np.__version__}


def fresh_manifest(source: Source, extractor: FeatureExtractor,
                   plans: list[ShardPlan]) -> Manifest:
    """The manifest of a run that has computed nothing yet."""
    backbone = get_backbone(extractor.config.backbone)
    config = extractor.config.to_dict() | {
        "feature_shape": list(extractor.feature_shape),
        "preprocessing": images.PREPROCESSING | {"preprocess_input": backbone.preprocess_name},
    }
    return Manifest(config=config, source=source.describe(), classes=source.classes,
                    versions=library_versions(), shards=[p.record() for p in plans])


def _intact(out: Path, shard: ShardRecord) -> bool:
    path = out / shard.file
    return path.is_file() and sha256_file(path) == shard.sha256


def check_out_dir(out: Path) -> None:
    """Refuse an --out that is a file, or a folder with things in it that is not our cache."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a directory for the cache.")
    if out.is_dir() and not is_cache(out) and any(p.name != LOCK_FILE for p in out.iterdir()):
        raise UserError(f"{out} is not empty and is not a bottleneck cache; choose a new or "
                        "empty --out directory.")


def remove_cache_files(out: Path, old: Manifest) -> None:
    """Delete what an earlier cache recorded (shards, targets, manifest), nothing else."""
    for shard in old.shards:
        (out / shard.file).unlink(missing_ok=True)
    if old.targets is not None:
        (out / old.targets.get("file", TARGETS_FILE)).unlink(missing_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)


def prepare_out_dir(out: Path, manifest: Manifest,
                    overwrite: bool) -> tuple[Manifest, dict[str, Any] | None]:
    """Start fresh, or carry over the finished shards of an earlier run with the same config.

    Returns the manifest to run with and the targets record of the earlier run (attached
    again by :func:`finish`). Only what an earlier manifest of ours records is ever replaced
    (with ``overwrite``); the caller holds the cache's lock.
    """
    old = Manifest.load(out)
    if old is not None and not old.same_identity(manifest):
        if not overwrite:
            raise UserError(f"{out} holds a cache made with a different config or source; "
                            "use another --out, or --overwrite (overwrite=True) to replace it.")
        remove_cache_files(out, old)
        old = None
    if old is not None:
        done = {s.inputs_sha256: s for s in old.shards if s.done}
        for index, shard in enumerate(manifest.shards):
            previous = done.get(shard.inputs_sha256)
            if previous and previous.file == shard.file and _intact(out, previous):
                manifest.shards[index] = previous
    remove_stale_temp_files(out)
    manifest.save(out)
    return manifest, (old.targets if old is not None else None)


def finish(out: Path, manifest: Manifest, source: Source,
           previous_targets: dict[str, Any] | None = None) -> Cache:
    """Count rows per split, mark the cache complete, attach the source's targets or those
    of the earlier run (see :func:`~bottleneck.cache.targets.reattach_targets`)."""
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
    overwrite: bool = False, progress: bool = True,
) -> Cache:
    """Extract features of every image in ``source`` into a cache at ``out``; resumable."""
    if isinstance(source, str):
        source = open_source(source)
    if batch_size <= 0:
        raise UserError("--batch-size must be a positive number of images.")
    out = Path(out).expanduser()
    extractor = FeatureExtractor(ExtractConfig(backbone=backbone, weights=weights, layer=layer,
                                               pooling=pooling, image_size=image_size,
                                               dtype=dtype))
    plans = plan_shards(source.items(), shard_size)
    check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    with cache_lock(out, "extract"):
        manifest, previous = prepare_out_dir(out, fresh_manifest(source, extractor, plans),
                                             overwrite)
        run_shards(source, extractor, plans, manifest, out, batch_size, progress)
        return finish(out, manifest, source, previous)


def run_shards(source: Source, extractor: FeatureExtractor, plans: list[ShardPlan],
               manifest: Manifest, out: Path, batch_size: int, progress: bool) -> None:
    """Compute every shard not done yet, recording each in the manifest as it lands."""
    todo = [p for p, s in zip(plans, manifest.shards, strict=True) if not s.done]
    kept = len(plans) - len(todo)
    if kept and progress:
        print(f"resuming: {kept} of {len(plans)} shards already done", file=sys.stderr)
    label = f"{extractor.config.backbone} → {out.name}"
    with progress_bar(sum(len(p.items) for p in todo), label, enabled=progress) as bar:
        for plan in todo:
            result = run_shard(source, extractor, plan, out, batch_size, on_batch=bar.update)
            record = manifest.shards[plan.index]
            record.status, record.rows, record.sha256 = "done", result.rows, result.sha256
            record.failures = result.failures
            manifest.save(out)

