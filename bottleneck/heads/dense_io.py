"""Saving and loading the dense head: ``model.keras`` (loaded in Keras safe mode), its
parameters and fitted attributes in ``dense.json``, the training curves in ``history.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck._io import atomic_write, to_jsonable

MODEL_FILE = "model.keras"
PARAMS_FILE = "dense.json"
HISTORY_FILE = "history.json"
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
    return [MODEL_FILE, PARAMS_FILE, HISTORY_FILE]


def load_dense(directory: str | Path, estimators: dict[str, type]) -> Any:
    """Rebuild a fitted head from :func:`save_dense`'s files; Keras loads in safe mode.

    ``estimators`` maps the recorded class name to the class (nothing else is built).
    """
    import keras

    directory = Path(directory)
    record = json.loads((directory / PARAMS_FILE).read_text())
    if record.get("estimator") not in estimators:
        raise ValueError(f"unknown dense estimator {record.get('estimator')!r}")
    params = record["params"]
    if isinstance(params.get("hidden"), list):
        params["hidden"] = tuple(params["hidden"])
    head = estimators[record["estimator"]](**params)
    for name, value in record["fitted"].items():
        if name == "classes_":
            value = np.asarray(value)
        elif name == "feature_shape_":
            value = tuple(value)
        setattr(head, name, value)
    head.model_ = keras.saving.load_model(directory / MODEL_FILE, compile=False, safe_mode=True)
    history = directory / HISTORY_FILE
    head.history_ = json.loads(history.read_text()) if history.is_file() else {}
    return head
