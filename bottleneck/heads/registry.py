"""Head registry: name → builder of a scikit-learn estimator and what the head can do.

Adding a scikit-learn head is an estimator class whose ``__init__`` takes its hyperparameters
(see ``sklearn_base``), one builder function and one decorator line (its format names the
classes a saved head may hold: loading refuses any other)::

    class KNNHead(PipelineClassifier):
        _methods = frozenset({"predict_proba"})

        def __init__(self, n_neighbors: int = 5, spatial: str = "avg") -> None:
            self.n_neighbors = n_neighbors
            self.spatial = spatial

        def _model(self) -> BaseEstimator:
            return KNeighborsClassifier(n_neighbors=self.n_neighbors)

    KNN_FORMAT = skops_format(*SKLEARN_TYPES, KNNHead, KNeighborsClassifier)

    @register_head("knn", format=KNN_FORMAT, tasks=("classify",))
    def knn(task: str) -> BaseEstimator:
        return KNNHead()

Every head is a scikit-learn estimator (``get_params``/``set_params``, ``fit``, ``predict``,
``score``; fitted attributes end in ``_``; ``fit`` changes no parameter), so
``sklearn.base.clone``, pipelines and grid search work on all of them, and its parameters are
the hyperparameters a user sets by name (``C``, ``hidden``, ``spatial``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from bottleneck.errors import UserError

try:  # sklearn's own error for a bad hyperparameter value (a ValueError and a TypeError)
    from sklearn.utils._param_validation import InvalidParameterError
except ImportError:  # pragma: no cover - the private location moved
    InvalidParameterError = ValueError  # type: ignore[assignment,misc]

TASKS = ("classify", "regress")
SPATIAL_MODES = ("avg", "max", "flatten")


class HeadFileError(ValueError):
    """A head's saved files are damaged, foreign or hold something the format will not load.

    Formats raise it (and only it) for what a file's contents can cause; the model directory
    turns it into a one-line refusal. Anything else a format raises is a bug.
    """


@dataclass(frozen=True)
class HeadFormat:
    """How a fitted head is saved into, and loaded from, a model directory.

    ``files``: every file ``load`` reads, so the loader checks exactly these against the
    directory's checksums before calling it. ``save`` returns the names it wrote (at least
    ``files``). Neither may unpickle or otherwise run code from the files.
    """

    save: Callable[[BaseEstimator, Path], list[str]]
    load: Callable[[Path], BaseEstimator]
    files: tuple[str, ...]


@dataclass(frozen=True)
class KerasHead:
    """A fitted head as a Keras model on its features (see :mod:`bottleneck.heads.to_keras`).

    ``model`` maps features to class probabilities (N × classes) or the value (N × 1), in
    float32; ``learning_rate`` is the rate the head was trained with, where it had one.
    """

    model: Any
    learning_rate: float | None = None


@dataclass(frozen=True)
class HeadSpec:
    """One registered head: how to build it and what it can do.

    ``streams``: fits from a batched tf.data stream, so caches larger than memory train.
    ``takes_validation``: ``fit`` accepts ``validation_data`` (early stopping) and ``classes``.
    ``parallel_safe``: can fit in a joblib worker process (Keras heads cannot: TensorFlow
    already uses every core and does not fork safely).
    ``min_per_class``: training rows each class needs (an internal cross-validation's folds).
    ``shuffled``: a stream it fits from must come shuffled (mini-batch training); a head that
    sums over every row per pass (full-batch) reads the shards in order, without the window.
    ``fit_bytes``: bytes the fit holds per feature value beyond the loaded float32 features
    (its scaled copy, a solver's float64 copy, ...), as measured; a head that reads its rows a
    chunk at a time holds none.
    """

    name: str
    builder: Callable[[str], BaseEstimator]
    tasks: tuple[str, ...]
    description: str
    format: HeadFormat
    streams: bool = False
    takes_validation: bool = False
    parallel_safe: bool = True
    min_per_class: int = 1
    fit_bytes: int = 12
    shuffled: bool = True
    # fitted head, task, number of classes, feature shape → KerasHead; None: not expressible
    to_keras: Callable[[BaseEstimator, str, int, tuple[int, ...]], KerasHead] | None = None


HEADS: dict[str, HeadSpec] = {}


def register_head(
    name: str, format: HeadFormat, tasks: tuple[str, ...] = TASKS, streams: bool = False,
    takes_validation: bool = False, parallel_safe: bool = True, description: str = "",
    min_per_class: int = 1, fit_bytes: int = 12, shuffled: bool = True,
) -> Callable[[Callable[[str], BaseEstimator]], Callable[[str], BaseEstimator]]:
    """Decorator: register ``builder(task) -> estimator`` under ``name``."""

    def decorator(builder: Callable[[str], BaseEstimator]) -> Callable[[str], BaseEstimator]:
        doc = (builder.__doc__ or "").strip().splitlines()
        HEADS[name] = HeadSpec(name, builder, tasks, description or (doc[0] if doc else name),
                               format, streams, takes_validation, parallel_safe,
                               min_per_class=min_per_class, fit_bytes=fit_bytes,
                               shuffled=shuffled)
        return builder

    return decorator


def register_to_keras(name: str) -> Callable[[Callable[..., KerasHead]], Callable[..., KerasHead]]:
    """Decorator: declare how the registered head ``name`` becomes Keras layers."""

    def decorator(convert: Callable[..., KerasHead]) -> Callable[..., KerasHead]:
        HEADS[name] = replace(HEADS[name], to_keras=convert)
        return convert

    return decorator


def keras_head(name: str, head: BaseEstimator, task: str, n_classes: int,
               feature_shape: tuple[int, ...]) -> KerasHead:
    """The fitted head as a Keras model, or a UserError naming the heads that have one."""
    spec = get_head_spec(name)
    if spec.to_keras is None:
        able = [other.name for other in HEADS.values() if other.to_keras is not None]
        raise UserError(f"the '{spec.name}' head cannot be expressed as Keras layers, so it "
                        f"cannot be fine-tuned or exported; heads that can: {', '.join(able)}.")
    return spec.to_keras(head, task, n_classes, tuple(feature_shape))


def get_head_spec(name: str) -> HeadSpec:
    """Look a head up by name, or fail with the list of valid names."""
    try:
        return HEADS[name.lower()]
    except KeyError:
        raise UserError(f"unknown head '{name}'; choose one of: {', '.join(HEADS)}.") from None


def check_rows(spec: HeadSpec, task: str, labels: np.ndarray, where: str) -> None:
    """Refuse training labels a classifier head cannot fit on, in one line."""
    if task != "classify":
        return
    values, counts = np.unique(labels, return_counts=True)
    if len(values) < 2:
        raise UserError(f"{where} holds a single class; a classifier needs at least two.")
    if counts.min() < spec.min_per_class:
        raise UserError(f"the '{spec.name}' head needs at least {spec.min_per_class} training "
                        f"images per class, but {where} has {counts.min()} for one class; add "
                        "images or choose another head.")


def check_task(spec: HeadSpec, task: str) -> None:
    """Refuse an unknown task or one the head cannot do."""
    if task not in TASKS:
        raise UserError(f"unknown task '{task}'; choose one of: {', '.join(TASKS)}.")
    if task not in spec.tasks:
        able = [name for name, other in HEADS.items() if task in other.tasks]
        raise UserError(f"head '{spec.name}' cannot {task}; for --task {task} use one of: "
                        f"{', '.join(able)}.")


# Parameters a head takes but a user does not tune: accepted, never listed (the CLI sets
# ``verbose`` from -q; ``tol`` is the linear probe's solver tolerance).
NOT_LISTED = frozenset({"verbose", "tol"})


def full_param_name(estimator: BaseEstimator, key: str) -> str | None:
    """``key`` if the head takes that parameter, else None.

    A head's parameters are its hyperparameters (``C``, ``hidden``, ``spatial``), so the short
    name a user types is the estimator's own.
    """
    return key if key in estimator.get_params(deep=True) else None


def head_param_names(estimator: BaseEstimator) -> list[str]:
    """The parameters a user tunes on a head, sorted."""
    return sorted(set(estimator.get_params(deep=False)) - NOT_LISTED)


def listed_params(name: str, defaults: bool = False) -> str:
    """A head's parameters for a listing: those of every task it can do, then each task's
    own (``C, gamma, kernel, spatial; classify: class_weight; regress: epsilon``); with
    ``defaults``, each as ``name=default`` (shared where every task has that default)."""
    spec = get_head_spec(name)
    per_task = {}
    for task in spec.tasks:
        estimator = spec.builder(task)
        values = estimator.get_params(deep=False)
        per_task[task] = {n: values[n] for n in head_param_names(estimator)}

    def shown(key: str, value: Any) -> str:
        if not defaults:
            return key
        return f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"

    first = next(iter(per_task.values()))
    shared = sorted(n for n in first if all(n in p and _same(p[n], first[n])
                                            for p in per_task.values()))
    parts = [", ".join(shown(n, first[n]) for n in shared)] + [
        f"{task}: {', '.join(shown(n, v) for n, v in params.items())}"
        for task, all_params in per_task.items()
        if (params := {n: v for n, v in all_params.items() if n not in shared})]
    return "; ".join(part for part in parts if part)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays
        return a is b


def set_head_params(estimator: BaseEstimator, params: Mapping[str, Any], head: str = "") -> None:
    """Apply parameters; unknown names or a bad ``spatial`` raise a UserError."""
    for key, value in params.items():
        if full_param_name(estimator, key) is None:
            raise UserError(f"head '{head}' has no parameter '{key}'; valid: "
                            f"{', '.join(head_param_names(estimator))}.")
        if key == "spatial" and value not in SPATIAL_MODES:
            raise UserError(f"spatial={value!r} is not valid; choose one of: "
                            f"{', '.join(SPATIAL_MODES)}.")
    estimator.set_params(**params)


def make_head(
    name: str, task: str = "classify", params: Mapping[str, Any] | None = None,
    random_state: int | None = None,
) -> BaseEstimator:
    """A fresh, unfitted head: ``name`` built for ``task`` with short-named ``params``.

    ``random_state`` seeds heads that have one, unless ``params`` sets it.
    """
    spec = get_head_spec(name)
    check_task(spec, task)
    estimator = spec.builder(task)
    params = dict(params or {})
    if random_state is not None and "random_state" not in params \
            and full_param_name(estimator, "random_state"):
        estimator.set_params(random_state=random_state)
    set_head_params(estimator, params, spec.name)
    return estimator


def class_scores(head: BaseEstimator, X: Any, n_classes: int) -> tuple[str, np.ndarray]:
    """(``"probability"`` or ``"score"``, N × n_classes) for a fitted classifier head.

    Probabilities where the head has ``predict_proba``, else ``decision_function`` scores
    (two-class scores ``d`` become ``[-d, d]``). Columns are label indices ``0..n_classes-1``;
    a class the head never saw gets probability 0 (score -inf).
    """
    columns = np.asarray(head.classes_, dtype=np.int64)
    if hasattr(head, "predict_proba"):
        kind, values, missing = "probability", head.predict_proba(X), 0.0
    else:
        kind, values, missing = "score", head.decision_function(X), -np.inf
        if values.ndim == 1:
            values = np.column_stack([-values, values])
    full = np.full((len(values), n_classes), missing, dtype=np.float64)
    full[:, columns] = values
    return kind, full
