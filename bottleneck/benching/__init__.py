"""Compare head variants (and layers, and backbones) on the same cached images.

``bench`` is four steps: plan the variants (cache × head × grid point) → run each once per
seed (or fold), one cache in memory at a time → rank on ``val`` only (``test`` is reported
beside it, never used to choose) → write the leaderboard files.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck._text import plural
from bottleneck.benching.leaderboard import write_reports
from bottleneck.benching.leaks import cross_split_duplicates
from bottleneck.benching.plan import (
    Variant,
    cache_label,
    check_same_images,
    expand_grid,
    parse_grid,
    plan_variants,
)
from bottleneck.benching.run import check_bench_memory, run_cache
from bottleneck.cache import Cache, open_cache
from bottleneck.errors import UserError, arg
from bottleneck.extraction.progress import progress_bar
from bottleneck.heads import HEADS, check_rows, get_head_spec
from bottleneck.models.fit import head_errors
from bottleneck.models.model_dir import check_out_dir
from bottleneck.storage.location import is_url
from bottleneck.storage.machine import machine_errors
from bottleneck.storage.ours import LEADERBOARD as LEADERBOARD_JSON
from bottleneck.storage.ours import what_of_ours
from bottleneck.storage.remote_output import publish_folder

BEST_MODEL = "best-model"  # OUT/best-model/: the top-ranked variant as a MODEL_DIR

__all__ = ["Variant", "bench", "expand_grid", "parse_grid", "plan_variants", "rank"]


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


def rank(variants: Sequence[Variant], results: Mapping[int, list[dict[str, Any]]],
         metric: str) -> list[dict[str, Any]]:
    """Leaderboard rows, best ``metric`` (a val score) first, numbered from 1."""
    rows = [{"cache": v.cache, "head": v.head, "variant": v.label, "params": v.params}
            | _summarise(results[i]) for i, v in enumerate(variants)]
    rows.sort(key=lambda r: -r.get(metric, float("-inf")))
    for number, row in enumerate(rows, start=1):
        row["rank"] = number
    return rows


def _image_labels(cache: Cache, split: str) -> np.ndarray:
    """One label per image of ``split`` (augmented views not counted twice)."""
    labels = cache.column("labels", split)
    return labels[cache.column("view", split) == 0] if cache.config.get("augment") else labels


def check_training_rows(cache: Cache, heads: Sequence[str], task: str, cv: int | None) -> None:
    """Refuse a --cv or a head that the training rows cannot support, before any fit."""
    labels = _image_labels(cache, "train")
    where = f"the train split of {cache.root}"
    if cv:
        labels = np.concatenate([labels, _image_labels(cache, "val")])
        counts = np.unique(labels, return_counts=True)[1]
        smallest = int(counts.min()) if task == "classify" else len(labels)
        if cv > smallest:
            raise UserError(f"--cv {cv} is more folds than the "
                            f"{plural(smallest, 'train+val image')} of "
                            f"the smallest {'class' if task == 'classify' else 'cache'}; use "
                            f"--cv {max(2, min(smallest, 5))} or fewer.")
        where = f"each {cv}-fold training part"
    for head in heads:
        spec = get_head_spec(head)
        if cv and task == "classify":
            per_class = int(np.unique(labels, return_counts=True)[1].min()) * (cv - 1) // cv
            if per_class < spec.min_per_class:
                raise UserError(f"the '{head}' head needs at least {spec.min_per_class} "
                                f"training images per class in {where}; use fewer folds or "
                                "another head.")
        else:
            check_rows(spec, task, labels, where)


def _task_of(heads: Sequence[str] | None, opened: Sequence[Cache]) -> str:
    """The task the heads given can do (logreg: classify; a head that does both follows the
    caches), else regress when every cache has targets, else classify."""
    tasks = set.intersection(*(set(get_head_spec(h).tasks) for h in heads)) if heads else set()
    if len(tasks) == 1:
        return tasks.pop()
    return "regress" if all(c.has_targets for c in opened) else "classify"


def _labels(opened: Sequence[Cache]) -> list[str]:
    labels = [cache_label(c) for c in opened]
    if len(set(labels)) < len(labels):
        labels = [f"{label} [{Path(c.root).name}]" for label, c in zip(labels, opened,
                                                                         strict=True)]
    return labels


def _ceilings(cache: Cache) -> dict[str, float | None]:
    from bottleneck.cache.targets import r2_ceiling

    return {split: r2_ceiling(cache, split) for split in ("val", "test")}


@machine_errors("out")
def bench(
    caches: Sequence[str | Path], heads: Sequence[str] | None = None, out: str | Path = "bench",
    grid: Mapping[str, Sequence[Any]] | None = None, seeds: int = 1, cv: int | None = None,
    task: str | None = None, jobs: int = -1, progress: bool = True, model: bool = True,
) -> dict[str, Any]:
    """Fit every variant, rank on val, write the leaderboard files to ``out``; returns them.

    ``task`` defaults to the one the ``heads`` can do, else regress where every cache has
    targets. ``progress``: fits done of all and the time left, on stderr on a terminal.

    ``model``: also fit the top-ranked variant once more (seed 0, train only, as ``fit``)
    into ``out/best-model/`` with its per-row predictions on val and test, which the report
    reads.
    """
    if not caches:
        raise UserError("give at least one cache to bench.")
    if is_url(out):  # written in local staging, then uploaded whole (leaderboard.json last)
        with publish_folder(str(out), LEADERBOARD_JSON,
                            lambda probe: what_of_ours(probe) == "bench output", True,
                            "bench output") as local:
            return bench(caches, heads, local, grid, seeds, cv, task, jobs, progress, model)
    if seeds < 1 or (cv is not None and cv < 2):
        raise UserError(f"{arg('--seeds', 'seeds')} must be ≥ 1 and {arg('--cv', 'cv')} ≥ 2.")
    if jobs == 0:
        raise UserError(f"{arg('--jobs', 'jobs')} must be a number of processes (1, 2, …) or -1 "
                        "for every core.")
    opened = [open_cache(c) for c in caches]
    check_same_images(opened)
    task = task or _task_of(heads, opened)
    if task == "regress" and not all(c.has_targets for c in opened):
        raise UserError("regression needs targets in every cache; attach them with "
                        "`bottleneck targets CACHE --synthetic-prices`.")
    heads = list(heads) if heads else [n for n, s in HEADS.items() if task in s.tasks]
    labels = _labels(opened)
    variants = plan_variants(labels, heads, task, dict(grid or {}))
    check_training_rows(opened[0], heads, task, cv)
    for cache in opened:
        check_bench_memory(cache, heads, cv)
    leaks = cross_split_duplicates(opened[0])
    out = Path(out).expanduser()
    if model:
        check_out_dir(out / BEST_MODEL, overwrite=True)

    started = time.perf_counter()
    results: dict[int, list[dict[str, Any]]] = {}
    fits = len(variants) * seeds * (cv or 1)
    with progress_bar(fits, "bench", enabled=progress, unit="fit") as bar:
        for label, cache in zip(labels, opened, strict=True):
            mine = [(i, v) for i, v in enumerate(variants) if v.cache == label]
            with head_errors(", ".join(sorted({v.head for _, v in mine}))):
                results |= run_cache(cache, mine, task, seeds, cv, jobs, bar.update)
    metric = "val_r2" if task == "regress" else "val_accuracy"
    report = {
        "task": task, "ranked_by": metric, "seeds": seeds, "cv": cv,
        "caches": {label: c.where for label, c in zip(labels, opened, strict=True)},
        "rows": rank(variants, results, metric), "leaks": leaks,
        "seconds": time.perf_counter() - started,
        "r2_ceiling": _ceilings(opened[0]) if task == "regress" else None,
    }
    if model and report["rows"]:
        report["model"] = save_best_model(report, task, out / BEST_MODEL)
    write_reports(report, out)
    return report


def save_best_model(report: dict[str, Any], task: str, out: Path) -> dict[str, Any]:
    """Fit the top-ranked variant into ``out`` and store its predictions on val and test."""
    from bottleneck.models.fit import fit
    from bottleneck.models.model_dir import load_model
    from bottleneck.models.predictions import compute_predictions, save_predictions

    best = report["rows"][0]
    cache_path = report["caches"][best["cache"]]
    fit(cache_path, best["head"], out, task=task, params=best["params"], seed=0,
        overwrite=True)
    fitted, cache = load_model(out), open_cache(cache_path)
    for split in ("val", "test"):
        if cache.split_counts().get(split):
            save_predictions(out, compute_predictions(fitted, cache, split))
    return {"dir": BEST_MODEL, "variant": best["variant"], "cache": best["cache"], "seed": 0}
