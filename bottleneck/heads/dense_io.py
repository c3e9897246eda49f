"""Saving and loading the dense head: ``model.keras`` (loaded in Keras safe mode), its
parameters and fitted attributes in ``dense.json``, the training curves in ``history.json``.
Nothing here unpickles: the JSON is checked field by field, Keras refuses layers that carry
code (``Lambda``) in safe mode."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.backend import import_keras
from bottleneck.heads.registry import HeadFileError, HeadFormat
from bottleneck.storage.atomic import atomic_write, to_jsonable

MODEL_FILE = "model.keras"
PARAMS_FILE = "dense.json"
HISTORY_FILE = "history.json"
DENSE_FILES = (MODEL_FILE, PARAMS_FILE, HISTORY_FILE)
FITTED = ("classes_", "y_mean_", "y_std_", "feature_shape_", "best_epoch_", "n_features_in_")


def save_dense(head: Any, directory: str | Path) -> list[str]:
    """Write ``model.keras``, ``dense.json`` and ``history.json``; returns the names."""
    directory = Path(directory)
    head.model_.save(directory / MODEL_FILE)
    fitted = {name: to_jsonable(getattr(head, name)) for name in FITTED if hasattr(head, name)}
    record = {"estimator": type(head).__name__, "params": to_jsonable(head.get_params()),
              "fitted": fitted}
    atomic_write(directory / PARAMS_FILE, json.dumps(record, indent=2) + "\n")
    atomic_write(directory / HISTORY_FILE, json.dumps(head.history_, indent=2) + "\n")
    return list(DENSE_FILES)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HeadFileError(f"{path.name} is not valid JSON ({exc})") from None


def _check_record(record: Any, estimators: dict[str, type]) -> type:
    """The class ``dense.json`` names, after checking its fields are what save_dense writes."""
    if not isinstance(record, dict) or record.get("estimator") not in estimators:
        estimator = record.get("estimator") if isinstance(record, dict) else None
        raise HeadFileError(f"{PARAMS_FILE} names an unknown dense estimator {estimator!r}")
    cls = estimators[record["estimator"]]
    params, fitted = record.get("params"), record.get("fitted")
    if not isinstance(params, dict) or not set(params) <= set(cls._get_param_names()):
        raise HeadFileError(f"{PARAMS_FILE} holds parameters {cls.__name__} does not take")
    if not isinstance(fitted, dict) or not set(fitted) <= set(FITTED) \
            or not isinstance(fitted.get("feature_shape_"), list):
        raise HeadFileError(f"{PARAMS_FILE} does not hold a fitted head's attributes")
    return cls


def load_dense(directory: str | Path, estimators: dict[str, type]) -> Any:
    """Rebuild a fitted head from :func:`save_dense`'s files; Keras loads in safe mode.

    ``estimators`` maps the recorded class name to the class (nothing else is built).
    """
    keras = import_keras()

    directory = Path(directory)
    record = _read_json(directory / PARAMS_FILE)
    cls = _check_record(record, estimators)
    params = record["params"]
    if isinstance(params.get("hidden"), list):
        params["hidden"] = tuple(params["hidden"])
    head = cls(**params)
    for name, value in record["fitted"].items():
        if name == "classes_":
            value = np.asarray(value)
        elif name == "feature_shape_":
            value = tuple(value)
        setattr(head, name, value)
    try:  # what Keras raises for a file it will not deserialise (unknown or unsafe layers)
        head.model_ = keras.saving.load_model(directory / MODEL_FILE, compile=False,
                                              safe_mode=True)
    except (ValueError, TypeError, zipfile.BadZipFile) as exc:
        text = str(exc).strip() or type(exc).__name__
        raise HeadFileError(text.splitlines()[0].split(". ")[0]) from None
    if tuple(head.model_.input_shape[1:]) != head.feature_shape_:
        raise HeadFileError(f"{MODEL_FILE} takes rows of shape {head.model_.input_shape[1:]}, "
                            f"but {PARAMS_FILE} records {head.feature_shape_}")
    head.history_ = _read_json(directory / HISTORY_FILE)
    return head


def dense_format(*classes: type) -> HeadFormat:
    """The dense head's :class:`HeadFormat`; ``classes`` are the estimators it may rebuild."""
    estimators = {cls.__name__: cls for cls in classes}
    return HeadFormat(save_dense, lambda directory: load_dense(directory, estimators),
                      files=DENSE_FILES)
