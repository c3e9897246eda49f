"""Scores of a head on one split, as JSON-ready dicts, and their readable text form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# isort: off
import bottleneck.heads.sklearn_import  # noqa: F401  (scikit-learn without pandas, scipy.stats)
from sklearn import metrics as skm
# isort: on


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str],
    proba: np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix.

    Labels are indices into ``classes``; ``proba`` (N × len(classes)) adds the log loss.
    """
    labels = list(range(len(classes)))
    report = skm.classification_report(y_true, y_pred, labels=labels, target_names=classes,
                                       output_dict=True, zero_division=0)
    per_class = {name: {"precision": float(report[name]["precision"]),
                        "recall": float(report[name]["recall"]),
                        "f1": float(report[name]["f1-score"]),
                        "support": int(report[name]["support"])} for name in classes}
    present = [row["f1"] for row in per_class.values() if row["support"] > 0]
    result: dict[str, Any] = {
        "n": int(len(y_true)),
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(np.mean(present)) if present else 0.0,
        "per_class": per_class,
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
    if proba is not None:
        result["log_loss"] = log_loss(y_true, proba)
    return result


def log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """scikit-learn's ``log_loss`` of labels (indices into ``proba``'s columns), each row's
    probabilities first scaled to sum to 1 (float32 rounding), and clipped as theirs are.

    Only each row's true-class probability is read: no N × classes copy is made (theirs makes
    several, ~10 GB for 180,000 rows of 1,000 classes)."""
    proba = np.asarray(proba)
    truth = np.asarray(y_true, dtype=np.int64)
    picked = proba[np.arange(len(truth)), truth].astype(np.float64) \
        / proba.sum(axis=1, dtype=np.float64)
    eps = np.finfo(np.float64).eps
    return float(-np.mean(np.log(np.clip(picked, eps, 1 - eps))))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """MSE, RMSE, MAE and R², in the target's own units."""
    mse = float(skm.mean_squared_error(y_true, y_pred))
    return {
        "n": int(len(y_true)),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
    }


def headline(split_metrics: dict[str, Any], task: str) -> str:
    """One short score: ``accuracy 0.933`` or ``R² 0.812 (MAE 4.1)``."""
    if task == "regress":
        ceiling = split_metrics.get("r2_ceiling")
        bound = f", ceiling R² {ceiling:.3f}" if ceiling is not None else ""
        return f"R² {split_metrics['r2']:.3f} (MAE {split_metrics['mae']:.4g}{bound})"
    return f"accuracy {split_metrics['accuracy']:.3f}"


def format_metrics(split: str, split_metrics: dict[str, Any], task: str,
                   classes: Sequence[str]) -> str:
    """A readable report of one split's metrics."""
    lines = [f"{split}: {headline(split_metrics, task)}  (n={split_metrics['n']})"]
    if task == "regress":
        lines.append(f"  MSE {split_metrics['mse']:.4g}  RMSE {split_metrics['rmse']:.4g}  "
                     f"MAE {split_metrics['mae']:.4g}  R² {split_metrics['r2']:.4f}")
        return "\n".join(lines)
    width = max([len(c) for c in classes] + [5])
    lines.append(f"  {'class':<{width}}  precision  recall     f1  support")
    for name, row in split_metrics["per_class"].items():
        lines.append(f"  {name:<{width}}  {row['precision']:9.3f}  {row['recall']:6.3f}  "
                     f"{row['f1']:5.3f}  {row['support']:7d}")
    lines.append(f"  macro F1 {split_metrics['macro_f1']:.3f}, balanced accuracy "
                 f"{split_metrics['balanced_accuracy']:.3f}")
    lines.append("  confusion matrix (rows: true, columns: predicted)")
    cell = max(5, *(len(str(v)) + 1 for row in split_metrics["confusion_matrix"] for v in row))
    for name, row in zip(classes, split_metrics["confusion_matrix"], strict=True):
        lines.append(f"  {name:<{width}}" + "".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)
