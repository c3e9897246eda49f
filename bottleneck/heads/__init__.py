"""Heads: the registry (what each head can do) and the families that fill it.

Registration happens when a family module is imported, in the order of ``FAMILIES``, on the
first use of a registry name from this package (``from bottleneck.heads import HEADS``): a
command that only checks a head's name (``BUILT_IN``) loads no family and no scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import Any

# The heads the families below register, by name (a test keeps the two equal): what a
# command can check a --head against before loading any of them.
BUILT_IN = ("logreg", "linear-svm", "svm", "ridge", "dense", "linear")
FAMILIES = ("sklearn_import", "sklearn_heads", "dense", "linear", "to_keras")

__all__ = [
    "BUILT_IN", "HEADS", "SPATIAL_MODES", "TASKS", "HeadFileError", "HeadFormat", "HeadSpec",
    "InvalidParameterError", "KerasHead", "check_rows", "check_task", "class_scores",
    "full_param_name", "get_head_spec", "head_param_names", "keras_head", "listed_params",
    "make_head", "register_head", "set_head_params",
]


def __getattr__(name: str) -> Any:
    """A registry name, once every family has registered its heads."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for family in FAMILIES:
        importlib.import_module(f"{__name__}.{family}")
    registry = importlib.import_module(f"{__name__}.registry")
    value = getattr(registry, name)
    globals()[name] = value
    return value


def check_head_name(name: str) -> None:
    """Refuse a name that is no built-in head, in one line, without loading any head."""
    if name.lower() not in BUILT_IN:
        from bottleneck.errors import UserError

        raise UserError(f"unknown head '{name}'; choose one of: {', '.join(BUILT_IN)}.")
