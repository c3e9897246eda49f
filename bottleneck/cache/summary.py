"""What `bottleneck info` reports about a cache."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck._text import plural
from bottleneck.cache.inputs import describe_changes
from bottleneck.cache.opening import open_cache
from bottleneck.cache.reader import Cache
from bottleneck.data import SPLITS


def cache_summary(root: str | Path, verify: bool = False) -> dict[str, Any]:
    """Counts per split and class, feature shape, config and skipped files; with ``verify``,
    first check every recorded file's sha256 (``verification``: what was checked)."""
    cache = open_cache(root)
    if verify and cache.location is not None:  # a URL's: its sidecars, to check the sources
        from bottleneck.cache.remote import fetch_sidecars

        fetch_sidecars(cache)
    verification = cache.verify() if verify else None
    per_split: dict[str, Counter] = {}
    labels, splits = cache.column("labels"), cache.column("split")
    for label, split in zip(labels, splits, strict=True):
        per_split.setdefault(str(split), Counter())[cache.classes[int(label)]] += 1
    return {
        "cache": cache.where,
        "rows": cache.rows,
        "feature_shape": list(cache.feature_shape),
        "splits": {split: dict(sorted(counts.items())) for split, counts in per_split.items()},
        "split_counts": cache.split_counts(),
        "classes": cache.classes,
        "config": cache.config,
        "source": cache.manifest.source,
        "versions": cache.manifest.versions,
        "shards": len(cache.manifest.shards),
        "targets": cache.manifest.targets,
        "failures": cache.failures,
        "augment": {"views": cache.config.get("augment", 0),
                    "ops": cache.config.get("augment_ops"),
                    "rows_per_view": _rows_per_view(cache)},
        "verification": verification,
        "runtime": cache.manifest.runtime,
        "runtime_line": runtime_line(cache),
    }


def runtime_line(cache: Cache) -> str:
    """``keras fp32 on jax 0.10.2, cpu``: what made the features (engine ``tf`` in caches
    made before backends were recorded)."""
    config, runtime = cache.config, cache.manifest.runtime or {}
    engine = {"tf": "keras"}.get(config.get("engine", "tf"), config.get("engine"))
    where = (f" on {runtime['backend']} {runtime.get('backend_version', '')}".rstrip()
             + f", {runtime.get('device', 'cpu')}") if runtime.get("backend") else ""
    return f"{engine} {config.get('precision', 'fp32')}{where}" + (
        ", fast decode" if config.get("fast_decode") else "") + (
        ", GPU decode (nvJPEG)" if config.get("decode") == "gpu" else "")


def describe_record(record: dict[str, Any]) -> str:
    """A manifest record (the source, the targets) as words: ``folder /photos, splits hash,
    val 10%, test 10%``; what is unset (``limit`` None) is left out, 10.0 reads 10."""
    record = dict(record)
    head = [str(record.pop("kind", "")), *(str(record.pop(k)) for k in ("root", "path",
                                                                          "data_dir", "file")
                                           if record.get(k))]
    parts = [" ".join(p for p in head if p)]
    for key, value in record.items():
        if value is None or value in ("", [], {}):
            continue
        if isinstance(value, float):
            value = f"{value:g}"
        elif isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value))
        elif isinstance(value, str) and key.endswith("sha256"):
            value = value[:12] + "…"
        parts.append(f"{key.removesuffix('_percent')} {value}%" if key.endswith("_percent")
                     else f"{key.replace('_', ' ')} {value}")
    return ", ".join(p for p in parts if p)


def _rows_per_view(cache: Cache) -> dict[str, int]:
    """Rows of each view index (all view 0 in a cache without --augment)."""
    if not cache.config.get("augment"):
        return {"0": cache.rows}
    values, counts = np.unique(cache.column("view"), return_counts=True)
    return {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as readable text."""
    config = summary["config"]
    lines = [
        f"cache      {summary['cache']}",
        f"backbone   {config['backbone']} @ {config['image_size']}px, layer "
        f"{config['layer'] or '(last block)'}, pooling {config['pooling']}, {config['dtype']}",
        f"weights    {config['weights_name']}"
        + (f" sha256 {config['weights_sha256'][:16]}…" if config.get("weights_sha256") else ""),
        f"engine     {summary['runtime_line']}",
        f"features   {' × '.join(map(str, summary['feature_shape']))} per image, "
        f"{plural(summary['rows'], 'row')} in {plural(summary['shards'], 'shard')}",
        f"source     {describe_record(summary['source'])}",
    ]
    if summary["targets"]:
        lines.append(f"targets    {describe_record(summary['targets'])}")
    augment = summary["augment"]
    if augment["views"]:
        per_view = ", ".join(f"view {v}: {n}" for v, n in augment["rows_per_view"].items())
        lines.append(f"augment    {plural(augment['views'], 'view')} per train image "
                     f"({augment['ops']}); rows {per_view}")
    checked = summary.get("verification")
    if checked:
        parts = plural(checked["shards"], "shard") + (" + targets" if checked["targets_file"]
                                                      else "")
        lines.append(f"verified   {plural(checked['files'], 'file')} ({parts}), "
                     f"{checked['bytes']:,} bytes: all sha256 equal to the manifest's")
        note = describe_changes(checked["sources"]) if checked.get("sources") else None
        lines.append(f"sources    {note.removeprefix('note: ')}" if note else
                     "sources    every source file the rows were computed from is unchanged")
    classes = summary["classes"]
    width = max(len(c) for c in [*classes, "class", "total"])
    splits = sorted(summary["splits"], key=lambda s: (s not in SPLITS,
                                                      SPLITS.index(s) if s in SPLITS else 0, s))
    column = max(8, *(len(s) + 2 for s in splits),
                 *(len(f"{n}") + 2 for counts in summary["splits"].values()
                   for n in (*counts.values(), sum(counts.values()))))
    lines.append("")
    lines.append(f"{'class':<{width}}" + "".join(f"{s:>{column}}" for s in splits))
    for name in classes:
        lines.append(f"{name:<{width}}" + "".join(
            f"{summary['splits'][s].get(name, 0):>{column}}" for s in splits))
    lines.append(f"{'total':<{width}}" + "".join(
        f"{sum(summary['splits'][s].values()):>{column}}" for s in splits))
    if summary["failures"]:
        lines.append("")
        lines.append(f"skipped {plural(len(summary['failures']), 'file')}:")
        lines += [f"  {f['path']}: {f['reason']}" for f in summary["failures"]]
    return "\n".join(lines)
