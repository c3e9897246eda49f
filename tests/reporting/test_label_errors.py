"""Confident learning finds labels flipped on purpose, and flags what Cleanlab flags."""

from __future__ import annotations

import numpy as np
import pytest

from bottleneck.reporting.label_errors import (
    confident_learning,
    find_label_errors,
    out_of_fold_probabilities,
)


def flipped_clusters(seed: int = 0, n: int = 1500, k: int = 6, d: int = 24, spread: float = 3.0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian clusters, one per class, with 5% of the labels moved to another class:
    (features, true labels, given labels, the flipped rows)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, spread, (k, d))
    truth = rng.integers(0, k, n)
    features = (centres[truth] + rng.normal(0, 1, (n, d))).astype(np.float32)
    flipped = rng.choice(n, n // 20, replace=False)
    given = truth.copy()
    given[flipped] = (truth[flipped] + rng.integers(1, k, len(flipped))) % k
    return features, truth, given, flipped


def test_most_flipped_labels_rank_in_the_top_twice_their_number() -> None:
    features, _, given, flipped = flipped_clusters()
    found = find_label_errors(features, given, 6)
    assert found is not None and found["folds"] == 5
    top = set(found["issues"][: 2 * len(flipped)].tolist())
    recall = len(top & set(flipped.tolist())) / len(flipped)
    assert recall >= 0.7, recall
    confidence = found["self_confidence"]
    assert np.all(np.diff(confidence) >= 0)  # lowest probability of the given label first


def test_clean_labels_give_few_issues() -> None:
    features, truth, _, _ = flipped_clusters(seed=1)
    found = find_label_errors(features, truth, 6)
    assert found is not None and len(found["issues"]) <= len(truth) // 100


def test_the_rule_on_hand_made_probabilities() -> None:
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    found = confident_learning(labels, probabilities)
    np.testing.assert_allclose(found["thresholds"], [0.55, 0.55])
    assert found["issues"].tolist() == [1, 3]  # self-confidence 0.2, then 0.4
    assert found["suggested"].tolist() == [1, 0]


def reference_rule(labels: np.ndarray, probabilities: np.ndarray) -> list[int]:
    """The module docstring's rule, one row at a time."""
    k = probabilities.shape[1]
    thresholds = [probabilities[labels == j, j].mean() for j in range(k)]
    issues = []
    for i, (label, p) in enumerate(zip(labels, probabilities, strict=True)):
        reached = [j for j in range(k) if p[j] >= thresholds[j] - 1e-6]
        if not reached:
            continue
        guess = int(np.argmax(p)) if len(reached) > 1 else reached[0]
        if guess != label and int(np.argmax(p)) != label:
            issues.append(i)
    return sorted(issues, key=lambda i: (probabilities[i, labels[i]], i))


@pytest.mark.parametrize("seed", range(5))
def test_the_vectorised_rule_is_the_written_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, 400)
    probabilities = rng.dirichlet(np.full(4, 0.7), 400)
    probabilities[np.arange(200), labels[:200]] += 1.0  # half lean to their label
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    assert confident_learning(labels, probabilities)["issues"].tolist() == reference_rule(
        labels, probabilities)


def test_flags_the_same_rows_as_cleanlab() -> None:
    filter_module = pytest.importorskip(
        "cleanlab.filter", reason="cleanlab (AGPL, not a dependency) is not installed; "
        "`pip install cleanlab` to compare with it")
    for seed, spread in ((2, 3.0), (3, 0.6)):  # separable, and overlapping classes
        features, _, given, _ = flipped_clusters(seed=seed, spread=spread)
        probabilities = out_of_fold_probabilities(features, given, 6)
        mine = confident_learning(given, probabilities)["issues"]
        theirs = filter_module.find_label_issues(given, probabilities,
                                                 filter_by="confident_learning",
                                                 return_indices_ranked_by="self_confidence")
        assert set(mine.tolist()) == set(theirs.tolist()) and len(mine) > 10
        assert mine.tolist() == theirs.tolist()
