"""What every scikit-learn head shares: the spatial reduction and an estimator class whose
parameters are the head's hyperparameters and whose ``fit`` builds a fresh
``spatial → StandardScaler → model`` pipeline as the fitted attribute ``pipeline_``.

scikit-learn's rule is that ``fit`` never changes a constructor parameter; a head that held
a ``Pipeline`` of step objects as its parameters would fit those objects in place. Here the
parameters are plain values (``C``, ``kernel``, ``alpha``, …) and nothing the caller passed is
ever fitted, so ``clone``, grid search and the estimator checks see a well-behaved estimator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    TransformerMixin,
    is_classifier,
    is_regressor,
)
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from bottleneck.heads.registry import SPATIAL_MODES, InvalidParameterError

FLOATS = [np.float32, np.float64]  # kept as they are; anything else becomes float32


def check_feature_shape(X: np.ndarray) -> None:
    """Refuse rows with an empty axis (``N×0×4×8``); ``check_array`` sees only 2-D ones."""
    if 0 in X.shape[1:]:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
                         "of 1 is required.")


def pool(X: np.ndarray, mode: str) -> np.ndarray:
    """``N×H×W×C`` rows reduced to ``N×D`` by ``mode`` (avg, max, flatten); vectors pass."""
    if X.ndim <= 2:
        return X
    if mode == "flatten":
        return X.reshape(len(X), -1)
    axes = tuple(range(1, X.ndim - 1))
    return X.max(axis=axes) if mode == "max" else X.mean(axis=axes)


class SpatialPool(TransformerMixin, BaseEstimator):
    """Reduce ``N×H×W×C`` features (a ``--pooling none`` cache) to ``N×D`` rows.

    ``mode``: ``avg`` or ``max`` over every axis between the first and the last, or
    ``flatten``. Rows that are already vectors pass through unchanged. The Keras dense head
    applies the same reduction as its first layer (see :func:`spatial_layer` in ``dense``).
    ``fit`` checks the input (finite, dense, at least one row and feature) and records its
    shape: ``n_features_in_`` (scikit-learn's count, ``X.shape[1]``) and ``feature_shape_``.
    float64 and float32 are kept; anything else becomes float32.
    """

    def __init__(self, mode: str = "avg") -> None:
        self.mode = mode

    def fit(self, X: Any, y: Any = None) -> SpatialPool:
        if self.mode not in SPATIAL_MODES:
            raise InvalidParameterError(
                f"spatial mode must be one of {SPATIAL_MODES}, got {self.mode!r}")
        X = validate_data(self, X, allow_nd=True, dtype=FLOATS)
        check_feature_shape(X)
        self.feature_shape_ = X.shape[1:]
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, allow_nd=True, dtype=FLOATS)
        if X.shape[1:] != self.feature_shape_:
            raise ValueError(f"X has rows of shape {X.shape[1:]}, but SpatialPool was fitted "
                             f"on rows of shape {self.feature_shape_}")
        return pool(X, self.mode)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def standardized_target(regressor: BaseEstimator) -> TransformedTargetRegressor:
    """Fit on standardised targets, predict in the target's own units."""
    return TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler())


def _offered(method: str) -> Callable[[Any], Any]:
    """``available_if``: the method exists on heads whose ``_methods`` name it."""
    return available_if(lambda head: method in head._methods)


class PipelineHead(BaseEstimator):
    """Base of the scikit-learn heads: subclasses set their hyperparameters in ``__init__``
    (always including ``spatial``) and build the final step from them in :meth:`_model`.

    Fitted attributes: ``pipeline_`` (``spatial → scale → model``, fitted), ``n_features_in_``,
    for classifiers ``classes_``, for iterative solvers ``n_iter_``.
    """

    spatial: str
    _methods: ClassVar[frozenset[str]] = frozenset()

    def _model(self) -> BaseEstimator:
        """A fresh, unfitted final step built from the hyperparameters."""
        raise NotImplementedError

    def _final_step(self) -> BaseEstimator:
        return self._model()

    def _pipeline(self) -> Pipeline:
        return Pipeline([("spatial", SpatialPool(self.spatial)), ("scale", StandardScaler()),
                         ("model", self._final_step())])

    def fit(self, X: Any, y: Any) -> PipelineHead:
        """Check ``(X, y)`` the scikit-learn way, then fit a new pipeline on them."""
        X, y = validate_data(self, X, y, allow_nd=True, dtype=FLOATS,
                             y_numeric=is_regressor(self))
        check_feature_shape(X)
        if is_classifier(self):
            check_classification_targets(y)
        self._adopt(self._pipeline().fit(X, y, **self._fit_params(y)))
        return self

    def _fit_params(self, y: np.ndarray) -> dict[str, Any]:
        """Extra arguments of the pipeline's ``fit`` (``model__sample_weight=…``)."""
        return {}

    def _adopt(self, pipeline: Pipeline) -> None:
        """Set the fitted attributes that mirror a fitted ``pipeline``'s."""
        self.pipeline_ = pipeline
        self.n_features_in_ = int(pipeline.n_features_in_)
        if is_classifier(self):
            self.classes_ = pipeline.classes_
        model = pipeline.named_steps["model"]
        if hasattr(model, "n_iter_"):  # solvers with a max_iter: the iterations they ran
            self.n_iter_ = model.n_iter_

    def _rows(self, X: Any) -> Any:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, allow_nd=True, dtype=FLOATS)

    def predict(self, X: Any) -> np.ndarray:
        """Class labels, or values in the target's own units."""
        X = self._rows(X)  # first: it checks the head is fitted
        return self.pipeline_.predict(X)


class PipelineClassifier(ClassifierMixin, PipelineHead):
    """A classifier head: ``predict_proba`` / ``decision_function`` where its model has them
    (``_methods``), so ``hasattr`` answers what the head can give."""

    @_offered("predict_proba")
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        X = self._rows(X)  # first: it checks the head is fitted
        return self.pipeline_.predict_proba(X)

    @_offered("predict_log_proba")
    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log class probabilities, columns in the order of ``classes_``."""
        X = self._rows(X)  # first: it checks the head is fitted
        return self.pipeline_.predict_log_proba(X)

    @_offered("decision_function")
    def decision_function(self, X: Any) -> np.ndarray:
        """Decision scores (one column for two classes, else one per class)."""
        X = self._rows(X)  # first: it checks the head is fitted
        return self.pipeline_.decision_function(X)


class PipelineRegressor(RegressorMixin, PipelineHead):
    """A regressor head: its model fits standardised targets and predicts in their units."""

    def _final_step(self) -> BaseEstimator:
        return standardized_target(self._model())
