"""Per-row predictions that evaluate stores: used only while they belong to the model and
the cache as they are now, and never able to run code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import bottleneck
from bottleneck.cache import Cache, open_cache
from bottleneck.models.model_dir import load_model, write_checksums
from bottleneck.models.predictions import (
    PREDICTIONS_DIR,
    compute_predictions,
    load_predictions,
    predictions_for,
    row_metrics,
)

pytest_plugins = ["tests.heads_fixtures"]


@pytest.fixture(scope="module")
def evaluated(feature_cache: Cache, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("predictions") / "logreg"
    bottleneck.fit(feature_cache, "logreg", out)
    bottleneck.evaluate(out, split="test")
    return out


def test_evaluate_stores_every_row_and_its_scores(evaluated: Path, feature_cache: Cache
                                                  ) -> None:
    files = list((evaluated / PREDICTIONS_DIR).glob("test-*.npz"))
    assert len(files) == 1
    stored = load_predictions(load_model(evaluated), feature_cache, "test")
    assert stored is not None and stored.kind == "probability"
    test = feature_cache.load("test", with_paths=True)
    assert stored.paths.tolist() == test["paths"].tolist()
    assert stored.truth.tolist() == test["labels"].tolist()
    np.testing.assert_allclose(stored.scores.sum(axis=1), 1, atol=1e-6)
    again = row_metrics("classify", stored.truth, stored.predicted, stored.scores,
                        stored.kind, feature_cache.classes)
    assert again == stored.metrics == bottleneck.evaluate(evaluated, split="test").metrics
    json.loads((evaluated / "checksums.json").read_text())  # still the model's own file
    assert PREDICTIONS_DIR not in (evaluated / "checksums.json").read_text()


def test_predictions_of_another_model_state_or_cache_are_not_used(
        evaluated: Path, feature_cache: Cache, tmp_path: Path) -> None:
    changed = tmp_path / "changed"
    shutil.copytree(evaluated, changed)
    metrics = json.loads((changed / "metrics.json").read_text())
    metrics["note"] = "edited"
    (changed / "metrics.json").write_text(json.dumps(metrics))
    write_checksums(changed)  # a consistent directory, but not the one that predicted
    assert load_predictions(load_model(changed), feature_cache, "test") is None
    _, computed = predictions_for(load_model(changed), feature_cache, "test")
    assert computed and load_predictions(load_model(changed), feature_cache, "test")

    copy = tmp_path / "cache"
    shutil.copytree(feature_cache.root, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["source"]["note"] = "another manifest"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert load_predictions(load_model(evaluated), open_cache(copy), "test") is None


def test_a_tampered_or_pickled_file_is_ignored(evaluated: Path, feature_cache: Cache,
                                               tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    shutil.copytree(evaluated, model_dir)
    path = next((model_dir / PREDICTIONS_DIR).glob("test-*.npz"))
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["truth"] = arrays["truth"][:-1]
    np.savez(path, **arrays)
    model = load_model(model_dir)
    assert load_predictions(model, feature_cache, "test") is None
    marker = tmp_path / "ran"
    arrays = {"paths": np.array([object()] * 2, dtype=object), "meta": np.array(str(marker))}
    np.savez(path, **arrays)  # an object array needs pickle: np.load refuses it
    assert load_predictions(model, feature_cache, "test") is None
    fresh = compute_predictions(model, feature_cache, "test")
    assert fresh.metrics == bottleneck.evaluate(evaluated, split="test").metrics


def test_log_loss_is_scikit_learns_without_copying_every_score() -> None:
    """scikit-learn's log_loss made several N × classes copies (10 GB for 180,000 rows of
    1,000 classes); ours reads each row's true class and gives their value, rows that do
    not sum to 1 and a zero probability included."""
    from sklearn.metrics import log_loss as theirs

    from bottleneck.models.metrics import log_loss

    rng = np.random.default_rng(0)
    proba = rng.random((500, 7)).astype(np.float32)
    truth = rng.integers(0, 7, 500)
    proba[0, truth[0]] = 0.0  # clipped, as theirs
    scaled = proba.astype(np.float64) / proba.sum(axis=1, dtype=np.float64, keepdims=True)
    assert log_loss(truth, proba) == pytest.approx(theirs(truth, scaled, labels=range(7)),
                                                   rel=1e-12)
