"""Run a bench's variants: fit each once per seed (or fold) and score it on val and test.

One cache's splits are in memory at a time. scikit-learn heads fit in parallel worker
processes (joblib); heads that are not ``parallel_safe`` (Keras) fit one after another here.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.benching.plan import Variant
from bottleneck.cache import Cache
from bottleneck.heads import get_head_spec, make_head
from bottleneck.models.fit import load_split
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


def run_one(head_name: str, params: dict[str, Any], task: str, seed: int, train: Split,
            val: Split, test: Split) -> dict[str, Any]:
    """Fit one variant with one seed; scores, fit seconds, µs per predicted row, size."""
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


def folds(train: Split, val: Split, cv: int, seed: int, task: str) -> list[tuple[Split, Split]]:
    """``cv`` folds over train+val (stratified when classifying)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    X = np.concatenate([train.X, val.X])
    y = np.concatenate([train.y, val.y])
    splitter = (StratifiedKFold if task == "classify" else KFold)(
        n_splits=cv, shuffle=True, random_state=seed)
    return [(Split(X[a], y[a]), Split(X[b], y[b])) for a, b in splitter.split(X, y)]


def run_cache(cache: Cache, variants: Sequence[tuple[int, Variant]], task: str, seeds: int,
              cv: int | None, jobs: int) -> dict[int, list[dict[str, Any]]]:
    """Every run of the variants on one cache, keyed by variant index."""
    from joblib import Parallel, delayed

    data = {s: Split(*load_split(cache, s, task)) for s in BENCH_SPLITS}
    runs = []
    for index, variant in variants:
        for seed in range(seeds):
            pairs = (folds(data["train"], data["val"], cv, seed, task) if cv
                     else [(data["train"], data["val"])])
            runs += [(index, variant, seed, train, val) for train, val in pairs]
    results: dict[int, list[dict[str, Any]]] = {index: [] for index, _ in variants}
    parallel = [r for r in runs if get_head_spec(r[1].head).parallel_safe]
    serial = [r for r in runs if not get_head_spec(r[1].head).parallel_safe]
    outputs = Parallel(n_jobs=jobs)(
        delayed(run_one)(v.head, v.params, task, seed, train, val, data["test"])
        for _, v, seed, train, val in parallel)
    for run, output in zip(parallel, outputs, strict=True):
        results[run[0]].append(output)
    for index, v, seed, train, val in serial:
        results[index].append(run_one(v.head, v.params, task, seed, train, val, data["test"]))
    return results
