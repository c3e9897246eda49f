"""Run a frozen backbone once over a source and write the features as HDF5 shards.

The run is: resolve the config and build the feature model → plan shards → prepare ``--out``
(carry over finished shards of an earlier run with the same config) → compute the shards that
are not done, recording each in the manifest as it lands → count rows and mark the cache
complete. A crashed run resumes where it stopped. With several layers the same loop fills one
cache per layer (``OUT/<layer>/``) from one pass of the backbone (see :mod:`.layers`).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bottleneck import __version__
from bottleneck._io import remove_stale_temp_files, sha256_file
from bottleneck.backbones import get_backbone
from bottleneck.cache.manifest import Manifest, ShardRecord, is_cache
from bottleneck.cache.reader import Cache
from bottleneck.cache.shards import read_column
from bottleneck.data import SPLITS, Source, images, open_source
from bottleneck.errors import UserError
from bottleneck.extraction.config import ExtractConfig, with_later_fields
from bottleneck.extraction.feature_model import FeatureExtractor
from bottleneck.extraction.layers import layer_dirs, layer_list
from bottleneck.extraction.plan import ShardPlan, plan_shards
from bottleneck.extraction.progress import progress_bar
from bottleneck.extraction.shard import ShardResult, run_shard


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shaped the features."""
    import h5py
    import keras
    import tensorflow as tf

    return {"bottleneck": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "h5py": h5py.__version__, "numpy": np.__version__}


def fresh_manifest(source: Source, extractor: FeatureExtractor,
                   plans: list[ShardPlan], output: int = 0) -> Manifest:
    """The manifest of a run that has computed nothing yet (of the extractor's ``output``-th
    layer)."""
    config = extractor.configs[output]
    backbone = get_backbone(config.backbone)
    recorded = config.to_dict() | {
        "feature_shape": list(extractor.feature_shapes[output]),
        "preprocessing": images.preprocessing(config.fast_decode)
        | {"preprocess_input": backbone.preprocess_name},
    }
    versions = library_versions()
    if config.engine != "tf":
        versions[config.engine] = extractor.engine.version() or "unknown"
    return Manifest(config=recorded, source=source.describe(), classes=source.classes,
                    versions=versions, shards=[p.record() for p in plans])


def _intact(out: Path, shard: ShardRecord) -> bool:
    path = out / shard.file
    return path.is_file() and sha256_file(path) == shard.sha256


def check_out_dir(out: Path, manifest: Manifest, overwrite: bool) -> Manifest | None:
    """The earlier cache in ``out`` to resume, None for a fresh start; refuses a file, a
    folder that is not ours, and (without ``overwrite``) a cache made another way."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a directory for the cache.")
    old = Manifest.load(out) if out.is_dir() and is_cache(out) else None
    if old is not None:  # a cache made before engine/precision/fast_decode were recorded
        old.config = with_later_fields(old.config)
    if out.is_dir() and not is_cache(out) and any(out.iterdir()):  # never touch what isn't ours
        raise UserError(f"{out} is not empty and is not a bottleneck cache; choose a new or "
                        "empty --out directory.")
    if old is not None and not old.same_identity(manifest) and not overwrite:
        raise UserError(f"{out} holds a cache made with a different config or source; "
                        "use another --out, or --overwrite to replace it.")
    return old


def prepare_out_dir(out: Path, manifest: Manifest, overwrite: bool) -> Manifest:
    """Start fresh, or carry over the finished shards of an earlier run with the same config.

    Only a folder whose manifest is ours is ever replaced (with ``overwrite``); anything else
    that is not empty is refused.
    """
    old = check_out_dir(out, manifest, overwrite)
    if old is not None and not old.same_identity(manifest):
        shutil.rmtree(out)
        old = None
    out.mkdir(parents=True, exist_ok=True)
    if old is not None:
        done = {s.inputs_sha256: s for s in old.shards if s.done}
        for index, shard in enumerate(manifest.shards):
            previous = done.get(shard.inputs_sha256)
            if previous and previous.file == shard.file and _intact(out, previous):
                manifest.shards[index] = previous
        manifest.targets = None
    remove_stale_temp_files(out)
    manifest.save(out)
    return manifest


def finish(out: Path, manifest: Manifest, source: Source) -> Cache:
    """Count rows per split, mark the cache complete and attach source targets if any."""
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
        from bottleneck.cache.targets import attach_targets

        attach_targets(cache, source_targets, {"kind": "source"})
    return cache


def record(manifests: list[Manifest], outs: list[Path], result: ShardResult) -> None:
    """Mark a finished shard done in each layer's manifest and save it."""
    for manifest, folder, sha in zip(manifests, outs, result.sha256s or [result.sha256],
                                     strict=True):
        shard = manifest.shards[result.index]
        shard.status, shard.rows, shard.sha256 = "done", result.rows, sha
        shard.failures = result.failures
        manifest.save(folder)


def extract(
    source: Source | str, backbone: str, out: str | Path, weights: str = "imagenet",
    layer: str | Sequence[str] | None = None, pooling: str = "avg",
    image_size: int | None = None, dtype: str = "float32", batch_size: int = 32,
    shard_size: int = 1024, overwrite: bool = False, progress: bool = True,
    engine: str = "tf", precision: str = "fp32", fast_decode: bool = False,
    threads: int | None = None,
) -> Cache | dict[str, Cache]:
    """Extract features of every image in ``source`` into a cache at ``out``; resumable.

    ``layer`` may list several layers: then ``out`` becomes a folder with one cache per layer,
    ``out/<layer>/``, all computed in one pass, and a dict ``{layer: Cache}`` is returned.
    ``threads``: the engine's inference threads (default: the cores this process may use).
    """
    if isinstance(source, str):
        source = open_source(source)
    if batch_size <= 0:
        raise UserError("--batch-size must be a positive number of images.")
    out = Path(out).expanduser()
    layers = layer_list(layer)
    outs = layer_dirs(out, layers) if len(layers) > 1 else [out]
    config = ExtractConfig(backbone=backbone, weights=weights, layer=layers[0], pooling=pooling,
                           image_size=image_size, dtype=dtype, engine=engine,
                           precision=precision, fast_decode=fast_decode)
    extractor = FeatureExtractor(config, layers=layers, threads=threads)
    plans = plan_shards(source.items(), shard_size)
    manifests = [fresh_manifest(source, extractor, plans, i) for i in range(len(outs))]
    for folder, manifest in zip(outs, manifests, strict=True):  # refuse before touching any
        check_out_dir(folder, manifest, overwrite)
    manifests = [prepare_out_dir(folder, manifest, overwrite)
                 for folder, manifest in zip(outs, manifests, strict=True)]
    todo = [p for p in plans if not all(m.shards[p.index].done for m in manifests)]
    kept = len(plans) - len(todo)
    if kept and progress:
        print(f"resuming: {kept} of {len(plans)} shards already done", file=sys.stderr)
    label = f"{extractor.config.backbone} → {out.name}"
    with progress_bar(sum(len(p.items) for p in todo), label, enabled=progress) as bar:
        for plan in todo:
            record(manifests, outs, run_shard(source, extractor, plan, outs, batch_size,
                                              on_batch=bar.update))
    caches = [finish(folder, m, source) for folder, m in zip(outs, manifests, strict=True)]
    return caches[0] if len(layers) == 1 else dict(zip(layers, caches, strict=True))
