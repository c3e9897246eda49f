"""Heads as Keras models: the same outputs as the fitted estimator, from Keras' own layers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bottleneck.cache import Cache
from bottleneck.errors import UserError
from bottleneck.heads import HEADS, class_scores, keras_head, make_head

pytest_plugins = ["tests.heads_fixtures"]

QUICK = {"dense": {"epochs": 5, "hidden": (16,)}}
CONVERTIBLE = [(name, task) for name, spec in HEADS.items() if spec.to_keras
               for task in spec.tasks]


def fitted(name: str, task: str, X: np.ndarray, y: np.ndarray, **params: Any) -> Any:
    return make_head(name, task, {**QUICK.get(name, {}), **params}, random_state=0).fit(X, y)


def reference(head: Any, task: str, X: np.ndarray, n_classes: int) -> np.ndarray:
    """What the Keras form must give: probabilities, softmax of scores, or the value."""
    if task == "regress":
        return np.asarray(head.predict(X)).reshape(-1, 1)
    kind, values = class_scores(head, X, n_classes)
    if kind == "score":
        values = np.exp(values - values.max(axis=1, keepdims=True))
        values /= values.sum(axis=1, keepdims=True)
    return values


def keras_outputs(name: str, head: Any, task: str, X: np.ndarray, n_classes: int) -> np.ndarray:
    model = keras_head(name, head, task, n_classes, X.shape[1:]).model
    return np.asarray(model.predict(X.astype(np.float32), verbose=0), dtype=np.float64)


def test_every_head_but_the_rbf_svm_converts() -> None:
    assert {name for name, _ in CONVERTIBLE} == {"logreg", "linear-svm", "ridge", "dense"}
    with pytest.raises(UserError, match="'svm' head cannot be expressed as Keras layers.*"
                                        "logreg, linear-svm, ridge, dense"):
        keras_head("svm", None, "classify", 3, (512,))


@pytest.mark.parametrize(("name", "task"), CONVERTIBLE)
def test_keras_head_equals_the_fitted_head(name: str, task: str, feature_cache: Cache,
                                           price_cache: Cache) -> None:
    cache = price_cache if task == "regress" else feature_cache
    key = "targets" if task == "regress" else "labels"
    train, val = cache.load("train"), cache.load("val")
    head = fitted(name, task, train["features"], train[key])
    expected = reference(head, task, val["features"], 3)
    got = keras_outputs(name, head, task, val["features"], 3)
    if task == "regress":
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)  # prices 20..80
    else:
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert got.argmax(axis=1).tolist() == head.predict(val["features"]).tolist()


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


def test_keras_head_saves_and_loads_in_safe_mode(feature_cache: Cache, tmp_path) -> None:
    import keras

    train = feature_cache.load("train")
    head = fitted("dense", "classify", train["features"], train["labels"])
    model = keras_head("dense", head, "classify", 3, (512,)).model
    model.save(tmp_path / "head.keras")
    again = keras.saving.load_model(tmp_path / "head.keras", safe_mode=True)
    X = feature_cache.load("test")["features"]
    np.testing.assert_array_equal(again.predict(X, verbose=0), model.predict(X, verbose=0))
