"""The streaming linear probe: scikit-learn's optimum from streamed passes, on arrays or a
stream, through fit / bench / evaluate / predict on a cache too big for the memory allowed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import bottleneck
from bottleneck.cache.synthetic import gaussian_shards, write_cache
from bottleneck.errors import UserError
from bottleneck.heads import make_head
from bottleneck.heads.streams import array_batches
from bottleneck.models.model_dir import load_model


def blobs(rows: int, dims: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    X = rng.normal(0, 0.35, (classes, dims))[y] + rng.normal(0, 1, (rows, dims)) + 3
    return X.astype(np.float32), y


@pytest.mark.parametrize("classes", [2, 10])
def test_same_accuracy_as_scikit_learn_lbfgs_with_c_chosen_on_val(classes: int) -> None:
    X, y = blobs(3000, 48, classes)
    (Xt, yt), (Xv, yv), (Xe, ye) = (X[:2000], y[:2000]), (X[2000:2500], y[2000:2500]), \
        (X[2500:], y[2500:])
    scaler = StandardScaler().fit(Xt)
    grid = (0.001, 0.01, 0.1, 1.0)
    ours = [make_head("linear", "classify", {"C": C}).fit(Xt, yt) for C in grid]
    theirs = [LogisticRegression(C=C, max_iter=2000).fit(scaler.transform(Xt), yt)
              for C in grid]
    best_ours = max(ours, key=lambda head: (head.predict(Xv) == yv).mean())
    best_theirs = max(theirs, key=lambda m: (m.predict(scaler.transform(Xv)) == yv).mean())
    ours_test = (best_ours.predict(Xe) == ye).mean()
    theirs_test = (best_theirs.predict(scaler.transform(Xe)) == ye).mean()
    assert abs(ours_test - theirs_test) <= 0.003
    for head, model in zip(ours, theirs, strict=True):  # the same optimum, C by C
        assert head.coef_.shape == model.coef_.shape
        np.testing.assert_allclose(head.coef_, model.coef_, atol=0.03 * np.abs(model.coef_).max())
        np.testing.assert_allclose(head.predict_proba(Xe),
                                   model.predict_proba(scaler.transform(Xe)), atol=0.02)


@pytest.mark.parametrize("warm_rows", [0, 100, 32768])
def test_a_stream_gives_what_the_arrays_give(warm_rows: int) -> None:
    # 0: streamed L-BFGS from zero; 100: from a sample's optimum; 32768: the sample is all
    X, y = blobs(700, 12, 3, seed=1)
    arrays = make_head("linear", "classify", {"batch_size": 64, "tol": 1e-6}).fit(X, y)
    stream = make_head("linear", "classify", {"warm_rows": warm_rows, "tol": 1e-6}).fit(
        array_batches(X, y, 50, shuffle=True, seed=0), classes=np.arange(3))
    np.testing.assert_allclose(stream.coef_, arrays.coef_, rtol=1e-3, atol=2e-3)
    np.testing.assert_array_equal(stream.predict(X), arrays.predict(X))
    assert (stream.n_passes_ > 1) == (warm_rows < 700)  # passes over the rows beyond the first
    if warm_rows == 100:  # started near the optimum: fewer passes than from zero
        cold = make_head("linear", "classify", {"warm_rows": 0, "tol": 1e-6}).fit(X, y)
        assert stream.n_passes_ < cold.n_passes_


def test_verbose_prints_a_line_per_iteration(capsys: pytest.CaptureFixture[str]) -> None:
    X, y = blobs(300, 6, 3)
    head = make_head("linear", "classify", {"verbose": 1, "warm_rows": 50}).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    # a part: as many iterations as half of max_iter passes cost (100 × 300 / 50 / 2)
    assert lines[0].startswith("linear: sample iteration 1/300, loss ")
    make_head("linear", "classify", {"verbose": 1, "warm_rows": 50, "max_iter": 4}).fit(X, y)
    assert capsys.readouterr().out.startswith("linear: sample iteration 1/12, loss ")
    make_head("linear", "classify", {"verbose": 1}).fit(X, y)  # all of it: max_iter
    assert capsys.readouterr().out.startswith("linear: sample iteration 1/100, loss ")
    assert sum(line.startswith("linear: pass iteration") for line in lines) == head.n_iter_[0]


def test_the_sample_is_uniform_bounded_and_repeatable() -> None:
    from bottleneck.heads.linear_passes import Sample

    def draw(seed: int) -> np.ndarray:
        sample = Sample(500, seed)
        for start in range(0, 10_000, 300):
            rows = np.arange(start, min(10_000, start + 300))
            sample.add(rows[:, None].astype(np.float32), rows)
        x, y = sample.rows()
        assert len(y) == 500 and np.array_equal(x[:, 0], y) and len(set(y)) == 500
        return y

    assert np.array_equal(draw(0), draw(0))
    assert abs(np.mean(draw(0)) - 5000) < 500  # not the first rows: spread over all of them


def test_ridge_is_ridgecv_from_streamed_normal_equations() -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(5, 2, (400, 15)).astype(np.float32)
    y = X @ rng.normal(size=15) + rng.normal(0, 4, 400) + 1000
    ours = make_head("linear", "regress").fit(array_batches(X, y, 64, shuffle=False))
    theirs = make_head("ridge", "regress").fit(X, y)
    assert ours.alpha_ == theirs.pipeline_.named_steps["model"].regressor_.alpha_
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-5)


@pytest.fixture(scope="module")
def big_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4200 rows × 64 float16 in 8 classes, in shards of 512 rows."""
    root = tmp_path_factory.mktemp("linear") / "cache"
    return write_cache(root, gaussian_shards(4200, 64, 8, shard_rows=512, spread=0.3),
                       [f"c{i}" for i in range(8)], (64,), dtype="float16")


def test_fit_streams_a_cache_that_does_not_fit_and_scores_as_in_memory(
        big_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = bottleneck.fit(big_cache, "linear", tmp_path / "loaded", params={"C": 0.1})
    assert not loaded.streamed
    monkeypatch.setenv("BOTTLENECK_MEMORY_LIMIT", "200K")  # the train split is 460 KiB
    with pytest.raises(UserError, match="use --head linear"):
        bottleneck.fit(big_cache, "logreg", tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    streamed = bottleneck.fit(big_cache, "linear", tmp_path / "streamed",
                              params={"C": 0.1, "warm_rows": 500})  # then passes over shards
    assert streamed.streamed
    assert abs(streamed.metrics["test"]["accuracy"] - loaded.metrics["test"]["accuracy"]) \
        <= 0.003
    model = load_model(tmp_path / "streamed")  # saved without pickle, loads as itself
    assert type(model.head).__name__ == "LinearClassifier" and model.head.C == 0.1
    assert model.head.n_passes_ > 2  # the streamed L-BFGS read the shards
    evaluation = bottleneck.evaluate(tmp_path / "streamed", big_cache, split="test")
    assert evaluation.metrics["accuracy"] == streamed.metrics["test"]["accuracy"]


def test_bench_streams_it_where_other_heads_are_refused(
        big_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTTLENECK_MEMORY_LIMIT", "200K")
    with pytest.raises(UserError, match=r"heads that stream \(dense, linear\)"):
        bottleneck.bench([big_cache], heads=["logreg"], out=tmp_path / "refused")
    report = bottleneck.bench([big_cache], heads=["linear"], out=tmp_path / "bench",
                              grid={"C": [0.01, 1.0]}, model=False)
    assert [row["head"] for row in report["rows"]] == ["linear", "linear"]
    assert min(row["val_accuracy"] for row in report["rows"]) > 0.5


def test_regression_streams_from_the_shards(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from bottleneck.cache import open_cache
    from bottleneck.cache.targets import attach_targets, synthetic_prices

    classes = [f"c{i}" for i in range(4)]
    cache = open_cache(write_cache(tmp_path / "cache", gaussian_shards(1500, 16, 4, 256, 1.0),
                                   classes, (16,)))
    prices = {name: 10.0 * (i + 1) for i, name in enumerate(classes)}
    attach_targets(cache, synthetic_prices(cache, sigma=1.0, class_prices=prices),
                   {"kind": "synthetic-prices", "class_prices": prices})
    monkeypatch.setenv("BOTTLENECK_MEMORY_LIMIT", "20K")
    result = bottleneck.fit(tmp_path / "cache", "linear", tmp_path / "price")
    assert result.streamed and result.task == "regress"
    assert result.metrics["test"]["r2"] > 0.5
