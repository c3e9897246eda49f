"""Run a frozen backbone once over a source and write the features as HDF5 shards.

The run is: resolve the config and build the feature model → plan shards (keeping what an
earlier run of the same config finished and is still valid) → hand the shards to an executor
(local or Ray), recording each outcome in the manifest as it lands → count rows and mark the
cache complete. A crashed run resumes where it stopped; a grown source computes only its new
images. With several layers the same loop fills one cache per layer (``OUT/<layer>/``) from
one pass of the backbone (see :mod:`.layers`): a shard counts as done only when it is done in
every layer's cache.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck import __version__
from bottleneck._text import plural
from bottleneck.backbones import get_backbone
from bottleneck.backend import active_backend, backend_version, import_keras
from bottleneck.cache.inputs import remove_inputs
from bottleneck.cache.manifest import Manifest, shard_index
from bottleneck.cache.reader import TARGETS_FILE, Cache
from bottleneck.cache.shards import read_column
from bottleneck.cache.targets import attach_targets, reattach_targets
from bottleneck.data import SPLITS, Source, decode_gpu, images, open_source
from bottleneck.errors import PartialFailure, UserError, arg
from bottleneck.extraction.config import ExtractConfig, check_config, check_decode
from bottleneck.extraction.executors import (
    KEPT,
    Outcome,
    ShardFailure,
    ShardJob,
    get_executor,
)
from bottleneck.extraction.feature_model import FeatureExtractor
from bottleneck.extraction.freshness import check_inputs
from bottleneck.extraction.layers import layer_dirs, layer_list
from bottleneck.extraction.outdir import check_out_dir, intact, previous_run, shard_keys
from bottleneck.extraction.plan import ShardPlan, plan_shards, replan
from bottleneck.extraction.progress import progress_bar
from bottleneck.extraction.publishing import Publishing
from bottleneck.extraction.runtime import check_device, choose_devices
from bottleneck.storage.atomic import remove_stale_temp_files
from bottleneck.storage.lock import cache_lock
from bottleneck.storage.machine import machine_errors


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shaped the features (the backend's among them)."""
    import h5py
    keras = import_keras()
    import PIL
    import simplejpeg

    backend = active_backend()
    return {"bottleneck": __version__, backend: backend_version(backend),
            "keras": keras.__version__, "h5py": h5py.__version__, "numpy": np.__version__,
            "simplejpeg": simplejpeg.__version__, "pillow": PIL.__version__}


def fresh_manifest(source: Source, extractor: FeatureExtractor, output: int = 0) -> Manifest:
    """The manifest of a run that has planned and computed nothing yet (of the extractor's
    ``output``-th layer)."""
    config = extractor.configs[output]
    backbone = get_backbone(config.backbone)
    recorded = config.to_dict() | {
        "feature_shape": list(extractor.feature_shapes[output]),
        "preprocessing": images.preprocessing(config.fast_decode, config.decode)
        | {"preprocess": backbone.preprocess_mode},
    }
    if config.augment:
        recorded["preprocessing"]["augmentation"] = (
            f"{config.augment} seeded views per train image ({config.augment_ops}) after the "
            "resize; view 0, val and test: none")
    versions = library_versions()
    if config.engine != "keras":
        versions[config.engine] = extractor.engine.version() or "unknown"
    return Manifest(config=recorded, source=source.describe(), classes=source.classes,
                    versions=versions, shards=[], runtime=extractor.runtime)


def agreed(olds: list[Manifest | None], outs: list[Path]) -> Manifest | None:
    """The first layer's earlier manifest, its shards counted done only where every layer's
    cache has them done and whole (several layers are written together; a crash between two
    layers' records leaves them to compute again)."""
    if olds[0] is None or any(old is None for old in olds):
        return None
    done_everywhere = set.intersection(*[
        {r.file for r in old.shards if r.done and intact(folder, r)}
        for old, folder in zip(olds, outs, strict=True)])
    shards = [r if r.file in done_everywhere else replace(r, status="pending")
              for r in olds[0].shards]
    return replace(olds[0], shards=shards)


def plan_run(outs: list[Path], source: Source, manifests: list[Manifest], shard_size: int,
             overwrite: bool, progress: bool) -> tuple[list[ShardPlan], list[Manifest | None]]:
    """Fill every layer's ``manifest.shards`` (kept and planned) and save them; returns what
    to compute and the earlier runs' manifests. Shards an earlier run made that are no longer
    planned are deleted (they are ours), after the new manifests are saved."""
    items = source.items()
    olds = [previous_run(folder, manifest, overwrite)
            for folder, manifest in zip(outs, manifests, strict=True)]
    old = agreed(olds, outs)
    changed: list[str] = []
    if old is None:
        plans, kept, dropped = plan_shards(items, shard_size), [], []
    else:
        moved = old.source != manifests[0].source
        fresh = check_inputs(outs, old, shard_keys(outs[0], old), source, moved)
        found = replan(items, old, fresh.keys, shard_size)
        plans, kept, dropped, changed = found.plans, found.kept, found.dropped, fresh.changed
        if moved and progress:
            print(f"note: the source moved (it was {old.source.get('root')}): its files are "
                  "compared by content, and the shards of unchanged ones kept", file=sys.stderr)
    kept_files = {record.file for record in kept}
    for folder, manifest, earlier in zip(outs, manifests, olds, strict=True):
        if earlier is not None and not plans:  # nothing to compute: still what made it
            manifest.runtime, manifest.versions = earlier.runtime, earlier.versions
        mine = {r.file: r for r in (earlier.shards if earlier else []) if r.file in kept_files}
        manifest.shards = sorted([mine[f] for f in kept_files] + [p.record() for p in plans],
                                 key=lambda record: shard_index(record.file))
        remove_stale_temp_files(folder)
        manifest.save(folder)
        planned = {record.file for record in manifest.shards}
        for record in (earlier.shards if earlier else []):
            if record.file not in planned:
                (folder / record.file).unlink(missing_ok=True)
                remove_inputs(folder, [record.file])
    if old is not None and progress:
        new = sum(len(p.items) for p in plans)
        print(f"kept {plural(len(kept), 'finished shard')} "
              f"({plural(sum(r.inputs for r in kept), 'image')}); computing "
              f"{plural(len(plans), 'shard')} ({plural(new, 'image')})"
              + (f"; {plural(len(dropped), 'shard')} lost or changed images and "
                 f"{'is' if len(dropped) == 1 else 'are'} recomputed" if dropped else "")
              + (f" ({plural(len(changed), 'image')} changed since cached, e.g. {changed[0]})"
                 if changed else ""),
              file=sys.stderr)
    return plans, olds


def record_outcome(manifests: list[Manifest], outs: list[Path], outcome: Outcome,
                   runtime: dict[str, Any] | None = None) -> None:
    """Write one shard's outcome into every layer's manifest and save them (the driver alone
    does)."""
    shas = (outcome.sha256s or [outcome.sha256]) if not isinstance(outcome, ShardFailure) \
        else [None] * len(outs)
    for manifest, folder, sha in zip(manifests, outs, shas, strict=True):
        record = next(r for r in manifest.shards if shard_index(r.file) == outcome.index)
        if isinstance(outcome, ShardFailure):
            record.status, record.error = "failed", outcome.error
        else:
            record.status, record.rows, record.sha256 = "done", outcome.rows, sha
            record.failures, record.error = outcome.failures, None
            record.bytes = (folder / record.file).stat().st_size
            record.runtime = (outcome.runtime or runtime or {}) | (
                {"batch_size": outcome.batch_size} if outcome.batch_size else {})
        manifest.save(folder)
    if isinstance(outcome, ShardFailure) and outcome.stop:
        kept = any(r.done for r in manifests[0].shards)
        raise (PartialFailure if kept else UserError)(outcome.error)


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
        splits, n = np.unique(read_column(out / shard.file, "split", manifest, shard),
                              return_counts=True)
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


def check_gpu_decode(source: Source, config: ExtractConfig) -> None:
    """``--decode gpu`` needs its GPU decoder here, a source of image files, and nothing on
    the CPU between decoder and model."""
    check_decode(config)
    decode_gpu.check_gpu_decode()
    items = source.items()
    if items and source.file_of(items[0].key) is None:
        raise UserError("--decode gpu decodes image files, and this source holds decoded "
                        "arrays; use --decode cpu.")


def _kept_shards(out: Path) -> bool:
    """True when the cache at ``out`` (or a layer's under it) holds a finished shard."""
    folders = [out, *(p for p in out.iterdir() if p.is_dir())] if out.is_dir() else []
    return any(m is not None and m.done_shards for m in map(Manifest.load, folders))


@machine_errors("out", KEPT, partial=_kept_shards)
def extract(
    source: Source | str, backbone: str, out: str | Path, weights: str = "imagenet",
    layer: str | Sequence[str] | None = None, pooling: str = "avg",
    image_size: int | None = None, dtype: str = "float32", batch_size: int = 32,
    shard_size: int = 1024, overwrite: bool = False, progress: bool = True,
    engine: str = "keras", precision: str = "fp32", fast_decode: bool = False,
    threads: int | None = None, executor: str = "local", workers: int | None = None,
    ray_address: str | None = None, augment: int = 0, augment_ops: str | None = None,
    backend: str | None = None, devices: str = "auto", decode: str = "cpu",
    lock: bool = True,
) -> Cache | dict[str, Cache]:
    """Extract features of every image in ``source`` into a cache at ``out``; resumable and
    incremental.

    ``layer`` may list several layers: then ``out`` becomes a folder with one cache per layer,
    ``out/<layer>/``, all computed in one pass, and a dict ``{layer: Cache}`` is returned.
    ``engine``/``precision``: what runs the feature model (``threads`` of it); ``fast_decode``:
    JPEGs decoded at a DCT scale. ``executor``: ``local`` (one process) or ``ray``
    (``workers`` actors on a local cluster, or on the cluster at ``ray_address``).
    ``augment``: K seeded views of each train image besides itself (``augment_ops``, see
    :mod:`bottleneck.data.augment`). ``backend``: the Keras backend (``tensorflow``, ``jax``,
    ``torch``; default: Keras' own setting), fixed for the process once Keras is imported;
    ``devices``: ``auto`` (the GPUs if any), ``cpu`` or ``gpu``; ``decode``: ``cpu``
    (libjpeg-turbo) or ``gpu`` (nvJPEG on the PyTorch backend's GPU, another config).
    ``out`` may be a URL (``s3://bucket/cache``...): the shards are made in a local staging
    folder and uploaded whole, the manifest last (see :mod:`bottleneck.cache.remote`);
    ``lock=False`` writes to a store that has no conditional writes.
    """
    target = Publishing(out, lock)
    layers = layer_list(layer)
    config = ExtractConfig(backbone=backbone, weights=weights, layer=layers[0], pooling=pooling,
                           image_size=image_size, dtype=dtype, engine=engine,
                           precision=precision, fast_decode=fast_decode, augment=augment,
                           augment_ops=augment_ops, decode=decode)
    check_config(config)  # a bad argument is refused before the source is read or a backend
    choose_devices(devices, backend)  # imported
    if isinstance(source, str):
        source = open_source(source)
    out = target.folder
    source = source.excluding([out])  # an --out inside its own source is never data
    if progress:
        for path, reason in source.skipped:
            print(f"note: skipped {path} ({reason}): not read as images", file=sys.stderr)
    if batch_size <= 0:
        raise UserError(f"{arg('--batch-size', 'batch_size')} must be a positive number of "
                        "images.")
    if shard_size <= 0:
        raise UserError(f"{arg('--shard-size', 'shard_size')} must be a positive number of "
                        "images.")
    runner = get_executor(executor, workers, ray_address)
    outs = layer_dirs(out, layers) if len(layers) > 1 else [out]
    if decode == "gpu":  # refused before the model is built
        check_gpu_decode(source, config)
    extractor = FeatureExtractor(config, layers=layers, threads=threads, source=source)
    check_device(devices, extractor.device)
    manifests = [fresh_manifest(source, extractor, i) for i in range(len(outs))]
    with ExitStack() as locks:
        locks.enter_context(target.session(outs))  # a URL: locked, mirrored into staging
        for folder, manifest in zip(outs, manifests, strict=True):  # refuse before touching
            check_out_dir(folder)
            if not overwrite:
                previous_run(folder, manifest, overwrite=False)
        for folder in outs:
            folder.mkdir(parents=True, exist_ok=True)
            locks.enter_context(cache_lock(folder, "extract"))
        plans, olds = plan_run(outs, source, manifests, shard_size, overwrite, progress)
        for folder in outs:
            target.publish(folder)
        job = target.job(ShardJob(source, extractor.config, tuple(outs), batch_size,
                                  tuple(layers), threads, active_backend()), executor)
        extractor.expect_images(sum(len(p.items) for p in plans) * (1 + augment), batch_size)
        label = f"{extractor.config.backbone} → {target.label}"
        with progress_bar(sum(len(p.items) for p in plans), label, enabled=progress) as bar:
            def landed(outcome: Outcome) -> None:
                target.landed(job, outcome, manifests[0])
                try:
                    record_outcome(manifests, outs, outcome, extractor.runtime)
                finally:  # a shard that stops the run is published first; the upload
                    for folder in outs:  # overlaps the next shard's compute
                        target.publish(folder, wait=False)

            runner.run(job, plans, landed, bar.update, extractor)
        caches = []
        for folder, manifest, old in zip(outs, manifests, olds, strict=True):
            remove_stale_temp_files(folder)
            caches.append(target.located(
                finish(folder, manifest, source, old.targets if old else None), folder))
            target.publish(folder)
    return caches[0] if len(layers) == 1 else dict(zip(layers, caches, strict=True))
