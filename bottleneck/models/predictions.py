"""Per-row predictions of a model on one split of a cache: computed once, stored, read back.

``evaluate`` (and ``bench`` for its chosen model) write them into the model directory as
``predictions/<split>-<sha12>.npz`` (``sha12``: the first 12 hex digits of the cache's
``manifest.json`` sha256), so the report shows exactly the numbers ``evaluate`` printed.

The folder is a record outside ``checksums.json`` (like ``exports.json``): loading a model
never reads it. A file is used only when it is of this format, names the sha256 of the
model's current ``checksums.json`` (which covers every file of the model) and of the cache's
current manifest, and its arrays have the split's row count; otherwise it is recomputed.
Arrays load with ``allow_pickle=False``: the file cannot run code.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.cache import Cache
from bottleneck.cache.manifest import MANIFEST
from bottleneck.errors import UserError
from bottleneck.heads import class_scores
from bottleneck.models.metrics import classification_metrics, regression_metrics
from bottleneck.models.model_dir import CHECKSUMS_JSON, PREDICTIONS_DIR, Model, share_records
from bottleneck.models.tasks import READ_BATCH, target_key
from bottleneck.storage.atomic import atomic_path, sha256_file, to_jsonable

FORMAT = "bottleneck-predictions"
FORMAT_VERSION = 1


@dataclass
class RowPredictions:
    """One split's rows in cache order: truth, prediction, scores and the metrics of them.

    ``kind``: ``probability`` (scores are class probabilities), ``score`` (decision
    scores of a head without ``predict_proba``) or ``value`` (regression; no scores).
    """

    split: str
    task: str
    kind: str
    paths: np.ndarray
    truth: np.ndarray
    predicted: np.ndarray
    scores: np.ndarray | None
    metrics: dict[str, Any]
    model_sha256: str
    cache_sha256: str
    cache: str

    def __len__(self) -> int:
        return len(self.paths)


def predict_rows(head: Any, task: str, cache: Cache, split: str, n_classes: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, str]:
    """``(paths, truth, predictions, scores, kind)`` of a feature head on one split, read
    batch by batch (scores: N × classes probabilities or decision scores; None to regress)."""
    paths, truth, predictions, scores, kinds = [], [], [], [], set()
    for batch in cache.iter_batches(split, batch_size=READ_BATCH, with_paths=True):
        features = batch["features"]
        paths.append(batch["paths"])
        truth.append(batch[target_key(task)])
        predictions.append(np.asarray(head.predict(features)))
        if task == "classify":
            kind, values = class_scores(head, features, n_classes)
            kinds.add(kind)
            scores.append(values)
    kind = "value" if task == "regress" else kinds.pop()
    return (np.concatenate(paths).astype(str), np.concatenate(truth),
            np.concatenate(predictions), np.concatenate(scores) if scores else None, kind)


def image_rows(model: Model, cache: Cache, split: str
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, str]:
    """The same for a fine-tuned model, from the images behind the split (reopened from the
    cache's source and checked against its fingerprints), back in cache-row order."""
    from bottleneck.models.image_data import cache_images, split_outputs

    size = int(model.config["image_size"])
    source, data = cache_images(cache, model.task, (split,), size)
    rows = data[split]
    order, outputs = split_outputs(model.head.model_, source, rows, size)
    in_cache_order = np.empty_like(outputs)
    in_cache_order[order] = outputs
    paths = np.array([item.key for item in rows.items], dtype=str)
    if model.task == "regress":
        return paths, rows.targets, in_cache_order[:, 0], None, "value"
    return paths, rows.targets, in_cache_order.argmax(axis=1), in_cache_order, "probability"


def row_metrics(task: str, truth: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None,
                kind: str, classes: list[str]) -> dict[str, Any]:
    """The metrics ``evaluate`` prints, from per-row predictions."""
    if task == "regress":
        return regression_metrics(truth, predicted)
    return classification_metrics(truth, predicted, classes,
                                  scores if kind == "probability" else None)


def model_sha256(model_root: Path) -> str:
    """What names a model's state: the sha256 of its ``checksums.json``."""
    return sha256_file(Path(model_root) / CHECKSUMS_JSON)


def compute_predictions(model: Model, cache: Cache, split: str) -> RowPredictions:
    """Predict every row of ``split`` and score them (the caller checked compatibility)."""
    if model.takes_images:
        paths, truth, predicted, scores, kind = image_rows(model, cache, split)
    else:
        paths, truth, predicted, scores, kind = predict_rows(
            model.head, model.task, cache, split, len(cache.classes))
    metrics = row_metrics(model.task, truth, predicted, scores, kind, cache.classes)
    return RowPredictions(split, model.task, kind, paths, truth, predicted, scores, metrics,
                          model_sha256(model.root), sha256_file(cache.root / MANIFEST),
                          str(cache.root.resolve()))


def predictions_path(model_root: Path, cache_sha256: str, split: str) -> Path:
    """``MODEL_DIR/predictions/<split>-<sha12>.npz``."""
    return Path(model_root) / PREDICTIONS_DIR / f"{split}-{cache_sha256[:12]}.npz"


def save_predictions(model_root: Path, predictions: RowPredictions) -> Path | None:
    """Write the file atomically; None when the model directory is not writable."""
    path = predictions_path(model_root, predictions.cache_sha256, predictions.split)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "split": predictions.split,
            "task": predictions.task, "kind": predictions.kind,
            "model_sha256": predictions.model_sha256,
            "cache_manifest_sha256": predictions.cache_sha256, "cache": predictions.cache,
            "metrics": to_jsonable(predictions.metrics)}
    arrays = {"paths": predictions.paths, "truth": predictions.truth,
              "predicted": predictions.predicted, "meta": np.array(json.dumps(meta))}
    if predictions.scores is not None:
        arrays["scores"] = predictions.scores
    try:
        path.parent.mkdir(exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    except OSError:
        return None
    return path


def load_predictions(model: Model, cache: Cache, split: str) -> RowPredictions | None:
    """The stored predictions of ``model`` on ``split`` of ``cache``, or None when there are
    none that belong to the model and cache as they are now (see the module docstring)."""
    cache_sha = sha256_file(cache.root / MANIFEST)
    path = predictions_path(model.root, cache_sha, split)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError):
        return None
    n = cache.split_counts().get(split, 0)
    expected = {"format": FORMAT, "format_version": FORMAT_VERSION, "split": split,
                "task": model.task, "model_sha256": model_sha256(model.root),
                "cache_manifest_sha256": cache_sha}
    scores = arrays.get("scores")
    if (not isinstance(meta, dict) or any(meta.get(k) != v for k, v in expected.items())
            or any(len(arrays.get(k, ())) != n for k in ("paths", "truth", "predicted"))
            or (model.task == "classify") != (scores is not None)
            or (scores is not None and scores.shape != (n, len(cache.classes)))):
        return None
    return RowPredictions(split, model.task, str(meta.get("kind")), arrays["paths"],
                          arrays["truth"], arrays["predicted"], scores, meta["metrics"],
                          meta["model_sha256"], cache_sha, str(meta.get("cache")))


def predictions_for(model: Model, cache: Cache, split: str) -> tuple[RowPredictions, bool]:
    """``(predictions, computed_now)``: the stored ones, or computed through the same code as
    ``evaluate`` and stored."""
    stored = load_predictions(model, cache, split)
    if stored is not None:
        return stored, False
    computed = compute_predictions(model, cache, split)
    keep_predictions(model, computed)
    return computed, True


def keep_predictions(model: Model, predictions: RowPredictions) -> None:
    """Store them in the model's folder, and at its URL for a model there; skipped where the
    folder (or the store) takes no writes: they are only ever a record."""
    path = save_predictions(model.root, predictions)
    if path is not None and model.location is not None:
        with contextlib.suppress(UserError):
            share_records(model, [path])
