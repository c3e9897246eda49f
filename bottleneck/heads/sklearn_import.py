"""Importing scikit-learn without the import time of pandas and ``scipy.stats``.

``sklearn.utils.fixes`` imports pandas at import only to have it at hand (nothing in
scikit-learn reads that name; its pandas support looks in ``sys.modules`` when called), which
costs a quarter of a second of a 1.5 s ``fit``. Where neither is loaded yet, pandas is hidden
for scikit-learn's import and is importable as usual right after.

scikit-learn imports ``scipy.stats`` at import (~0.4 s: scipy rewrites the docstrings of some
500 functions as it imports them) and binds a few of its names there (:data:`STATS_NAMES`),
yet none of the heads' fits uses it. :func:`deferring_stats` imports scikit-learn's modules
with ``scipy.stats`` deferred (see :mod:`bottleneck.heads.deferred`): those names become
stand-ins that import ``scipy.stats`` when first used, and ``scipy.stats`` stays unimported
until then, for scikit-learn as for anyone else in the process.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

from bottleneck.heads.deferred import deferred_module

# The names scikit-learn modules bind at import by `from scipy.stats import ...`: those of
# the modules below and of the ones skops imports (sklearn.tree, sklearn.ensemble, ...).
# A name missing here is no error: reading it imports scipy.stats, as it would without us.
STATS_NAMES = ("chi2", "gmean", "rankdata", "spearmanr")
# What the heads and their metrics import of scikit-learn at import.
SKLEARN_MODULES = ("sklearn.base", "sklearn.calibration", "sklearn.compose",
                   "sklearn.linear_model", "sklearn.metrics", "sklearn.model_selection",
                   "sklearn.pipeline", "sklearn.preprocessing", "sklearn.svm",
                   "sklearn.utils.class_weight", "sklearn.utils.metaestimators",
                   "sklearn.utils.multiclass", "sklearn.utils.validation")


def deferring_stats(modules: Iterable[str]) -> None:
    """Import ``modules`` with ``scipy.stats`` deferred (unless it is imported already).

    A module that imports a submodule of ``scipy.stats`` cannot be imported so: then the
    modules are imported with ``scipy.stats`` as usual.
    """
    modules = list(modules)
    try:
        with deferred_module("scipy.stats", STATS_NAMES):
            for name in modules:
                importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("scipy.stats."):
            raise
        for name in modules:
            importlib.import_module(name)


def import_sklearn() -> None:
    """Import the scikit-learn the heads use, once, with pandas hidden if nobody has imported
    it yet and ``scipy.stats`` deferred."""
    if all(name in sys.modules for name in SKLEARN_MODULES):
        return
    hide = "pandas" not in sys.modules and "sklearn.base" not in sys.modules
    if hide:
        sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` fails
    try:
        deferring_stats(SKLEARN_MODULES)
    finally:
        if hide and sys.modules.get("pandas", 0) is None:
            del sys.modules["pandas"]


import_sklearn()
