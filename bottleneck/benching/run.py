"""Run a bench's variants: fit each once per seed (or fold) and score it on val and test.

One cache is read at a time. When its splits fit in memory they are loaded once, folds are
index arrays into them (never copies), scikit-learn heads fit in parallel worker processes
(joblib memory-maps the arrays) and heads that are not ``parallel_safe`` (Keras) fit one after
another here. When they do not fit, heads that stream read batches from the shards, as
``fit`` does; other heads are refused before anything runs.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.benching.plan import Variant
from bottleneck.cache import Cache
from bottleneck.errors import UserError
from bottleneck.heads import HEADS, get_head_spec, make_head
from bottleneck.models.evaluate import evaluate_split
from bottleneck.models.fit import load_split, stream_split
from bottleneck.models.memory import fits_in_memory
from bottleneck.models.metrics import regression_metrics

BENCH_SPLITS = ("train", "val", "test")


@dataclass
class Split:
    """Arrays of one split."""

    X: np.ndarray
    y: np.ndarray


def _score(head: Any, task: str, data: Split) -> dict[str, float]:
    if len(data.y) == 0:
        return {}
    predictions = head.predict(data.X)
    if task == "regress":
        metrics = regression_metrics(data.y, predictions)
        return {k: metrics[k] for k in ("r2", "mse", "mae")}
    return {"accuracy": float(np.mean(predictions == data.y))}


def _model_bytes(head: Any, head_name: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        get_head_spec(head_name).format.save(head, Path(tmp))
        return sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())


def run_one(head_name: str, params: dict[str, Any], task: str, seed: int, pool: Split,
            train_rows: np.ndarray, val_rows: np.ndarray, test: Split) -> dict[str, Any]:
    """Fit one variant with one seed on ``pool[train_rows]``, score on ``pool[val_rows]`` and
    ``test``; scores, fit seconds, µs per predicted row, size."""
    train = Split(pool.X[train_rows], pool.y[train_rows])
    val = Split(pool.X[val_rows], pool.y[val_rows])
    head = make_head(head_name, task, params, random_state=seed)
    fit_kwargs: dict[str, Any] = {}
    if get_head_spec(head_name).takes_validation and len(val.y):
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
            "model_bytes": _model_bytes(head, head_name)}


def fold_rows(y: np.ndarray, n_train: int, cv: int | None, seed: int, task: str,
              groups: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, val rows) into train+val: the split itself, or ``cv`` folds over both
    (stratified when classifying). With ``groups`` (the image of each row, in a cache with
    augmented views) every image's rows stay on one side of each fold."""
    if not cv:
        return [(np.arange(n_train), np.arange(n_train, len(y)))]
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    if groups is not None:
        grouped = (StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=seed)
                   if task == "classify" else GroupKFold(n_splits=cv))
        return list(grouped.split(np.zeros(len(y)), y, groups))
    splitter = (StratifiedKFold if task == "classify" else KFold)(
        n_splits=cv, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def run_cache(cache: Cache, variants: Sequence[tuple[int, Variant]], task: str, seeds: int,
              cv: int | None, jobs: int, on_fit: Callable[[int], object] = lambda n: None,
              ) -> dict[int, list[dict[str, Any]]]:
    """Every run of the variants on one cache, keyed by variant index; ``on_fit(1)`` after
    each fit (the progress bar)."""
    if not fits_in_memory(cache, BENCH_SPLITS, head=[v.head for _, v in variants]):
        return _run_streaming(cache, variants, task, seeds, on_fit)
    from joblib import Parallel, delayed

    train, val = (Split(*load_split(cache, s, task)) for s in ("train", "val"))
    pool = Split(np.concatenate([train.X, val.X]), np.concatenate([train.y, val.y]))
    del train, val
    test = Split(*load_split(cache, "test", task))
    groups = np.concatenate([cache.column("paths", "train"), cache.column("paths", "val")]) \
        if cache.config.get("augment") else None
    n_train = cache.split_counts().get("train", 0)
    runs = [(index, variant, seed, rows) for index, variant in variants
            for seed in range(seeds)
            for rows in fold_rows(pool.y, n_train, cv, seed, task, groups)]
    results: dict[int, list[dict[str, Any]]] = {index: [] for index, _ in variants}
    parallel = [r for r in runs if get_head_spec(r[1].head).parallel_safe]
    serial = [r for r in runs if not get_head_spec(r[1].head).parallel_safe]
    outputs = Parallel(n_jobs=jobs, return_as="generator")(  # in order, as they finish
        delayed(run_one)(v.head, v.params, task, seed, pool, *rows, test)
        for _, v, seed, rows in parallel)
    for run, output in zip(parallel, outputs, strict=True):
        results[run[0]].append(output)
        on_fit(1)
    for index, v, seed, rows in serial:
        results[index].append(run_one(v.head, v.params, task, seed, pool, *rows, test))
        on_fit(1)
    return results


def check_bench_memory(cache: Cache, heads: Sequence[str], cv: int | None) -> None:
    """Refuse, before anything runs, heads that would load a cache too big for memory."""
    if fits_in_memory(cache, BENCH_SPLITS, head=list(heads)):
        return
    loaded = sorted({h for h in heads if not get_head_spec(h).streams})
    if loaded or cv:
        streaming = ", ".join(n for n, s in HEADS.items() if s.streams)
        raise UserError(
            f"{cache.root} does not fit in memory for "
            f"{'--cv' if cv else 'the heads ' + ', '.join(loaded)}, which load every split; "
            f"bench it with the heads that stream ({streaming}) and without --cv, or use a "
            "smaller cache (pooled features, --limit).")


def _run_streaming(cache: Cache, variants: Sequence[tuple[int, Variant]], task: str,
                   seeds: int, on_fit: Callable[[int], object]) -> dict[int, list[dict[str, Any]]]:
    """Heads that stream, fitted from the shards batch by batch (the splits do not fit)."""
    results: dict[int, list[dict[str, Any]]] = {index: [] for index, _ in variants}
    classes = np.arange(len(cache.classes)) if task == "classify" else None
    for index, variant in variants:
        for seed in range(seeds):
            head = make_head(variant.head, task, variant.params, random_state=seed)
            batch = int(head.get_params().get("batch_size", 32))
            has_val = cache.split_counts().get("val", 0) > 0
            extra: dict[str, Any] = {"classes": classes} if task == "classify" else {}
            if get_head_spec(variant.head).takes_validation:
                extra["validation_data"] = stream_split(cache, "val", task, batch) \
                    if has_val else None
            start = time.perf_counter()
            shuffle = get_head_spec(variant.head).shuffled
            head.fit(stream_split(cache, "train", task, batch, shuffle=shuffle, seed=seed),
                     **extra)
            fit_seconds = time.perf_counter() - start
            scores, predict_us = {}, 0.0
            for split in ("val", "test"):
                if cache.split_counts().get(split):
                    start = time.perf_counter()
                    metrics = evaluate_split(head, task, cache, split)[0]
                    predict_us = predict_us or ((time.perf_counter() - start) * 1e6
                                                / cache.split_counts()[split])
                    keys = ("r2", "mse", "mae") if task == "regress" else ("accuracy",)
                    scores[split] = {k: metrics[k] for k in keys}
            results[index].append({"val": scores.get("val", {}), "test": scores.get("test", {}),
                                   "fit_seconds": fit_seconds, "predict_us_per_row": predict_us,
                                   "model_bytes": _model_bytes(head, variant.head)})
            on_fit(1)
    return results
