"""Importing scikit-learn without the import time of pandas, ``scipy.stats`` and others.

``sklearn.utils.fixes`` imports pandas at import only to have it at hand (nothing in
scikit-learn reads that name; its pandas support looks in ``sys.modules`` when called), which
costs a quarter of a second of a 1.5 s ``fit``. Where neither is loaded yet, pandas is hidden
for scikit-learn's import and is importable as usual right after.

scikit-learn imports ``scipy.stats`` at import (~0.4 s: scipy rewrites the docstrings of some
500 functions as it imports them), ``scipy.interpolate`` and ``scipy.integrate`` (~50 ms),
and binds a few of their names there (:data:`DEFERRED`), yet none of the heads' fits uses
them. :func:`deferring_scipy` imports scikit-learn's modules with those packages deferred
(see :mod:`bottleneck.heads.deferred`): their names become stand-ins that import the package
when first used, and the package stays unimported until then, for scikit-learn as for anyone
else in the process.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from contextlib import ExitStack

from bottleneck.heads.deferred import deferred_module

# The scipy packages scikit-learn imports without using them in the heads' fits, each with
# the names scikit-learn's modules bind at import by `from scipy.<package> import ...` (those
# of the modules below and of the ones skops imports: sklearn.tree, sklearn.ensemble, ...).
# A name missing here is no error: reading it imports its package, as it would without us.
DEFERRED = {"scipy.stats": ("chi2", "gmean", "rankdata", "spearmanr"),
            "scipy.interpolate": ("BSpline",),
            "scipy.integrate": ("trapezoid",)}
# What the heads and their metrics import of scikit-learn at import.
SKLEARN_MODULES = ("sklearn.base", "sklearn.calibration", "sklearn.compose",
                   "sklearn.linear_model", "sklearn.metrics", "sklearn.model_selection",
                   "sklearn.pipeline", "sklearn.preprocessing", "sklearn.svm",
                   "sklearn.utils.class_weight", "sklearn.utils.metaestimators",
                   "sklearn.utils.multiclass", "sklearn.utils.validation")


def deferring_scipy(modules: Iterable[str]) -> None:
    """Import ``modules`` with the :data:`DEFERRED` scipy packages deferred (those that are
    not imported yet).

    A module that imports a submodule of a deferred package cannot be imported so: then the
    modules are imported with scipy as usual.
    """
    modules = list(modules)
    try:
        with ExitStack() as stack:
            for package, names in DEFERRED.items():
                stack.enter_context(deferred_module(package, names))
            for name in modules:
                importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith(tuple(f"{package}." for package in DEFERRED)):
            raise
        for name in modules:
            importlib.import_module(name)


def import_sklearn() -> None:
    """Import the scikit-learn the heads use, once, with pandas hidden if nobody has imported
    it yet and the :data:`DEFERRED` scipy packages deferred."""
    if all(name in sys.modules for name in SKLEARN_MODULES):
        return
    hide = "pandas" not in sys.modules and "sklearn.base" not in sys.modules
    if hide:
        sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` fails
    try:
        deferring_scipy(SKLEARN_MODULES)
    finally:
        if hide and sys.modules.get("pandas", 0) is None:
            del sys.modules["pandas"]


import_sklearn()
