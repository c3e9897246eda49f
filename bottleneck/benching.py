"""Compare head variants (and layers, and backbones) on the same cached images.

Every variant — cache × head × grid point — is fitted once per seed (or per fold with
``cv``) on ``train``, selected and ranked on ``val`` only, and reported on ``test`` beside it.
scikit-learn heads fit in parallel worker processes (joblib); Keras heads fit one after another
in this process, since TensorFlow already uses every core.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.cache import Cache, open_cache
from bottleneck.errors import UserError
from bottleneck.fitting import check_fits_in_memory, load_split
from bottleneck.heads import HEADS, get_head_spec, head_param_names, make_head
from bottleneck.leaks import cross_split_duplicates
from bottleneck.metrics import regression_metrics
from bottleneck.model_dir import save_head


@dataclass
class Variant:
    """One row of the leaderboard before it is run."""

    cache: str
    head: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        settings = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.head}({settings})" if settings else self.head


@dataclass
class Split:
    """Arrays of one split."""

    X: np.ndarray
    y: np.ndarray


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values: ``{C: [1, 10]}`` → ``[{C: 1}, {C: 10}]``."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True))
            for values in itertools.product(*(grid[k] for k in keys))]


def plan_variants(cache_labels: Sequence[str], heads: Sequence[str], task: str,
                  grid: Mapping[str, Sequence[Any]]) -> list[Variant]:
    """Cache × head × the grid keys that head accepts; a key no head accepts is an error."""
    used: set[str] = set()
    variants = []
    for head in heads:
        accepted = set(head_param_names(make_head(head, task)))
        own = {k: v for k, v in grid.items() if k in accepted}
        used |= set(own)
        for params in expand_grid(own):
            variants += [Variant(label, head, params) for label in cache_labels]
    unused = set(grid) - used
    if unused:
        raise UserError(f"no head in {', '.join(heads)} takes --grid {sorted(unused)[0]}; "
                        "see each head's parameters with `bottleneck heads`.")
    return variants


def cache_label(cache: Cache) -> str:
    """``vgg19:block4_pool@224/avg``: what distinguishes caches in one leaderboard."""
    config = cache.config
    layer = f":{config['layer']}" if config.get("layer") else ""
    return f"{config['backbone']}{layer}@{config['image_size']}/{config['pooling']}"


def check_same_images(caches: Sequence[Cache]) -> None:
    """Caches in one bench must hold the same images in the same splits."""
    def rows(cache: Cache) -> dict[str, str]:
        table = {}
        for batch in cache.iter_batches(None, batch_size=1 << 16, with_paths=True,
                                        columns=("split",)):
            table.update(zip(batch["paths"], batch["split"], strict=True))
        return table

    reference = rows(caches[0])
    for cache in caches[1:]:
        other = rows(cache)
        if other != reference:
            differing = sorted(set(other.items()) ^ set(reference.items()))
            raise UserError(
                f"{cache.root} and {caches[0].root} do not hold the same images in the same "
                f"splits (e.g. {differing[0][0]}); extract both from the same source and splits."
            )


def _score(head: Any, task: str, data: Split) -> dict[str, float]:
    if len(data.y) == 0:
        return {}
    predictions = head.predict(data.X)
    if task == "regress":
        metrics = regression_metrics(data.y, predictions)
        return {k: metrics[k] for k in ("r2", "mse", "mae")}
    return {"accuracy": float(np.mean(predictions == data.y))}


def _model_bytes(head: Any) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        save_head(head, Path(tmp))
        return sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())


def run_one(head_name: str, params: dict[str, Any], task: str, seed: int, train: Split,
            val: Split, test: Split) -> dict[str, Any]:
    """Fit one variant with one seed; scores, fit seconds, µs per predicted row, size."""
    head = make_head(head_name, task, params, random_state=seed)
    fit_kwargs: dict[str, Any] = {}
    if get_head_spec(head_name).streams and len(val.y):
        fit_kwargs["validation_data"] = (val.X, val.y)
    start = time.perf_counter()
    head.fit(train.X, train.y, **fit_kwargs)
    fit_seconds = time.perf_counter() - start
    timed = val if len(val.y) else train
    start = time.perf_counter()
    head.predict(timed.X)
    predict_us = (time.perf_counter() - start) / max(1, len(timed.y)) * 1e6
    return {"val": _score(head, task, val), "test": _score(head, task, test),
            "fit_seconds": fit_seconds, "predict_us_per_row": predict_us,
            "model_bytes": _model_bytes(head)}


def _folds(train: Split, val: Split, cv: int, seed: int, task: str) -> list[tuple[Split, Split]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    X = np.concatenate([train.X, val.X])
    y = np.concatenate([train.y, val.y])
    splitter = (StratifiedKFold if task == "classify" else KFold)(
        n_splits=cv, shuffle=True, random_state=seed)
    return [(Split(X[a], y[a]), Split(X[b], y[b])) for a, b in splitter.split(X, y)]


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """mean and std over seeds/folds of every number."""
    row: dict[str, Any] = {"runs": len(runs)}
    for split in ("val", "test"):
        for metric in runs[0][split]:
            values = [r[split][metric] for r in runs]
            row[f"{split}_{metric}"] = float(np.mean(values))
            row[f"{split}_{metric}_std"] = float(np.std(values))
    for key in ("fit_seconds", "predict_us_per_row", "model_bytes"):
        row[key] = float(np.mean([r[key] for r in runs]))
    return row


def bench(
    caches: Sequence[str | Path], heads: Sequence[str] | None = None, out: str | Path = "bench",
    grid: Mapping[str, Sequence[Any]] | None = None, seeds: int = 1, cv: int | None = None,
    task: str | None = None, jobs: int = -1, progress: bool = True,
) -> dict[str, Any]:
    """Fit every variant, rank on val, write the leaderboard files to ``out``; returns them."""
    from joblib import Parallel, delayed

    from bottleneck.leaderboard import write_reports

    if not caches:
        raise UserError("give at least one cache to bench.")
    if seeds < 1 or (cv is not None and cv < 2):
        raise UserError("--seeds must be ≥ 1 and --cv ≥ 2.")
    opened = [open_cache(c) for c in caches]
    check_same_images(opened)
    task = task or ("regress" if all(c.has_targets for c in opened) else "classify")
    if task == "regress" and not all(c.has_targets for c in opened):
        raise UserError("regression needs targets in every cache; attach them with "
                        "`bottleneck targets CACHE --synthetic-prices`.")
    heads = list(heads) if heads else [n for n, s in HEADS.items() if task in s.tasks]
    labels = [cache_label(c) for c in opened]
    if len(set(labels)) < len(labels):
        labels = [f"{label} [{Path(c.root).name}]" for label, c in zip(labels, opened,
                                                                         strict=True)]
    variants = plan_variants(labels, heads, task, dict(grid or {}))
    leaks = cross_split_duplicates(opened[0])

    data = {}
    for label, cache in zip(labels, opened, strict=True):
        for split in ("train", "val", "test"):
            check_fits_in_memory(cache, split, "bench")
        data[label] = {s: Split(*load_split(cache, s, task)) for s in ("train", "val", "test")}

    jobs_list = []
    for index, variant in enumerate(variants):
        splits = data[variant.cache]
        for seed in range(seeds):
            folds = (_folds(splits["train"], splits["val"], cv, seed, task) if cv
                     else [(splits["train"], splits["val"])])
            for train, val in folds:
                jobs_list.append((index, variant, seed, train, val, splits["test"]))
    keras_jobs = [j for j in jobs_list if get_head_spec(j[1].head).streams]
    sklearn_jobs = [j for j in jobs_list if not get_head_spec(j[1].head).streams]
    results: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(variants))}
    started = time.perf_counter()
    outputs = Parallel(n_jobs=jobs)(
        delayed(run_one)(v.head, v.params, task, seed, train, val, test)
        for _, v, seed, train, val, test in sklearn_jobs)
    for job, output in zip(sklearn_jobs, outputs, strict=True):
        results[job[0]].append(output)
    for index, v, seed, train, val, test in keras_jobs:
        results[index].append(run_one(v.head, v.params, task, seed, train, val, test))

    rows = []
    for index, variant in enumerate(variants):
        row = {"cache": variant.cache, "head": variant.head, "variant": variant.label,
               "params": variant.params} | _summarise(results[index])
        rows.append(row)
    metric = "val_r2" if task == "regress" else "val_accuracy"
    rows.sort(key=lambda r: -r.get(metric, float("-inf")))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    report = {
        "task": task, "ranked_by": metric, "seeds": seeds, "cv": cv,
        "caches": {label: str(c.root) for label, c in zip(labels, opened, strict=True)},
        "rows": rows, "leaks": leaks, "seconds": time.perf_counter() - started,
        "r2_ceiling": _ceilings(opened[0]) if task == "regress" else None,
    }
    write_reports(report, Path(out).expanduser())
    return report


def _ceilings(cache: Cache) -> dict[str, float | None]:
    from bottleneck.targets import r2_ceiling

    return {split: r2_ceiling(cache, split) for split in ("val", "test")}


def parse_grid(pairs: Sequence[str]) -> dict[str, list[Any]]:
    """``["C=0.1,1,10", "hidden=(256,),(512,)"]`` → ``{"C": [0.1, 1, 10], ...}``."""
    from bottleneck.params import parse_value

    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise UserError(f"--grid {pair!r} must look like key=v1,v2,...")
        grid[key.strip()] = [parse_value(v) for v in _split_values(values)]
    return grid


def _split_values(text: str) -> list[str]:
    """Split on commas that are not inside brackets: ``(256,),(512,)`` → two values."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]

