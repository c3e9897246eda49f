"""Heads as Keras models: the same outputs as the fitted estimator, from Keras' own layers.

Every (head, task) is checked end to end, pixels → assembled model against the head on the
cached rows, in tests/models/test_finetune.py; here the cases that path does not meet."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bottleneck.cache import Cache
from bottleneck.errors import UserError
from bottleneck.heads import HEADS, keras_head, make_head
from tests.finetune_fixtures import reference

pytest_plugins = ["tests.heads_fixtures"]

QUICK = {"dense": {"epochs": 2, "hidden": (16,)}}
CONVERTIBLE = [(name, task) for name, spec in HEADS.items() if spec.to_keras
               for task in spec.tasks]


def fitted(name: str, task: str, X: np.ndarray, y: np.ndarray, **params: Any) -> Any:
    return make_head(name, task, {**QUICK.get(name, {}), **params}, random_state=0).fit(X, y)


def keras_outputs(name: str, head: Any, task: str, X: np.ndarray, n_classes: int) -> np.ndarray:
    model = keras_head(name, head, task, n_classes, X.shape[1:]).model
    return np.asarray(model.predict(X.astype(np.float32), verbose=0), dtype=np.float64)


def test_every_head_but_the_rbf_svm_converts() -> None:
    assert {name for name, _ in CONVERTIBLE} == {"logreg", "linear-svm", "ridge", "dense"}
    with pytest.raises(UserError, match="'svm' head cannot be expressed as Keras layers.*"
                                        "logreg, linear-svm, ridge, dense"):
        keras_head("svm", None, "classify", 3, (512,))


@pytest.mark.parametrize("name", ["logreg", "ridge", "linear-svm", "dense"])
def test_two_classes_give_two_probabilities(name: str, feature_cache: Cache) -> None:
    train, val = feature_cache.load("train"), feature_cache.load("val")
    keep, keep_val = train["labels"] < 2, val["labels"] < 2
    head = fitted(name, "classify", train["features"][keep], train["labels"][keep])
    X = val["features"][keep_val]
    got = keras_outputs(name, head, "classify", X, 2)
    assert got.shape == (len(X), 2)
    np.testing.assert_allclose(got, reference(head, "classify", X, 2), atol=1e-5)


@pytest.mark.parametrize("name", ["logreg", "dense"])
def test_spatial_features_are_reduced_as_the_head_does(name: str, spatial_cache: Cache) -> None:
    train, val = spatial_cache.load("train"), spatial_cache.load("val")
    head = fitted(name, "classify", train["features"], train["labels"], spatial="max")
    np.testing.assert_allclose(keras_outputs(name, head, "classify", val["features"], 3),
                               reference(head, "classify", val["features"], 3), atol=1e-5)


def test_a_head_that_never_saw_a_class_is_refused(feature_cache: Cache) -> None:
    train = feature_cache.load("train")
    keep = train["labels"] != 1
    head = fitted("logreg", "classify", train["features"][keep], train["labels"][keep])
    with pytest.raises(UserError, match=r"never saw class index\(es\) \[1\]"):
        keras_head("logreg", head, "classify", 3, (512,))
