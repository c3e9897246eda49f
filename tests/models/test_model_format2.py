"""Model format 2: ``head.skops`` held the bare fitted pipeline (``spatial → scale → model``,
a HeadPipeline) rather than the head estimator. Such directories still load, as the head they
were, and answer exactly as their pipeline does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LogisticRegression, RidgeClassifier, RidgeCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR, LinearSVC

import bottleneck
from bottleneck.cache import Cache
from bottleneck.cli import main
from bottleneck.errors import UserError
from bottleneck.heads import HEADS, class_scores
from bottleneck.heads.sklearn_heads import SKLEARN_FORMAT, SpatialPool
from bottleneck.heads.sklearn_legacy import HeadPipeline
from bottleneck.models.model_dir import load_model, write_checksums

pytest_plugins = ["tests.heads_fixtures"]

RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
# What each head's builder returned in format 2 (the final step of its pipeline).
OLD_MODELS = {
    ("logreg", "classify"): lambda: LogisticRegression(C=0.5, max_iter=2000),
    ("linear-svm", "classify"): lambda: LinearSVC(C=0.01, dual=True, max_iter=5000,
                                                  random_state=0),
    ("svm", "classify"): lambda: CalibratedClassifierCV(SVC(random_state=0), method="sigmoid",
                                                        ensemble=False, cv=3),
    ("svm", "regress"): lambda: TransformedTargetRegressor(SVR(), transformer=StandardScaler()),
    ("ridge", "classify"): lambda: RidgeClassifier(random_state=0),
    ("ridge", "regress"): lambda: TransformedTargetRegressor(RidgeCV(alphas=RIDGE_ALPHAS),
                                                             transformer=StandardScaler()),
}


def old_pipeline(name: str, task: str, cache: Cache, spatial: str = "avg") -> HeadPipeline:
    """A head as format 2 saved it, fitted on ``cache``'s train split."""
    train = cache.load("train")
    y = train["targets"] if task == "regress" else train["labels"]
    pipeline = HeadPipeline([("spatial", SpatialPool(spatial)), ("scale", StandardScaler()),
                             ("model", OLD_MODELS[name, task]())])
    return pipeline.fit(train["features"], y)


def write_old_skops(pipeline: Pipeline, directory: Path) -> None:
    import skops.io

    directory.mkdir(exist_ok=True)
    skops.io.dump(pipeline, directory / "head.skops")


def test_every_scikit_learn_head_had_a_format_2_shape() -> None:
    newer = ("dense", "linear")  # not scikit-learn pipelines / registered after format 3
    assert {key for key in OLD_MODELS} == {(name, task) for name, spec in HEADS.items()
                                           if name not in newer for task in spec.tasks}


@pytest.mark.parametrize(("name", "task"), list(OLD_MODELS))
def test_a_format_2_pipeline_loads_as_its_head(name: str, task: str, feature_cache: Cache,
                                               price_cache: Cache, tmp_path: Path) -> None:
    cache = price_cache if task == "regress" else feature_cache
    pipeline = old_pipeline(name, task, cache)
    write_old_skops(pipeline, tmp_path)
    head = SKLEARN_FORMAT.load(tmp_path)
    assert type(head) is type(HEADS[name].builder(task)) and head.pipeline_ is not None
    X = cache.load("val")["features"]
    np.testing.assert_array_equal(head.predict(X), pipeline.predict(X))
    if task == "classify":
        np.testing.assert_array_equal(head.classes_, pipeline.classes_)
        kind, scores = class_scores(head, X, 3)
        want = pipeline.predict_proba(X) if kind == "probability" \
            else pipeline.decision_function(X)
        np.testing.assert_allclose(scores, want)
    assert head.n_features_in_ == X.shape[1]
    if name == "logreg":
        assert head.get_params()["C"] == 0.5


def test_a_format_2_model_dir_predicts_evaluates_and_keeps_its_params(
    feature_cache: Cache, tmp_path: Path
) -> None:
    model_dir = tmp_path / "old"
    bottleneck.fit(feature_cache, "logreg", model_dir, params={"C": 0.5, "spatial": "max"})
    pipeline = old_pipeline("logreg", "classify", feature_cache, spatial="max")
    write_old_skops(pipeline, model_dir)
    info = json.loads((model_dir / "head.json").read_text())
    info.update(format_version=2, estimator="LogisticRegression")
    (model_dir / "head.json").write_text(json.dumps(info))
    write_checksums(model_dir)  # an intact format-2 directory
    model = load_model(model_dir)
    assert model.head.get_params() == {"C": 0.5, "class_weight": None, "max_iter": 2000,
                                       "spatial": "max"}
    X = feature_cache.load("test")["features"]
    np.testing.assert_array_equal(model.head.predict(X), pipeline.predict(X))
    result = CliRunner().invoke(main, ["evaluate", str(model_dir), "--json"])
    assert result.exit_code == 0, result.output
    accuracy = json.loads(result.stdout)["metrics"]["accuracy"]
    assert accuracy == pytest.approx((pipeline.predict(X) ==
                                      feature_cache.load("test")["labels"]).mean())


@pytest.mark.parametrize(("held", "message"), [
    (lambda: Pipeline([("pool", SpatialPool()), ("model", LogisticRegression())]),
     "pipeline of steps \\['pool', 'model'\\] that is no head of this version"),
    (lambda: StandardScaler(), "holds a StandardScaler, not a head"),
])
def test_a_skops_file_holding_no_head_is_a_one_line_refusal(
    feature_cache: Cache, tmp_path: Path, held: Any, message: str
) -> None:
    model_dir = tmp_path / "m"
    bottleneck.fit(feature_cache, "logreg", model_dir)
    train = feature_cache.load("train")
    write_old_skops(held().fit(train["features"], train["labels"]), model_dir)
    write_checksums(model_dir)
    with pytest.raises(UserError, match=message) as error:
        load_model(model_dir)
    assert "\n" not in error.value.message


def test_skops_imported_fast_still_trusts_scikit_learn_for_its_own_users() -> None:
    """Saving a head imports skops without its ~2 s listing of every estimator; a user's own
    ``skops.io`` call in the same process still trusts every public estimator by default."""
    import subprocess
    import sys

    script = """
import sys
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from bottleneck.heads.skops_import import skops_io as _skops_io
skops_io = _skops_io()
assert "sklearn.gaussian_process" not in sys.modules, "the import listed every estimator"
model = make_pipeline(StandardScaler(), LogisticRegression()).fit([[0.0], [1.0]], [0, 1])
assert skops_io.get_untrusted_types(data=skops_io.dumps(model)) == []
loaded = skops_io.loads(skops_io.dumps(model))
assert loaded.predict([[1.0]]).tolist() == [1]
import skops.io._general as general
assert "sklearn.ensemble._forest.RandomForestClassifier" in general.SKLEARN_ESTIMATOR_TYPE_NAMES
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
