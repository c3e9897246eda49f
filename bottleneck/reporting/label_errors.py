"""Likely label errors by confident learning (Northcutt, Jiang and Chuang, JAIR 2021).

Out-of-fold probabilities come from scikit-learn's ``cross_val_predict`` with this project's
default ``logreg`` head on the rows of train and val (view 0): their unit-length features at
full width where the rows are few (``FULL_WIDTH_VALUES``), else projected on their top
singular directions (the full width costs minutes at 60k rows and finds the same errors; on
a few dozen rows a 64-d projection is as wide as the rows are many, and its standardised
noise directions make the out-of-fold model guess: 0.74 accuracy where every head is
perfect). Then, as Cleanlab's ``find_label_issues(...,
filter_by="confident_learning")`` defines it (implemented here: Cleanlab is AGPL-3.0):

- the threshold of class j is the mean out-of-fold probability of j over rows labelled j;
- a row is counted for the class whose probability reaches its own threshold; where several
  do, for the most probable class overall; rows where none does are not counted;
- it is a label issue when that class differs from its given label — unless its most
  probable class is the given label (Cleanlab drops those too);
- issues are ranked by self-confidence, the probability of the given label, lowest first.

The out-of-fold model is the evidence against a label, so it must be as good as the heads
the user already has: where its accuracy on held-out rows (val rows out of fold, else test
rows from one more fit on train and val) is more than ``EVIDENCE_MARGIN`` below the best
fitted head's on the same rows, nothing is flagged (:func:`weaker_than_heads`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

FOLDS = 5
THRESHOLD_SLACK = 1e-6  # as Cleanlab: p >= t - 1e-6 reaches the threshold
FULL_WIDTH_VALUES = 10_000_000  # rows × feature width fitted at full width, at most
EVIDENCE_MARGIN = 0.05  # accuracy the out-of-fold model may lag the best head by


def evidence_features(unit: np.ndarray | None, reduced: np.ndarray) -> np.ndarray:
    """The features the out-of-fold model is fitted on: ``unit`` (length-1 rows) at full
    width when given and rows × width ≤ ``FULL_WIDTH_VALUES``, else ``reduced`` (their
    projection)."""
    return unit if unit is not None and unit.size <= FULL_WIDTH_VALUES else reduced


def held_out_accuracy(features: np.ndarray, labels: np.ndarray, queries: np.ndarray,
                      truth: np.ndarray, seed: int = 0) -> float:
    """Accuracy on ``queries`` (labelled ``truth``) of the default logreg head fitted on
    all of ``features`` and ``labels``: the out-of-fold model's skill on rows outside it."""
    from bottleneck.heads import make_head

    head = make_head("logreg", "classify", {}, random_state=seed)
    head.fit(features, labels)
    return float(np.mean(head.predict(queries) == truth))


def weaker_than_heads(evidence: float, head: float, margin: float = EVIDENCE_MARGIN) -> bool:
    """True when the out-of-fold model (``evidence``: its accuracy) is far below a fitted
    head (``head``: its accuracy on the same rows): then it is no evidence against a label."""
    return evidence < head - margin


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, n_classes: int,
                              folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """N × n_classes out-of-fold probabilities of the default logreg head (stratified
    folds; a class absent from a fold's training part gets probability 0 there)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from bottleneck.heads import make_head

    present = np.unique(labels)
    encoded = np.searchsorted(present, labels)
    head = make_head("logreg", "classify", {}, random_state=seed)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probabilities = cross_val_predict(head, features, encoded, cv=splitter,
                                      method="predict_proba")
    full = np.zeros((len(labels), n_classes))
    full[:, present] = probabilities
    return full


def confident_learning(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    """Label issues of ``labels`` given out-of-fold ``probabilities`` (see the module
    docstring): ``issues`` (row indices, lowest self-confidence first), ``suggested`` (the
    class each issue was counted for), ``self_confidence`` and the per-class
    ``thresholds`` (NaN for a class no row carries)."""
    n, k = probabilities.shape
    thresholds = np.full(k, np.nan)
    for j in range(k):
        mine = labels == j
        if mine.any():
            thresholds[j] = probabilities[mine, j].mean()
    reaches = probabilities >= np.where(np.isnan(thresholds), np.inf, thresholds) \
        - THRESHOLD_SLACK
    counted = reaches.sum(axis=1)
    guess = np.where(counted > 1, probabilities.argmax(axis=1), reaches.argmax(axis=1))
    issue = (counted > 0) & (guess != labels) & (probabilities.argmax(axis=1) != labels)
    self_confidence = probabilities[np.arange(n), labels]
    rows = np.flatnonzero(issue)
    rows = rows[np.argsort(self_confidence[rows], kind="stable")]
    return {"issues": rows, "suggested": guess[rows], "self_confidence": self_confidence[rows],
            "thresholds": thresholds}


def folds_for(labels: np.ndarray, folds: int = FOLDS) -> int:
    """Folds the smallest class allows (0: fewer than 2 rows in some class, or one class)."""
    counts = np.unique(labels, return_counts=True)[1]
    if len(counts) < 2:
        return 0
    return int(min(folds, counts.min())) if counts.min() >= 2 else 0


def find_label_errors(features: np.ndarray, labels: np.ndarray, n_classes: int,
                      folds: int = FOLDS, seed: int = 0) -> dict[str, Any] | None:
    """Confident learning on rows with ``features``; None when the labels allow no folds.
    Beside :func:`confident_learning`'s keys: ``folds``, ``predicted`` (each row's
    out-of-fold class) and ``oof_accuracy``."""
    usable = folds_for(labels, folds)
    if not usable:
        return None
    probabilities = out_of_fold_probabilities(features, labels, n_classes, usable, seed)
    found = confident_learning(labels, probabilities)
    found["folds"] = usable
    found["predicted"] = probabilities.argmax(axis=1)
    found["oof_accuracy"] = float(np.mean(found["predicted"] == labels))
    return found
