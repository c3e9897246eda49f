"""The report's plots as PNG data URIs (matplotlib Figures, no pyplot state)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

CALIBRATION_BINS = 10


def png_uri(figure: Figure, dpi: int = 90) -> str:
    """The figure as a ``data:image/png;base64,…`` URI."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def file_uri(path: Path) -> str | None:
    """A PNG file as a data URI, or None when it is not there."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str) -> str:
    """The confusion matrix as :mod:`bottleneck.models.plots` draws it for ``fit``."""
    from bottleneck.models.plots import confusion_figure

    return png_uri(confusion_figure(matrix, classes, title))


def calibration_bins(truth: np.ndarray, probabilities: np.ndarray,
                     bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Reliability of the top-class probability: per equal-width bin its mean confidence,
    accuracy and count, and the expected calibration error (count-weighted gap)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == truth
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        chosen = which == b
        if chosen.any():
            rows.append({"low": float(edges[b]), "high": float(edges[b + 1]),
                         "confidence": float(confidence[chosen].mean()),
                         "accuracy": float(correct[chosen].mean()), "n": int(chosen.sum())})
    ece = sum(r["n"] * abs(r["accuracy"] - r["confidence"]) for r in rows) / max(1, len(truth))
    return {"bins": rows, "ece": float(ece)}


def reliability(calibration: dict[str, Any], title: str) -> str:
    """The reliability diagram: accuracy against confidence per bin, with the diagonal."""
    figure = Figure(figsize=(4.2, 4))
    ax = figure.add_subplot()
    bins = calibration["bins"]
    centres = [(b["low"] + b["high"]) / 2 for b in bins]
    ax.bar(centres, [b["accuracy"] for b in bins], width=0.09, color="#4c78a8",
           edgecolor="white", label="accuracy")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o",
            color="#e45756", markersize=4, label="mean confidence")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("top-class probability")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title} (ECE {calibration['ece']:.3f})", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return png_uri(figure)


def regression(truth: np.ndarray, predicted: np.ndarray, labels: np.ndarray,
               classes: Sequence[str], title: str) -> tuple[str, str]:
    """Predicted against true (as ``fit`` plots it) and the residuals of each class."""
    from bottleneck.models.plots import predictions_figure

    scatter = png_uri(predictions_figure(truth, predicted, title))
    figure = Figure(figsize=(max(4.0, 0.6 * len(classes) + 2), 3.6))
    ax = figure.add_subplot()
    residuals = [predicted[labels == i] - truth[labels == i] for i in range(len(classes))]
    present = [i for i, r in enumerate(residuals) if len(r)]
    ax.boxplot([residuals[i] for i in present], showfliers=False)
    ax.set_xticks(range(1, len(present) + 1), [classes[i] for i in present], rotation=45,
                  ha="right", fontsize=8)
    ax.axhline(0, color="grey", linestyle=":")
    ax.set_ylabel("predicted − true")
    ax.set_title("residuals per class", fontsize=9)
    return scatter, png_uri(figure)


def feature_map(xy: np.ndarray, labels: np.ndarray, marked: np.ndarray,
                classes: Sequence[str], title: str) -> str:
    """The 2-D map coloured by class; marked rows (mistakes) as black crosses."""
    from matplotlib import colormaps

    figure = Figure(figsize=(7.5, 6))
    ax = figure.add_subplot()
    colours = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    for index, name in enumerate(classes):
        chosen = (labels == index) & ~marked
        if chosen.any():
            ax.scatter(xy[chosen, 0], xy[chosen, 1], s=6, alpha=0.7, label=name,
                       color=colours(index % colours.N))
    if marked.any():
        ax.scatter(xy[marked, 0], xy[marked, 1], s=28, marker="x", color="black",
                   linewidths=1.2, label="mistake")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1, 0.5))
    return png_uri(figure)
