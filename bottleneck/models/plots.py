"""PNG plots for a model directory, drawn on standalone matplotlib Figures.

No pyplot state is touched (a notebook's backend stays as it is); files render with Agg.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100, format="png")
    return path


def confusion_figure(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str
                     ) -> Figure:
    """The confusion matrix as a heat map with counts (rows: true class), for the report's
    page (a model directory's PNG is :mod:`bottleneck.models.confusion_png`)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    size = 3 + 0.45 * len(classes)
    figure = Figure(figsize=(size + 1, size))
    ax = figure.add_subplot()
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=list(classes)).plot(
        ax=ax, cmap="Blues", xticks_rotation=45, colorbar=False)
    ax.set_title(title)
    return figure


def plot_predictions(y_true: np.ndarray, y_pred: np.ndarray, path: Path, title: str) -> Path:
    """Predicted against true values, with the y = x line."""
    return _save(predictions_figure(y_true, y_pred, title), path)


def predictions_figure(y_true: np.ndarray, y_pred: np.ndarray, title: str) -> Figure:
    """The Figure of :func:`plot_predictions`."""
    from sklearn.metrics import PredictionErrorDisplay

    figure = Figure(figsize=(5, 5))
    ax = figure.add_subplot()
    PredictionErrorDisplay.from_predictions(
        y_true, y_pred, kind="actual_vs_predicted", ax=ax, random_state=0,
        scatter_kwargs={"alpha": 0.5, "s": 12})
    ax.set_title(title)
    return figure


def plot_history(history: dict[str, list[float]], path: Path, best_epoch: int | None = None
                 ) -> Path:
    """Training and validation curves per epoch: loss, the metric and the learning rate."""
    panels = [name for name in history if not name.startswith("val_")]
    figure = Figure(figsize=(4.2 * len(panels), 3.6))
    for index, name in enumerate(panels, start=1):
        ax = figure.add_subplot(1, len(panels), index)
        epochs = np.arange(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], label="train" if name != "learning_rate" else name)
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], label="val")
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle=":", label="restored epoch")
        if name == "learning_rate":
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend()
    return _save(figure, path)
