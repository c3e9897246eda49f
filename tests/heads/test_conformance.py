"""scikit-learn's estimator checks on every registered head, for every task it can do.

Heads are built with ``make_head`` (as ``fit`` and ``bench`` build them), seeded, so nested
estimators get a ``random_state`` too. The dense head trains briefly here (set through its
parameters; its defaults are untouched): long enough for the checks that score a fit
(``check_classifiers_train`` wants accuracy > 0.83, ``check_regressors_train`` R² > 0.5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from bottleneck.heads import HEADS, make_head
from bottleneck.heads.sklearn_heads import SpatialPool

DENSE_QUICK = {"epochs": 3, "hidden": (8,), "learning_rate": 0.1, "patience": None,
               "reduce_lr": False}


def registered_heads() -> list[BaseEstimator]:
    """One seeded head per (registered head, task it supports)."""
    heads = []
    for name, spec in HEADS.items():
        for task in spec.tasks:
            params = DENSE_QUICK if spec.name == "dense" else {}
            heads.append(make_head(name, task, params, random_state=0))
    return heads


def test_every_head_and_task_is_checked() -> None:
    pairs = sum(len(spec.tasks) for spec in HEADS.values())
    assert len(registered_heads()) == pairs >= 7


# No expected failures. Skipped by scikit-learn itself: the pandas checks (pandas is not
# installed) and the array API ones (SCIPY_ARRAY_API unset).
@parametrize_with_checks([*registered_heads(), SpatialPool()])
def test_scikit_learn_conformance(estimator: BaseEstimator, check: Any) -> None:
    check(estimator)


SKLEARN_HEAD_TASKS = [(name, task) for name, spec in HEADS.items() if name != "dense"
                      for task in spec.tasks]


@pytest.mark.parametrize(("name", "task"), SKLEARN_HEAD_TASKS)
def test_unseeded_heads_fit_the_same_twice_and_keep_their_parameters(name: str,
                                                                     task: str) -> None:
    head = make_head(name, task)  # no random_state: linear-svm's solver is random
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 6))
    y = np.arange(60) % 3 if task == "classify" else X[:, 0] + 0.1 * rng.normal(size=60)
    before = head.get_params()
    assert not [v for v in before.values() if isinstance(v, BaseEstimator)]  # values only
    first = head.fit(X, y).predict(X)
    assert head.get_params() == before
    check_is_fitted(head)
    np.testing.assert_array_equal(clone(head).fit(X, y).predict(X), first)


BAD_INPUTS = {
    "no rows": (np.zeros((0, 4)), np.zeros(0)),
    "no features": (np.zeros((6, 0)), np.arange(6) % 2),
    "an empty axis": (np.zeros((6, 0, 2, 3)), np.arange(6) % 2),
    "NaN": (np.full((6, 4), np.nan), np.arange(6) % 2),
    "infinity": (np.full((6, 4), np.inf), np.arange(6) % 2),
    "a 1-D X": (np.arange(6.0), np.arange(6) % 2),
    "complex values": (np.ones((6, 4), dtype=complex), np.arange(6) % 2),
    "mismatched rows": (np.ones((6, 4)), np.arange(5) % 2),
}


@pytest.mark.parametrize("task", HEADS["dense"].tasks)
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_dense_refuses_bad_arrays_before_tensorflow(task: str, case: str) -> None:
    # An empty X used to reach oneDNN, which aborted the Python process.
    X, y = BAD_INPUTS[case]
    with pytest.raises(ValueError):
        make_head("dense", task, DENSE_QUICK).fit(X, y)


def test_dense_checks_validation_data_and_predict_input() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), np.arange(40) % 2
    head = make_head("dense", "classify", DENSE_QUICK)
    with pytest.raises(NotFittedError):
        head.predict(X)
    with pytest.raises(ValueError, match="0 sample"):
        head.fit(X, y, validation_data=(X[:0], y[:0]))
    with pytest.raises(ValueError, match="not in classes"):
        head.fit(X, y, validation_data=(X, y + 5))  # labels the output layer has no unit for
    head.fit(X, y, validation_data=(X, y))
    assert head.n_features_in_ == 4
    with pytest.raises(ValueError, match="expecting 4 features"):
        head.predict(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        head.predict(np.full((2, 4), np.nan))


def test_dense_predictions_do_not_depend_on_the_rows_beside_them() -> None:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(300, 16)), rng.normal(size=300)
    head = make_head("dense", "regress", DENSE_QUICK, random_state=0).fit(X, y)
    together = head.predict(X)
    alone = np.concatenate([head.predict(X[i:i + 1]) for i in range(0, 300, 37)])
    np.testing.assert_array_equal(alone, together[::37])
    order = rng.permutation(300)
    np.testing.assert_array_equal(head.predict(X[order]), together[order])
