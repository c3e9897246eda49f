"""Every registered head: fits cached features, follows the scikit-learn estimator API."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from bottleneck.cache import Cache
from bottleneck.cli import main
from bottleneck.errors import UserError
from bottleneck.heads import (
    HEADS,
    InvalidParameterError,
    class_scores,
    full_param_name,
    head_param_names,
    listed_params,
    make_head,
)
from bottleneck.heads.dense import DenseClassifier, DenseRegressor, spatial_layer
from bottleneck.heads.sklearn_heads import SpatialPool
from bottleneck.models.fit import stream_split

pytest_plugins = ["tests.heads_fixtures"]

# Small, quick settings for the Keras head; the scikit-learn heads use their defaults.
FAST = {"dense": {"epochs": 15, "hidden": (64,)}}
# 48 noisy training prices: the dense net needs lighter dropout and more patience.
FAST_REGRESS = {"dense": {"epochs": 40, "hidden": (64,), "dropout": 0.2, "patience": 10}}
MIN_R2 = {"dense": 0.6}  # the linear and kernel heads reach 0.8
HEAD_TASKS = [(name, task) for name, spec in HEADS.items() for task in spec.tasks]


def arrays(cache: Cache, split: str, key: str = "labels") -> tuple[np.ndarray, np.ndarray]:
    data = cache.load(split)
    return data["features"], data[key]


def fit_head(name: str, task: str, cache: Cache, **params: Any) -> Any:
    """A head fitted on train (dense: val for early stopping)."""
    key = "targets" if task == "regress" else "labels"
    quick = (FAST_REGRESS if task == "regress" else FAST).get(name, {})
    head = make_head(name, task, {**quick, **params}, random_state=0)
    X, y = arrays(cache, "train", key)
    if isinstance(head, DenseClassifier | DenseRegressor):
        head.fit(X, y, validation_data=arrays(cache, "val", key))
    else:
        head.fit(X, y)
    return head


def test_registry_lists_the_documented_heads() -> None:
    assert {"logreg", "linear-svm", "svm", "ridge", "dense"} <= set(HEADS)
    assert HEADS["logreg"].tasks == ("classify",)
    assert HEADS["dense"].streams


@pytest.mark.parametrize("name", list(HEADS))
def test_head_classifies_well_above_chance(name: str, feature_cache: Cache) -> None:
    head = fit_head(name, "classify", feature_cache)
    X, y = arrays(feature_cache, "val")
    assert head.score(X, y) >= 0.8  # chance is 1/3
    kind, scores = class_scores(head, X, len(feature_cache.classes))
    assert scores.shape == (len(y), 3)
    assert (np.argmax(scores, axis=1) == head.predict(X)).mean() >= 0.9
    if kind == "probability":
        np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", [n for n, spec in HEADS.items() if "regress" in spec.tasks])
def test_regression_heads_learn_prices(name: str, price_cache: Cache) -> None:
    head = fit_head(name, "regress", price_cache)
    X, y = arrays(price_cache, "val", "targets")
    assert head.score(X, y) > MIN_R2.get(name, 0.8)  # R²; class prices 20/50/80, noise sigma 3
    assert abs(head.predict(X).mean() - y.mean()) < 10  # in price units, not z-scores


@pytest.mark.parametrize(("name", "task"), HEAD_TASKS)
def test_head_is_a_scikit_learn_estimator(name: str, task: str) -> None:
    head = make_head(name, task, {"spatial": "max"})
    params = head.get_params()
    copy = clone(head)
    assert copy is not head and type(copy) is type(head)
    assert copy.get_params().keys() == params.keys()
    assert copy.get_params()[full_param_name(head, "spatial")] == "max"
    assert not [k for k in vars(head) if k.endswith("_") and not k.startswith("_")]


@pytest.mark.parametrize("name", list(HEADS))
def test_grid_search_runs_on_every_head(name: str, feature_cache: Cache) -> None:
    head = make_head(name, "classify", {**FAST.get(name, {}), "epochs": 4}
                     if name == "dense" else {}, random_state=0)
    X, y = arrays(feature_cache, "train")
    search = GridSearchCV(head, {full_param_name(head, "spatial"): ["avg", "max"]}, cv=2)
    search.fit(X, y)
    assert search.best_score_ > 0.5
    assert search.predict(X[:3]).shape == (3,)


def test_wrong_names_and_tasks_are_user_errors() -> None:
    with pytest.raises(UserError, match="cannot regress; for --task regress use one of"):
        make_head("logreg", "regress")
    with pytest.raises(UserError, match="unknown head 'nope'; choose one of: logreg"):
        make_head("nope")
    with pytest.raises(UserError, match="no parameter 'foo'; valid: C,"):
        make_head("logreg", params={"foo": 1})
    with pytest.raises(UserError, match="spatial='mean' is not valid"):
        make_head("dense", params={"spatial": "mean"})
    with pytest.raises(UserError, match="unknown task"):
        make_head("ridge", "cluster")


def test_params_are_the_heads_own_and_reach_the_fitted_pipeline(feature_cache: Cache) -> None:
    svm = make_head("svm", "regress", {"C": 3.0, "spatial": "flatten"})
    assert svm.get_params() == {"C": 3.0, "epsilon": 0.1, "gamma": "scale", "kernel": "rbf",
                                "spatial": "flatten"}
    assert make_head("dense", params={"hidden": (8, 4)}).hidden == (8, 4)
    X, y = arrays(feature_cache, "train")
    head = make_head("svm", "classify", {"C": 2.0, "spatial": "max"}).fit(X, y)
    assert head.pipeline_.named_steps["model"].estimator.C == 2.0
    assert head.pipeline_.named_steps["spatial"].mode == "max"
    assert head.get_params()["C"] == 2.0 and list(head.classes_) == [0, 1, 2]


def test_heads_list_what_a_user_tunes() -> None:
    plumbing = {"verbose", "n_jobs", "copy_X", "warm_start", "tol", "dual", "fit_intercept",
                "intercept_scaling", "cache_size", "shrinking", "solver", "positive"}
    listed = {(name, task): head_param_names(make_head(name, task))
              for name, spec in HEADS.items() for task in spec.tasks}
    assert listed["logreg", "classify"] == ["C", "class_weight", "max_iter", "spatial"]
    assert listed["linear-svm", "classify"] == ["C", "class_weight", "max_iter",
                                                "random_state", "spatial"]
    assert listed["svm", "regress"] == ["C", "epsilon", "gamma", "kernel", "spatial"]
    assert listed["ridge", "regress"] == ["alphas", "spatial"]
    assert not plumbing & {param for params in listed.values() for param in params}
    assert "verbose" in make_head("dense").get_params()  # still accepted, only not listed
    assert listed_params("svm") == "C, gamma, kernel, spatial; classify: class_weight; " \
                                   "regress: epsilon"
    assert listed_params("ridge") == "spatial; classify: alpha, class_weight; regress: alphas"
    lines = CliRunner().invoke(main, ["heads"]).output.splitlines()
    logreg = next(i for i, line in enumerate(lines) if line.startswith("logreg "))
    assert lines[logreg + 1].split() == ["params:", "C=1,", "class_weight=None,",
                                         "max_iter=2000,", "spatial=avg"]  # with defaults
    assert listed_params("svm", defaults=True) == \
        "C=1, gamma=scale, kernel=rbf, spatial=avg; classify: class_weight=None; " \
        "regress: epsilon=0.1"


def test_dense_rejects_bad_values(feature_cache: Cache) -> None:
    X, y = arrays(feature_cache, "train")
    for params in ({"hidden": "wide"}, {"optimizer": "adagrad"}, {"epochs": 0},
                   {"activation": "sparkle"}, {"learning_rate": -1.0}):
        with pytest.raises(InvalidParameterError):
            DenseClassifier(**params).fit(X, y)


def test_spatial_pool_and_keras_layer_agree() -> None:
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(5, 4, 4, 8)).astype(np.float32)
    expected = {"avg": maps.mean(axis=(1, 2)), "max": maps.max(axis=(1, 2)),
                "flatten": maps.reshape(5, -1)}
    for mode, want in expected.items():
        np.testing.assert_allclose(SpatialPool(mode).fit_transform(maps), want, rtol=1e-6)
        np.testing.assert_allclose(np.asarray(spatial_layer(mode, 3)(maps)), want, rtol=1e-5)
    vectors = maps[:, 0, 0, :]
    np.testing.assert_array_equal(SpatialPool("max").fit_transform(vectors), vectors)


@pytest.mark.parametrize(("name", "spatial"), [("logreg", "max"), ("dense", "flatten")])
def test_heads_reduce_feature_maps(name: str, spatial: str, spatial_cache: Cache) -> None:
    assert spatial_cache.feature_shape == (4, 4, 256)
    head = fit_head(name, "classify", spatial_cache, spatial=spatial)
    assert head.score(*arrays(spatial_cache, "val")) >= 0.8


def test_dense_early_stopping_restores_the_best_epoch(feature_cache: Cache) -> None:
    X, y = arrays(feature_cache, "train")
    X_val, y_val = arrays(feature_cache, "val")
    wrong = (y_val + 1) % 3  # validation labels the net can only get worse at
    head = DenseClassifier(epochs=60, patience=3, hidden=(64,), random_state=0)
    head.fit(X, y, validation_data=(X_val, wrong))
    history = head.history_
    assert len(history["loss"]) < 60  # stopped early
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(history)
    assert head.best_epoch_ == int(np.argmin(history["val_loss"])) + 1
    assert head.best_epoch_ < len(history["loss"])
    restored_loss = head.model_.evaluate(X_val, wrong, verbose=0)[0]
    assert restored_loss == pytest.approx(min(history["val_loss"]), rel=1e-4)


def test_dense_trains_from_a_stream(feature_cache: Cache) -> None:
    train = stream_split(feature_cache, "train", "classify", 16, shuffle=True, seed=0)
    val = stream_split(feature_cache, "val", "classify", 16)
    head = DenseClassifier(epochs=15, hidden=(64,), random_state=0)
    head.fit(train, validation_data=val, classes=np.arange(3))
    assert list(head.classes_) == [0, 1, 2]
    assert head.score(*arrays(feature_cache, "val")) >= 0.8
    assert head.predict(val).shape == (feature_cache.split_counts()["val"],)


def test_two_classes_use_one_sigmoid_or_signed_scores(feature_cache: Cache) -> None:
    X, y = arrays(feature_cache, "train")
    keep = y < 2
    dense = DenseClassifier(epochs=10, hidden=(32,), random_state=0).fit(X[keep], y[keep])
    assert dense.model_.output_shape == (None, 1)
    proba = dense.predict_proba(X[keep])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert dense.score(X[keep], y[keep]) >= 0.9
    svm = make_head("linear-svm").fit(X[keep], y[keep])
    kind, scores = class_scores(svm, X[keep], 3)
    assert kind == "score" and np.all(np.isneginf(scores[:, 2]))
    np.testing.assert_allclose(scores[:, 0], -scores[:, 1])


@pytest.mark.parametrize(("start", "step"), [(0.3, 1e-6), (1e-6, 1e-13)])
def test_dense_stops_when_the_loss_only_creeps_down(start: float, step: float) -> None:
    import keras

    from bottleneck.heads.dense_parts import make_callbacks

    head = DenseClassifier(patience=3, epochs=100)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")  # ReduceLROnPlateau reads its rate
    callbacks = make_callbacks(head, "val_loss")
    for callback in callbacks:
        callback.set_model(model)
        callback.on_train_begin()
    loss, stopped = start, None
    for epoch in range(30):
        loss -= step  # "better" every epoch (float32 sees it), by nothing that matters
        for callback in callbacks:
            callback.on_epoch_end(epoch, {"val_loss": loss})
        if model.stop_training:
            stopped = epoch
            break
    assert stopped == 3  # epoch 0 sets the best; 1, 2, 3 fall short of min_delta
    assert head.min_delta == 1e-4
    assert float(model.optimizer.learning_rate) < 1e-3  # the plateau halved the rate too


def test_dense_regressor_logs_mae_in_target_units(price_cache: Cache,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    head = make_head("dense", "regress", {**FAST_REGRESS["dense"], "epochs": 6, "verbose": 1},
                     random_state=0)
    X, y = arrays(price_cache, "train", "targets")
    X_val, y_val = arrays(price_cache, "val", "targets")
    head.fit(X, y, validation_data=(X_val, y_val))
    logged = head.history_["val_mae (target units)"][head.best_epoch_ - 1]  # restored epoch
    assert logged == pytest.approx(np.abs(head.predict(X_val) - y_val).mean(), rel=1e-4)
    assert head.y_std_ > 5  # prices 20/50/80: standardised units would be 5x smaller
    assert "val_mae (target units): " in capfd.readouterr().out


def test_the_names_checked_before_loading_are_the_registered_heads() -> None:
    from bottleneck import heads

    # the families register first; a test may register more heads after them
    assert list(HEADS)[:len(heads.BUILT_IN)] == list(heads.BUILT_IN)
    with pytest.raises(UserError, match="unknown head 'KNN'; choose one of: logreg"):
        heads.check_head_name("KNN")
    heads.check_head_name("LogReg")  # names are not case-sensitive, as the registry's
