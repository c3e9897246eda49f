"""The streaming linear probe (``linear``): multinomial logistic regression to classify, ridge
to regress, fitted by passes over the rows, so memory is bounded by a chunk, not the cache.

Why a head of its own rather than a mode of ``logreg``: what a head can do (it streams) lives
on its registry entry, and ``logreg`` is scikit-learn's ``LogisticRegression`` in a pipeline,
saved as such; this one is its own solver with its own fitted state.

Classifying: one pass for the standardisation (mean, deviation) and class counts, then
full-batch L-BFGS (scipy's L-BFGS-B, from zero, deterministic) where each evaluation of the
loss and its gradient is one streamed pass in float32. The objective is scikit-learn's
``LogisticRegression(C=C)`` on standardised features (binomial for two classes), so the
optimum is theirs. Regressing: ridge on standardised features and targets from streamed normal
equations (``XᵀX`` in float64, ``d × d``), ``alpha`` chosen among ``alphas`` by exact
leave-one-out error as ``RidgeCV`` does: three passes.

Input is arrays ``(X, y)`` (read a chunk at a time, never copied whole) or a batched stream of
``(features, labels or targets)`` (:mod:`bottleneck.heads.streams`), whose labels are indices
into ``classes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_regressor
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from bottleneck.heads import linear_passes as passes
from bottleneck.heads.registry import SPATIAL_MODES, InvalidParameterError, register_head
from bottleneck.heads.sklearn_base import FLOATS, check_feature_shape, pool
from bottleneck.heads.sklearn_heads import RIDGE_ALPHAS
from bottleneck.heads.sklearn_io import skops_format
from bottleneck.heads.streams import feature_shape, is_dataset, iterate

# L-BFGS iterations on the in-memory sample: they read nothing, so they are not max_iter's;
# but each computes what a pass computes on the sample's rows, so together they may cost at
# most SAMPLE_SHARE of max_iter passes (1000 classes: a sample iteration is seconds)
SAMPLE_MAX_ITER = 1000
SAMPLE_SHARE = 0.5


def sample_iterations(max_iter: int, rows: int, held: int) -> int:
    """The warm start's iterations on ``held`` of ``rows`` rows: at most ``SAMPLE_MAX_ITER``,
    and together at most ``SAMPLE_SHARE`` of ``max_iter`` passes over all the rows."""
    return int(min(SAMPLE_MAX_ITER, max(1, SAMPLE_SHARE * max_iter * rows // held)))


class LinearProbe(BaseEstimator):
    """What both tasks share: checking input, reading it in chunks, the standardisation."""

    spatial: str
    batch_size: int

    def _check_params(self) -> None:
        if self.spatial not in SPATIAL_MODES:
            raise InvalidParameterError(f"spatial must be one of {SPATIAL_MODES}, "
                                        f"got {self.spatial!r}")
        if not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise InvalidParameterError(f"batch_size must be a positive integer, "
                                        f"got {self.batch_size!r}")

    def _training_chunks(self, X: Any, y: Any) -> passes.Chunks:
        """Check the input; the chunks of one pass as float32 pooled rows (no copy of X)."""
        self._check_params()
        if is_dataset(X):
            if y is not None:
                raise ValueError("a stream carries its own targets; pass y=None with it")
            self.feature_shape_ = feature_shape(X)
            self.n_features_in_ = int(self.feature_shape_[0])
            stream = X
            return lambda: ((self._pooled(x), np.asarray(t)) for x, t, *_ in iterate(stream))
        X, y = validate_data(self, X, y, allow_nd=True, dtype=FLOATS,
                             y_numeric=is_regressor(self))
        check_feature_shape(X)
        self.feature_shape_ = tuple(int(s) for s in X.shape[1:])
        return lambda: ((self._pooled(X[i:i + self.batch_size]), y[i:i + self.batch_size])
                        for i in range(0, len(X), self.batch_size))

    def _pooled(self, x: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        return pool(np.asarray(x).astype(dtype, copy=False), self.spatial)

    def _standardize(self, found: passes.Moments) -> None:
        self.mean_, self.scale_ = found.mean, found.scale
        self.n_rows_ = found.n

    def _scaled_rows(self, X: Any) -> Iterator[np.ndarray]:
        """Rows to predict on, checked, standardised in float64 a chunk at a time (a row's
        result does not depend on the rows beside it)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, allow_nd=True, dtype=FLOATS)
        if X.shape[1:] != self.feature_shape_:
            raise ValueError(f"X has rows of shape {X.shape[1:]}, but {type(self).__name__} "
                             f"was fitted on rows of shape {self.feature_shape_}")
        for start in range(0, len(X), self.batch_size):
            yield (self._pooled(X[start:start + self.batch_size], np.float64) - self.mean_) \
                / self.scale_


class LinearClassifier(ClassifierMixin, LinearProbe):
    """Streaming multinomial logistic regression (L2, L-BFGS) on standardised features.

    ``C``: inverse regularisation strength (scikit-learn's); ``class_weight``: None,
    ``balanced`` or ``{label: weight}``; ``max_iter``: L-BFGS iterations over all the rows
    (about one pass each); ``tol``: the projected gradient at which it stops; ``batch_size``: rows
    per chunk read; ``warm_rows``: a uniform sample of this many rows, drawn during the
    standardisation pass and held in memory, is solved first (its passes cost no reading) and
    starts the streamed L-BFGS near the optimum, so it needs few passes (its iterations cost
    at most half of ``max_iter`` passes; 0: start from zero; a training set no bigger than the
    sample is solved in memory alone); ``spatial``: avg,
    max or flatten for feature maps; ``verbose``: a line per iteration. Fitted: ``coef_``
    (classes × features, or 1 × features for two), ``intercept_``, ``classes_``, ``mean_``,
    ``scale_``, ``n_iter_``, ``n_passes_`` (over all the rows, the standardisation's included).
    """

    def __init__(self, C: float = 1.0, class_weight: Any = None, max_iter: int = 100,
                 tol: float = 1e-4, warm_rows: int = 32768, batch_size: int = 4096,
                 spatial: str = "avg", verbose: int = 0) -> None:
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.tol = tol
        self.warm_rows = warm_rows
        self.batch_size = batch_size
        self.spatial = spatial
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None, *, classes: Any = None) -> LinearClassifier:
        """Fit on arrays ``(X, y)`` or a stream ``X`` of ``(features, label index)``."""
        if not (isinstance(self.C, (int, float, np.number)) and self.C > 0):
            raise InvalidParameterError(f"C must be a positive number, got {self.C!r}")
        for name in ("max_iter", "warm_rows"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 0:
                raise InvalidParameterError(f"{name} must be a non-negative integer, "
                                            f"got {value!r}")
        streamed = is_dataset(X)
        chunks = self._training_chunks(X, y)
        if not streamed:
            check_classification_targets(y)
        sample = passes.Sample(int(self.warm_rows))
        found = passes.moments(chunks, regress=False, sample=sample)
        self._standardize(found)
        seen = found.labels
        self.classes_ = np.unique(np.asarray(classes)) if classes is not None else \
            (seen if not streamed else np.arange(int(seen.max()) + 1))
        if not np.isin(seen, self.classes_).all():
            raise ValueError("y holds labels that are not in classes")
        if len(self.classes_) < 2:
            raise ValueError("The training data holds only one class; a classifier needs at "
                             "least two classes.")
        counts = np.zeros(len(self.classes_))
        counts[np.searchsorted(self.classes_, seen)] = found.counts
        weights = self._class_weights(counts)
        index = (lambda t: np.searchsorted(self.classes_, t)) if not streamed else \
            (lambda t: t.astype(np.int64))
        scaled = passes.standardized(chunks, found.mean, self.scale_)
        labelled = lambda: ((x, index(t)) for x, t in scaled())  # noqa: E731
        d, m = len(found.mean), 1 if len(self.classes_) == 2 else len(self.classes_)
        self.n_passes_, self.n_iter_ = 1, np.array([0])
        start = np.zeros(d * m + m)
        sample_x, sample_y = sample.rows()
        if len(sample_y):  # solved in memory first: its passes read nothing
            sample_x -= found.mean.astype(np.float32)
            sample_x *= (1.0 / self.scale_).astype(np.float32)
            rows = (sample_x, index(sample_y))
            result = self._minimize(lambda theta: passes.logistic_pass(
                lambda: iter([rows]), theta, d, m, weights, float(self.C), len(rows[1]),
                found.n), start, "sample",
                int(self.max_iter) if sample.held == found.n else
                sample_iterations(int(self.max_iter), found.n, sample.held))
            start = result.x
            del rows, sample_x, sample_y
        if sample.held < found.n:
            def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
                self.n_passes_ += 1
                return passes.logistic_pass(labelled, theta, d, m, weights, float(self.C),
                                            found.n)

            result = self._minimize(objective, start, "pass", int(self.max_iter))
            self.n_iter_ = np.array([int(result.nit)])
        else:  # the sample held every row: its optimum is the optimum
            self.n_iter_ = np.array([int(result.nit)])
        self.coef_ = result.x[:d * m].reshape(d, m).T.copy()
        self.intercept_ = result.x[d * m:].copy()
        self.loss_ = float(result.fun)
        return self

    def _minimize(self, objective: Any, start: np.ndarray, what: str, max_iter: int) -> Any:
        """scipy's L-BFGS-B from ``start``: at most ``max_iter`` iterations."""
        iteration = [0]

        def report(intermediate_result: Any) -> None:  # scipy passes the result by this name
            iteration[0] += 1
            if self.verbose:
                print(f"linear: {what} iteration {iteration[0]}/{max_iter}, loss "
                      f"{intermediate_result.fun:.6f}", flush=True)

        return minimize(objective, start, jac=True, method="L-BFGS-B", callback=report,
                        options={"maxiter": max_iter, "maxfun": max_iter + 20,
                                 "gtol": self.tol, "ftol": 1e-10})

    def _class_weights(self, counts: np.ndarray) -> np.ndarray:
        if self.class_weight is None:
            return np.ones(len(counts))
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            present = counts > 0
            weights = np.ones(len(counts))
            weights[present] = counts.sum() / (present.sum() * counts[present])
            return weights
        if isinstance(self.class_weight, dict):
            return np.array([float(self.class_weight.get(c, 1.0)) for c in self.classes_])
        raise InvalidParameterError("class_weight must be None, 'balanced' or a dict, got "
                                    f"{self.class_weight!r}")

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores: one column for two classes (positive: the second), else one per class."""
        scores = np.concatenate([x @ self.coef_.T + self.intercept_
                                 for x in self._scaled_rows(X)] or [np.zeros((0, 1))])
        return scores[:, 0] if len(self.classes_) == 2 else scores

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            positive = 1 / (1 + np.exp(-scores))
            return np.column_stack([1 - positive, positive])
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log class probabilities, columns in the order of ``classes_``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row."""
        scores = self.decision_function(X)
        picked = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[picked]


class LinearRegressor(RegressorMixin, LinearProbe):
    """Streaming ridge on standardised features and targets, predicting in the target's units.

    ``alphas``: the candidate regularisation strengths, the best by exact leave-one-out error
    (as ``RidgeCV``); ``batch_size``; ``spatial``. Fitted: ``coef_``, ``intercept_``,
    ``alpha_``, ``mean_``, ``scale_``.
    """

    def __init__(self, alphas: Any = RIDGE_ALPHAS, batch_size: int = 4096,
                 spatial: str = "avg") -> None:
        self.alphas = alphas
        self.batch_size = batch_size
        self.spatial = spatial

    def fit(self, X: Any, y: Any = None) -> LinearRegressor:
        """Fit on arrays ``(X, y)`` or a stream ``X`` of ``(features, target)``."""
        alphas = np.atleast_1d(np.asarray(self.alphas, dtype=np.float64))
        if not len(alphas) or not (alphas > 0).all():
            raise InvalidParameterError(f"alphas must be positive numbers, got {self.alphas!r}")
        chunks = self._training_chunks(X, y)
        found = passes.moments(chunks, regress=True)
        self._standardize(found)
        y_mean, y_var = found.labels
        y_scale = float(np.sqrt(y_var)) or 1.0
        scaled = passes.standardized(chunks, found.mean, self.scale_)
        centred = lambda: ((x, (np.asarray(t, np.float64) - y_mean) / y_scale)  # noqa: E731
                           for x, t in scaled())
        gram, moment = passes.gram_pass(centred, len(found.mean))
        values, vectors = np.linalg.eigh(gram)
        values = np.maximum(values, 0.0)
        projected = vectors.T @ moment
        best = 0
        if len(alphas) > 1:
            errors = passes.loo_errors(centred, values, vectors, projected, alphas, found.n)
            best = int(np.argmin(errors))
        self.alpha_ = float(alphas[best])
        self.coef_ = vectors @ (projected / (values + self.alpha_)) * y_scale
        self.intercept_ = float(y_mean)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted values in the target's own units."""
        return np.concatenate([x @ self.coef_ + self.intercept_ for x in self._scaled_rows(X)]
                              or [np.zeros(0)])


LINEAR_FORMAT = skops_format(LinearClassifier, LinearRegressor)


@register_head("linear", format=LINEAR_FORMAT, streams=True, fit_bytes=0, shuffled=False)
def linear(task: str) -> LinearProbe:
    """Streaming linear probe: logistic regression (L-BFGS) or ridge; streams from shards."""
    return LinearRegressor() if task == "regress" else LinearClassifier()
