"""scikit-learn heads: ``spatial → StandardScaler → model`` pipelines on in-memory arrays.

They are saved with skops (no pickle, see ``sklearn_io``) and loaded only if the file holds
nothing but the types in :data:`SKLEARN_FORMAT`'s allow-list: the classes these builders use.
A new head built of other classes passes them to its own ``skops_format(...)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, is_classifier
from sklearn.calibration import (
    CalibratedClassifierCV,
    _CalibratedClassifier,
    _SigmoidCalibration,
)
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LogisticRegression, RidgeClassifier, RidgeCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelBinarizer, StandardScaler
from sklearn.svm import SVC, SVR, LinearSVC
from sklearn.utils import column_or_1d
from sklearn.utils.validation import check_is_fitted, validate_data

from bottleneck.heads.registry import SPATIAL_MODES, InvalidParameterError, register_head
from bottleneck.heads.sklearn_io import skops_format

RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


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
        X = validate_data(self, X, allow_nd=True, dtype=[np.float32, np.float64])
        check_feature_shape(X)
        self.feature_shape_ = X.shape[1:]
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, allow_nd=True, dtype=[np.float32, np.float64])
        if X.shape[1:] != self.feature_shape_:
            raise ValueError(f"X has rows of shape {X.shape[1:]}, but SpatialPool was fitted "
                             f"on rows of shape {self.feature_shape_}")
        if X.ndim <= 2:
            return X
        if self.mode == "flatten":
            return X.reshape(len(X), -1)
        axes = tuple(range(1, X.ndim - 1))
        return X.max(axis=axes) if self.mode == "max" else X.mean(axis=axes)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


def check_feature_shape(X: np.ndarray) -> None:
    """Refuse rows with an empty axis (``N×0×4×8``); ``check_array`` sees only 2-D ones."""
    if 0 in X.shape[1:]:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
                         "of 1 is required.")


class HeadPipeline(Pipeline):
    """A :class:`~sklearn.pipeline.Pipeline` that takes a classifier's column-vector ``y``.

    scikit-learn's convention: a ``(n, 1)`` target is raveled with a DataConversionWarning
    (CalibratedClassifierCV would fail on it). Everything else is Pipeline's own.
    """

    def fit(self, X: Any, y: Any = None, **params: Any) -> HeadPipeline:
        if y is not None and is_classifier(self) and np.shape(np.asarray(y))[1:] == (1,):
            y = column_or_1d(y, warn=True)
        return super().fit(X, y, **params)


def sklearn_pipeline(model: BaseEstimator, standardize: bool = True) -> HeadPipeline:
    """``spatial → scale → model``: the shape every scikit-learn head shares."""
    return HeadPipeline([
        ("spatial", SpatialPool()),
        ("scale", StandardScaler() if standardize else "passthrough"),
        ("model", model),
    ])


def standardized_target(regressor: BaseEstimator) -> TransformedTargetRegressor:
    """Fit on standardised targets, predict in the target's own units."""
    return TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler())


# Everything a fitted scikit-learn head here is made of; loading refuses any other type.
SKLEARN_TYPES = (
    HeadPipeline, SpatialPool, StandardScaler, TransformedTargetRegressor,
    LogisticRegression, LinearSVC, SVC, SVR, RidgeCV, RidgeClassifier,
    CalibratedClassifierCV, _CalibratedClassifier, _SigmoidCalibration,  # calibrated SVC
    LabelBinarizer,  # RidgeClassifier's label encoding
)
SKLEARN_FORMAT = skops_format(*SKLEARN_TYPES)


@register_head("logreg", tasks=("classify",), format=SKLEARN_FORMAT)
def logreg(task: str) -> Pipeline:
    """Logistic regression (L2, lbfgs) on standardised features; predict_proba."""
    return sklearn_pipeline(LogisticRegression(max_iter=2000))


@register_head("linear-svm", tasks=("classify",), format=SKLEARN_FORMAT)
def linear_svm(task: str) -> Pipeline:
    """Linear SVM (LinearSVC) on standardised features; decision_function scores."""
    # The dual solver: on 1280-d features of 3000 images it fit 28x faster than the primal one
    # that dual="auto" picks when rows outnumber features, and C=0.01 scored better than 0.1.
    return sklearn_pipeline(LinearSVC(C=0.01, dual=True, max_iter=5000))


@register_head("svm", format=SKLEARN_FORMAT, min_per_class=3)  # calibration's 3 folds
def svm(task: str) -> Pipeline:
    """RBF SVM: SVC with sigmoid-calibrated probabilities, or SVR on standardised targets."""
    if task == "regress":
        return sklearn_pipeline(standardized_target(SVR()))
    return sklearn_pipeline(CalibratedClassifierCV(SVC(), method="sigmoid", ensemble=False,
                                                   cv=3))


@register_head("ridge", format=SKLEARN_FORMAT)
def ridge(task: str) -> Pipeline:
    """Ridge: RidgeCV (alpha chosen by leave-one-out) to regress, RidgeClassifier to classify."""
    if task == "regress":
        return sklearn_pipeline(standardized_target(RidgeCV(alphas=RIDGE_ALPHAS)))
    return sklearn_pipeline(RidgeClassifier())

