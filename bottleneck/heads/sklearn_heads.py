"""scikit-learn heads: estimators whose parameters are their hyperparameters and whose ``fit``
builds a ``spatial → StandardScaler → model`` pipeline (``pipeline_``, see ``sklearn_base``).

They are saved with skops (no pickle, see ``sklearn_io``) and loaded only if the file holds
nothing but the types in :data:`SKLEARN_FORMAT`'s allow-list: the classes these heads are made
of. A new head built of other classes passes them to its own ``skops_format(...)``. A file of
model format 2 (``head.skops`` holding the bare pipeline) loads as the head it was.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
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
from sklearn.utils.class_weight import compute_sample_weight

from bottleneck.heads.registry import InvalidParameterError, register_head
from bottleneck.heads.sklearn_base import (
    PipelineClassifier,
    PipelineHead,
    PipelineRegressor,
    SpatialPool,
    check_feature_shape,
)
from bottleneck.heads.sklearn_io import skops_format
from bottleneck.heads.sklearn_legacy import HeadPipeline, legacy_upgrade

__all__ = ["SKLEARN_FORMAT", "SKLEARN_TYPES", "LinearSVMHead", "LogRegHead", "PipelineHead",
           "RidgeClassifierHead", "RidgeRegressorHead", "SVMClassifierHead",
           "SVMRegressorHead", "SpatialPool", "check_feature_shape"]

# fit_bytes below: measured with tracemalloc on 6000 × 1280 float32 rows (scikit-learn 1.9):
# logreg 9 (its scaled float32 copy and the solver's work), linear-svm 12, svm 20, ridge 13
# to classify and 32 to regress (RidgeCV's float64 copy, its centred copy and X·V).
RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
CALIBRATION_FOLDS = 3  # the svm classifier's sigmoid calibration: min_per_class below


class LogRegHead(PipelineClassifier):
    """Logistic regression (L2, lbfgs) on standardised features.

    ``C``: inverse regularisation strength; ``class_weight``: None or ``balanced``;
    ``max_iter``: lbfgs iterations; ``spatial``: avg, max or flatten for feature maps.
    """

    _methods = frozenset({"predict_proba", "predict_log_proba", "decision_function"})

    def __init__(self, C: float = 1.0, class_weight: Any = None, max_iter: int = 2000,
                 spatial: str = "avg") -> None:
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.spatial = spatial

    def _model(self) -> BaseEstimator:
        return LogisticRegression(C=self.C, class_weight=self.class_weight,
                                  max_iter=self.max_iter)


class LinearSVMHead(PipelineClassifier):
    """Linear SVM (LinearSVC, dual coordinate descent) on standardised features.

    ``C`` (default 0.01), ``class_weight``, ``max_iter``, ``random_state`` (the solver visits
    rows in a random order: a fixed default keeps two fits equal), ``spatial``.
    """

    _methods = frozenset({"decision_function"})

    def __init__(self, C: float = 0.01, class_weight: Any = None, max_iter: int = 5000,
                 random_state: int | None = 0, spatial: str = "avg") -> None:
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state
        self.spatial = spatial

    def _model(self) -> BaseEstimator:
        # The dual solver: on 1280-d features of 3000 images it fit 28x faster than the primal
        # one that dual="auto" picks when rows outnumber features; C=0.01 beat 0.1.
        return LinearSVC(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter,
                         random_state=self.random_state, dual=True)


def _check_kernel(kernel: Any) -> None:
    if kernel == "precomputed":  # the head's rows are features, never a Gram matrix
        raise InvalidParameterError("kernel must be rbf, poly, sigmoid or linear, "
                                    "got 'precomputed'")


class SVMClassifierHead(PipelineClassifier):
    """Kernel SVM (SVC) with sigmoid-calibrated probabilities (3 folds).

    ``C``, ``kernel`` (rbf, poly, sigmoid, linear), ``gamma`` (scale, auto or a number),
    ``class_weight`` (None, ``balanced`` or ``{label: weight}``: it weights each row both in
    the SVM and in the calibration, which would otherwise undo it), ``spatial``.
    """

    _methods = frozenset({"predict_proba"})

    def __init__(self, C: float = 1.0, kernel: str = "rbf", gamma: Any = "scale",
                 class_weight: Any = None, spatial: str = "avg") -> None:
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.class_weight = class_weight
        self.spatial = spatial

    def _model(self) -> BaseEstimator:
        _check_kernel(self.kernel)
        svc = SVC(C=self.C, kernel=self.kernel, gamma=self.gamma)
        return CalibratedClassifierCV(svc, method="sigmoid", ensemble=False,
                                      cv=CALIBRATION_FOLDS)

    def _fit_params(self, y: np.ndarray) -> dict[str, Any]:
        if self.class_weight is None:
            return {}
        return {"model__sample_weight": compute_sample_weight(self.class_weight, y)}


class SVMRegressorHead(PipelineRegressor):
    """Kernel SVR on standardised features and targets, predicting in the target's units.

    ``C``, ``kernel``, ``gamma``, ``epsilon`` (the tube's half-width, in standard deviations
    of the target), ``spatial``.
    """

    def __init__(self, C: float = 1.0, kernel: str = "rbf", gamma: Any = "scale",
                 epsilon: float = 0.1, spatial: str = "avg") -> None:
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.epsilon = epsilon
        self.spatial = spatial

    def _model(self) -> BaseEstimator:
        _check_kernel(self.kernel)
        return SVR(C=self.C, kernel=self.kernel, gamma=self.gamma, epsilon=self.epsilon)


class RidgeClassifierHead(PipelineClassifier):
    """RidgeClassifier on standardised features: ``alpha``, ``class_weight``, ``spatial``."""

    _methods = frozenset({"decision_function"})

    def __init__(self, alpha: float = 1.0, class_weight: Any = None,
                 spatial: str = "avg") -> None:
        self.alpha = alpha
        self.class_weight = class_weight
        self.spatial = spatial

    def _model(self) -> BaseEstimator:
        return RidgeClassifier(alpha=self.alpha, class_weight=self.class_weight)


class RidgeRegressorHead(PipelineRegressor):
    """RidgeCV: the best of ``alphas`` by leave-one-out, on standardised features and targets;
    ``spatial``."""

    def __init__(self, alphas: Any = RIDGE_ALPHAS, spatial: str = "avg") -> None:
        self.alphas = alphas
        self.spatial = spatial

    def _model(self) -> BaseEstimator:
        return RidgeCV(alphas=self.alphas)


HEAD_CLASSES = (LogRegHead, LinearSVMHead, SVMClassifierHead, SVMRegressorHead,
                RidgeClassifierHead, RidgeRegressorHead)
# Everything a fitted scikit-learn head here is made of; loading refuses any other type.
SKLEARN_TYPES = (
    *HEAD_CLASSES, Pipeline, SpatialPool, StandardScaler, TransformedTargetRegressor,
    LogisticRegression, LinearSVC, SVC, SVR, RidgeCV, RidgeClassifier,
    CalibratedClassifierCV, _CalibratedClassifier, _SigmoidCalibration,  # calibrated SVC
    LabelBinarizer,  # RidgeClassifier's label encoding
    HeadPipeline,  # model format 2: the bare pipeline, upgraded when loaded
)
SKLEARN_FORMAT = skops_format(*SKLEARN_TYPES, upgrade=legacy_upgrade(HEAD_CLASSES))


@register_head("logreg", tasks=("classify",), format=SKLEARN_FORMAT, fit_bytes=12)
def logreg(task: str) -> PipelineHead:
    """Logistic regression (L2, lbfgs) on standardised features; predict_proba."""
    return LogRegHead()


@register_head("linear-svm", tasks=("classify",), format=SKLEARN_FORMAT, fit_bytes=12)
def linear_svm(task: str) -> PipelineHead:
    """Linear SVM (LinearSVC) on standardised features; decision_function scores."""
    return LinearSVMHead()


@register_head("svm", format=SKLEARN_FORMAT, min_per_class=CALIBRATION_FOLDS, fit_bytes=24)
def svm(task: str) -> PipelineHead:
    """RBF SVM: SVC with sigmoid-calibrated probabilities, or SVR on standardised targets."""
    return SVMRegressorHead() if task == "regress" else SVMClassifierHead()


@register_head("ridge", format=SKLEARN_FORMAT, fit_bytes=32)
def ridge(task: str) -> PipelineHead:
    """Ridge: RidgeCV (alpha chosen by leave-one-out) to regress, RidgeClassifier to classify."""
    return RidgeRegressorHead() if task == "regress" else RidgeClassifierHead()
