"""Model format 2's scikit-learn heads: ``head.skops`` held the bare fitted pipeline
``spatial → scale → model`` (a :class:`HeadPipeline`). Loading one gives the head it was (the
same fitted pipeline as ``pipeline_``), so models fitted before the heads became estimator
classes keep predicting, evaluating, fine-tuning and exporting unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils import column_or_1d

from bottleneck.heads.registry import HeadFileError
from bottleneck.heads.sklearn_base import PipelineHead

STEPS = ("spatial", "scale", "model")


class HeadPipeline(Pipeline):
    """Format 2's head: a :class:`~sklearn.pipeline.Pipeline` that takes a classifier's
    column-vector ``y`` (raveled with a DataConversionWarning). Kept so those files load."""

    def fit(self, X: Any, y: Any = None, **params: Any) -> HeadPipeline:
        if y is not None and is_classifier(self) and np.shape(np.asarray(y))[1:] == (1,):
            y = column_or_1d(y, warn=True)
        return super().fit(X, y, **params)


def _core(step: Any) -> Any:
    """The estimator inside a target transformer or a calibration wrapper."""
    if isinstance(step, TransformedTargetRegressor):
        return step.regressor
    if isinstance(step, CalibratedClassifierCV):
        return step.estimator
    return step


def _shape(step: Any) -> tuple[type, type]:
    return type(step), type(_core(step))


def legacy_upgrade(heads: Sequence[type[PipelineHead]]) -> Callable[[Any], BaseEstimator]:
    """A loader's last step: a head passes as it is, a format-2 pipeline becomes the head of
    ``heads`` whose final step has its shape; anything else is a :class:`HeadFileError`."""
    by_shape = {_shape(cls()._final_step()): cls for cls in heads}

    def upgrade(loaded: Any) -> BaseEstimator:
        if isinstance(loaded, PipelineHead):
            return loaded
        if not isinstance(loaded, Pipeline):
            raise HeadFileError(f"head.skops holds a {type(loaded).__name__}, not a head")
        names = tuple(name for name, _ in loaded.steps)
        final = loaded.steps[-1][1] if names == STEPS else None
        cls = by_shape.get(_shape(final)) if final is not None else None
        if cls is None or not hasattr(loaded, "n_features_in_"):
            raise HeadFileError(f"head.skops holds a pipeline of steps {list(names)} that is "
                                "no head of this version")
        own = _core(final).get_params(deep=False)
        params = {name: own[name] for name in cls._get_param_names() if name in own}
        head = cls(**params, spatial=loaded.named_steps["spatial"].mode)
        head._adopt(loaded)
        return head

    return upgrade
