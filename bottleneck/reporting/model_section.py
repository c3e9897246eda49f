"""A model's sections: its scores (read from the per-row predictions ``evaluate`` stored, or
computed and stored through the same code), calibration or residuals, and its mistakes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bottleneck.cache import Cache
from bottleneck.errors import UserError
from bottleneck.models.metrics import format_metrics, headline
from bottleneck.models.predictions import RowPredictions, predictions_for
from bottleneck.reporting import figures
from bottleneck.reporting.gather import ModelEntry

MISTAKES = 12  # shown per model
RELIABILITY_ROWS = 50  # fewer rows make no reliability diagram (a bin would hold a few)
SPLITS = ("val", "test")


@dataclass
class ModelScores:
    """The per-row predictions of one model on its cache's val and test splits."""

    entry: ModelEntry
    predictions: dict[str, RowPredictions] = field(default_factory=dict)
    computed: list[str] = field(default_factory=list)
    problem: str | None = None

    @property
    def mistake_split(self) -> str | None:
        """The split whose mistakes are shown: test, else val."""
        return next((s for s in ("test", "val") if s in self.predictions), None)


def score_model(entry: ModelEntry, cache: Cache) -> ModelScores:
    """Stored predictions of ``entry`` on val and test, computing the missing ones; a model
    that cannot be scored (its images are gone, its cache does not match) says why."""
    from bottleneck.models.evaluate import check_model_cache

    scores = ModelScores(entry)
    try:
        check_model_cache(entry.model, cache)
        for split in SPLITS:
            if cache.split_counts().get(split):
                scores.predictions[split], computed = predictions_for(entry.model, cache, split)
                if computed:
                    scores.computed.append(split)
    except UserError as exc:
        scores.problem = f"cannot score it on {cache.root}: {exc.format_message()}"
    return scores


def wrong_order(predictions: RowPredictions) -> tuple[np.ndarray, np.ndarray, str]:
    """``(positions, score, what the score is)``: the split's mistakes, most confident
    first (regression: the largest errors)."""
    if predictions.task == "regress":
        error = np.abs(predictions.predicted - predictions.truth)
        order = np.argsort(-error, kind="stable")
        return order, error[order], "absolute error"
    truth = predictions.truth.astype(np.int64)
    predicted = predictions.predicted.astype(np.int64)
    wrong = np.flatnonzero(predicted != truth)
    scores = predictions.scores
    if scores is None:
        return wrong, np.zeros(len(wrong)), "score"
    if predictions.kind == "probability":
        value, what = scores[wrong, predicted[wrong]], "probability of the predicted class"
    else:
        value = scores[wrong, predicted[wrong]] - scores[wrong, truth[wrong]]
        what = ("decision margin (score of the predicted class minus the true class's; "
                "this head has no probabilities)")
    order = np.argsort(-value, kind="stable")
    return wrong[order], value[order], what


def metrics_view(predictions: RowPredictions, classes: list[str]) -> dict[str, Any]:
    """The numbers of one split as evaluate prints them (same formats) and raw."""
    metrics = predictions.metrics
    view: dict[str, Any] = {"split": predictions.split, "n": metrics["n"],
                            "headline": headline(metrics, predictions.task),
                            "text": format_metrics(predictions.split, metrics, predictions.task,
                                                   classes), "metrics": metrics}
    if predictions.task == "classify":
        view["per_class"] = [
            {"class": name, "precision": f"{row['precision']:.3f}",
             "recall": f"{row['recall']:.3f}", "f1": f"{row['f1']:.3f}",
             "support": row["support"]} for name, row in metrics["per_class"].items()]
        view["summary"] = {"accuracy": f"{metrics['accuracy']:.3f}",
                           "macro F1": f"{metrics['macro_f1']:.3f}",
                           "balanced accuracy": f"{metrics['balanced_accuracy']:.3f}"}
        if "log_loss" in metrics:
            view["summary"]["log loss"] = f"{metrics['log_loss']:.4f}"
    else:
        view["summary"] = {"MSE": f"{metrics['mse']:.4g}", "RMSE": f"{metrics['rmse']:.4g}",
                           "MAE": f"{metrics['mae']:.4g}", "R²": f"{metrics['r2']:.4f}"}
    return view


def model_plots(scores: ModelScores, cache: Cache) -> dict[str, Any]:
    """Confusion matrix and reliability diagram, or predicted-vs-true and residuals."""
    split = scores.mistake_split
    if split is None:
        return {}
    predictions = scores.predictions[split]
    name = scores.entry.root.name
    if predictions.task == "regress":
        labels = cache.column("labels", split)
        scatter, residuals = figures.regression(predictions.truth, predictions.predicted,
                                                labels, cache.classes, f"{name} on {split}")
        return {"scatter": scatter, "residuals": residuals}
    plots: dict[str, Any] = {"confusion": figures.confusion(
        predictions.metrics["confusion_matrix"], cache.classes,
        f"{name} on {split}: {headline(predictions.metrics, 'classify')}")}
    if predictions.kind == "probability" and predictions.scores is not None and \
            len(predictions) < RELIABILITY_ROWS:
        plots["reliability_note"] = (
            f"No reliability diagram: {split} has {len(predictions)} rows, and one needs at "
            f"least {RELIABILITY_ROWS} to say anything about calibration.")
    elif predictions.kind == "probability" and predictions.scores is not None:
        calibration = figures.calibration_bins(predictions.truth.astype(np.int64),
                                               predictions.scores)
        plots["calibration"] = calibration
        plots["reliability"] = figures.reliability(calibration, f"{name} on {split}")
    return plots


def recorded_scores(entry: ModelEntry) -> dict[str, Any]:
    """What fit recorded in metrics.json, for a model whose cache is gone."""
    try:
        return entry.model.metrics()
    except (OSError, ValueError):
        return {}
