"""Score a fitted head on a split of a cache, batch by batch, and check they belong together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.cache import Cache, open_cache
from bottleneck.errors import UserError
from bottleneck.models.metrics import classification_metrics, regression_metrics
from bottleneck.models.model_dir import Model, load_model
from bottleneck.models.predictions import compute_predictions, keep_predictions, predict_rows
from bottleneck.storage.location import is_url

MATCHING_CONFIG = ("backbone", "layer", "pooling", "image_size", "weights_digest")


def open_any(cache: str | Path | Cache) -> Cache:
    """A Cache from a path or a Cache."""
    return cache if isinstance(cache, Cache) else open_cache(cache)


def check_task_data(cache: Cache, task: str) -> None:
    """Regression needs targets in the cache."""
    if task == "regress" and not cache.has_targets:
        raise UserError(
            f"{cache.root} has no targets to regress on; attach them first with "
            f"`bottleneck targets {cache.root} --synthetic-prices` (or --from-csv FILE)."
        )


@dataclass
class Evaluation:
    """The scores of a saved model on one split of a cache."""

    model_dir: Path
    cache: Path
    split: str
    task: str
    classes: list[str]
    metrics: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"model": str(self.model_dir), "cache": str(self.cache), "split": self.split,
                "task": self.task, "metrics": self.metrics}

    def report(self) -> str:
        from bottleneck.models.metrics import format_metrics

        return format_metrics(self.split, self.metrics, self.task, self.classes)


def predict_split(head: Any, task: str, cache: Cache, split: str, n_classes: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(truth, predictions, probabilities or None)`` for a split, read batch by batch."""
    _, truth, predictions, scores, kind = predict_rows(head, task, cache, split, n_classes)
    return truth, predictions, scores if kind == "probability" else None


def evaluate_split(head: Any, task: str, cache: Cache, split: str
                   ) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """(metrics, truth, predictions) of a fitted head on one split of ``cache``."""
    truth, predictions, proba = predict_split(head, task, cache, split, len(cache.classes))
    if task == "regress":
        return regression_metrics(truth, predictions), truth, predictions
    return classification_metrics(truth, predictions, cache.classes, proba), truth, predictions


def check_compatible(model: Model, cache: Cache) -> None:
    """Refuse a cache whose features or labels mean something else than the model's."""
    described = (f"{model.config.get('backbone')} @ {model.config.get('image_size')}px, layer "
                 f"{model.config.get('layer') or '(last block)'}, pooling "
                 f"{model.config.get('pooling')}")
    if cache.feature_shape != model.feature_shape:
        raise UserError(
            f"{cache.root} holds {'×'.join(map(str, cache.feature_shape))} features but the "
            f"model was trained on {'×'.join(map(str, model.feature_shape))} ({described}); "
            "use a cache extracted with the same backbone, layer, pooling and image size."
        )
    for key in MATCHING_CONFIG:
        mine, theirs = model.config.get(key), cache.config.get(key)
        if mine != theirs:
            if key == "weights_digest":
                mine, theirs = model.config.get("weights_name"), cache.config.get("weights_name")
                key = "weights"
            raise UserError(f"{cache.root} was extracted with {key} {theirs!r} but the model "
                            f"expects {mine!r} ({described}); use a matching cache.")
    if model.task == "classify" and cache.classes != model.classes:
        raise UserError(f"{cache.root} has classes {cache.classes} but the model knows "
                        f"{model.classes}; use a cache with the same class folders.")
    check_task_data(cache, model.task)


def check_image_model(model: Model, cache: Cache) -> None:
    """A fine-tuned model reads the images behind the cache's rows: classes must agree."""
    if model.task == "classify" and cache.classes != model.classes:
        raise UserError(f"{cache.root} has classes {cache.classes} but the model knows "
                        f"{model.classes}; use a cache with the same class folders.")
    check_task_data(cache, model.task)


def evaluate(model_dir: str | Path, cache: str | Path | Cache | None = None,
             split: str = "test") -> Evaluation:
    """Score a saved model on one split of ``cache`` (default: the cache it was trained on)."""
    model = load_model(model_dir)
    if cache is None:
        recorded = model.info["cache"]  # a folder, or a URL (opened below)
        if not is_url(recorded) and not Path(recorded).is_dir():
            raise UserError(f"the cache this model was trained on ({recorded}) is gone; pass "
                            "a matching CACHE to evaluate on.")
        cache = recorded
    cache = open_any(cache)
    check_model_cache(model, cache)
    if not cache.split_counts().get(split):
        raise UserError(f"{cache.root} has no rows in the {split} split; choose another --split.")
    # a fine-tuned model scores the images behind the rows, reopened from the cache's source
    # (cached features mean nothing to a backbone that has changed)
    predictions = compute_predictions(model, cache, split)
    keep_predictions(model, predictions)  # what the report shows; skipped if read-only
    return Evaluation(model.root, cache.root, split, model.task, cache.classes,
                      predictions.metrics)


def check_model_cache(model: Model, cache: Cache) -> None:
    """Refuse a cache this model cannot be scored on."""
    if model.takes_images:
        check_image_model(model, cache)
    else:
        check_compatible(model, cache)
