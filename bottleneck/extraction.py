"""Run a frozen backbone once over a source and write the features as HDF5 shards.

The work is planned as shards, each a pure function of (config, its list of items): the runner
computes the shards that are not done yet, in any order, and records each one in the manifest
as it lands, so a crashed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck import __version__, images
from bottleneck.cache import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    Cache,
    ShardWriter,
    read_manifest,
    sha256_file,
    shard_name,
    write_json_atomic,
)
from bottleneck.errors import UserError
from bottleneck.extractor import ExtractConfig, FeatureExtractor
from bottleneck.progress import progress_bar
from bottleneck.sources import SPLITS, Item, Source, open_source


@dataclass
class ShardPlan:
    """One shard's inputs: which items, in which order."""

    index: int
    items: list[Item]

    @property
    def file(self) -> str:
        return shard_name(self.index)

    @property
    def inputs_sha256(self) -> str:
        digest = hashlib.sha256()
        for item in self.items:
            digest.update(f"{item.key}\0{item.label}\0{item.split}\n".encode())
        return digest.hexdigest()


@dataclass
class ShardResult:
    """What running one shard produced."""

    rows: int
    sha256: str
    failures: list[dict[str, str]] = field(default_factory=list)


def plan_shards(items: list[Item], shard_size: int) -> list[ShardPlan]:
    """Cut the sorted item list into shards of ``shard_size`` items."""
    if shard_size <= 0:
        raise UserError("--shard-size must be a positive number of images.")
    return [ShardPlan(i, items[start:start + shard_size])
            for i, start in enumerate(range(0, len(items), shard_size))]


def run_shard(
    source: Source, extractor: FeatureExtractor, plan: ShardPlan, out_dir: Path,
    batch_size: int, on_batch: Any = None,
) -> ShardResult:
    """Compute one shard and rename it into place; bad images become failure records."""
    import tensorflow as tf

    size = extractor.config.image_size
    stream = (
        source.image_dataset(plan.items)
        .map(lambda pos, img: (pos, images.resize_tf(img, size), images.content_hash_tf(img)),
             num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors()
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    options = tf.data.Options()
    options.experimental_optimization.map_fusion = True  # decode+resize+hash in one step
    stream = stream.with_options(options)
    writer = ShardWriter(out_dir / plan.file, extractor.feature_shape, extractor.config.dtype,
                         capacity=len(plan.items))
    seen = np.zeros(len(plan.items), dtype=bool)
    try:
        for positions, batch, hashes in stream:
            positions = positions.numpy()
            _append(writer, plan, positions, extractor(batch), hashes.numpy())
            seen[positions] = True
            if on_batch:
                on_batch(len(positions))
        failures = _retry_failed(source, extractor, plan, writer, np.flatnonzero(~seen))
        if on_batch and failures:
            on_batch(len(failures))
        sha = writer.commit({"inputs_sha256": plan.inputs_sha256})
    except BaseException:
        writer.abort()
        raise
    return ShardResult(writer.rows, sha, failures)


def _append(writer: ShardWriter, plan: ShardPlan, positions: np.ndarray,
            features: np.ndarray, hashes: np.ndarray) -> None:
    chosen = [plan.items[p] for p in positions]
    writer.append(features, np.array([it.label for it in chosen], dtype=np.int32),
                  [it.key for it in chosen], [it.split for it in chosen], hashes)


def _retry_failed(source: Source, extractor: FeatureExtractor, plan: ShardPlan,
                  writer: ShardWriter, missing: np.ndarray) -> list[dict[str, str]]:
    """Decode what tf.data could not with Pillow; record what neither can read."""
    import tensorflow as tf

    failures = []
    for position in missing:
        item = plan.items[position]
        try:
            pixels = source.load_image(item)
        except ValueError as exc:
            failures.append({"path": item.key, "reason": str(exc)})
            continue
        pixels = tf.constant(pixels)
        resized = images.resize_tf(pixels, extractor.config.image_size)
        _append(writer, plan, np.array([position]), extractor(resized[tf.newaxis]),
                images.content_hash_tf(pixels).numpy()[None])
    return failures


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shaped the features."""
    import h5py
    import keras
    import tensorflow as tf

    return {"bottleneck": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "h5py": h5py.__version__, "numpy": np.__version__}


def _fresh_manifest(source: Source, extractor: FeatureExtractor,
                    plans: list[ShardPlan]) -> dict[str, Any]:
    from bottleneck.backbones import get_backbone

    backbone = get_backbone(extractor.config.backbone)
    config = extractor.config.to_dict() | {
        "feature_shape": list(extractor.feature_shape),
        "preprocessing": images.PREPROCESSING | {
            "preprocess_input": f"{backbone.preprocess_module or backbone.module}"
                                ".preprocess_input",
        },
    }
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "complete": False,
        "config": config, "source": source.describe(), "classes": source.classes,
        "versions": library_versions(),
        "shards": [{"file": p.file, "inputs": len(p.items), "inputs_sha256": p.inputs_sha256,
                    "status": "pending"} for p in plans],
        "targets": None,
    }


def _same_config(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keys = ("config", "source", "classes")
    return json.dumps({k: old.get(k) for k in keys}, sort_keys=True) == json.dumps(
        {k: new.get(k) for k in keys}, sort_keys=True)


def _prepare_out_dir(out: Path, manifest: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """Start fresh, or carry over the shards of an earlier run with the same config."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a directory for the cache.")
    old = read_manifest(out) if out.is_dir() else None
    if out.exists() and old is None and any(out.iterdir()):  # never delete what isn't ours
        raise UserError(f"{out} is not empty and is not a bottleneck cache; choose a new or "
                        "empty --out directory.")
    if old is not None and not _same_config(old, manifest):
        if not overwrite:
            raise UserError(f"{out} holds a cache made with a different config or source; "
                            "use another --out, or --overwrite to replace it.")
        old = None
    if overwrite and old is None and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if old is not None:
        done = {s["inputs_sha256"]: s for s in old["shards"] if s.get("status") == "done"}
        for shard in manifest["shards"]:
            previous = done.get(shard["inputs_sha256"])
            if previous and previous["file"] == shard["file"] and _intact(out, previous):
                shard.update(previous)
        manifest["targets"] = None
    remove_stale_temp_files(out)
    write_json_atomic(out / MANIFEST, manifest)
    return manifest


def remove_stale_temp_files(out: Path) -> None:
    """Delete temp files left by writers that died (their pid no longer runs)."""
    for tmp in out.glob(".*.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _process_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _intact(out: Path, shard: dict[str, Any]) -> bool:
    path = out / shard["file"]
    return path.is_file() and sha256_file(path) == shard["sha256"]


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
    config = ExtractConfig(backbone=backbone, weights=weights, layer=layer, pooling=pooling,
                           image_size=image_size, dtype=dtype)
    extractor = FeatureExtractor(config)
    plans = plan_shards(source.items(), shard_size)
    manifest = _prepare_out_dir(out, _fresh_manifest(source, extractor, plans), overwrite)
    todo = [p for p, s in zip(plans, manifest["shards"], strict=True) if s["status"] != "done"]
    total = sum(len(p.items) for p in todo)
    kept = len(plans) - len(todo)
    label = f"{extractor.config.backbone} → {out.name}"
    if kept and progress:
        print(f"resuming: {kept} of {len(plans)} shards already done", file=sys.stderr)
    with progress_bar(total, label, enabled=progress) as bar:
        for plan in todo:
            result = run_shard(source, extractor, plan, out, batch_size, on_batch=bar.update)
            manifest["shards"][plan.index].update(
                status="done", rows=result.rows, sha256=result.sha256, failures=result.failures)
            write_json_atomic(out / MANIFEST, manifest)
    return _finish(out, manifest, source)


def _finish(out: Path, manifest: dict[str, Any], source: Source) -> Cache:
    """Count rows per split, mark the cache complete and attach source targets if any."""
    import h5py

    counts = dict.fromkeys(SPLITS, 0)
    for shard in manifest["shards"]:
        with h5py.File(out / shard["file"], "r") as handle:
            splits, n = np.unique(handle["split"].asstr()[:], return_counts=True)
            for split, count in zip(splits, n, strict=True):
                counts[str(split)] += int(count)
    manifest.update(complete=True, rows=sum(counts.values()), split_counts=counts,
                    failures=sum(len(s["failures"]) for s in manifest["shards"]))
    write_json_atomic(out / MANIFEST, manifest)
    cache = Cache(out, manifest)
    source_targets = source.targets()
    if source_targets is not None:
        from bottleneck.targets import attach_targets

        attach_targets(cache, source_targets, {"kind": "source"})
    return cache
