"""Importing scikit-learn without pandas' import time.

``sklearn.utils.fixes`` imports pandas at import only to have it at hand (nothing in
scikit-learn reads that name; its pandas support looks in ``sys.modules`` when called), which
costs a quarter of a second of a 1.5 s ``fit``. Where neither is loaded yet, pandas is hidden
for scikit-learn's import and is importable as usual right after.
"""

from __future__ import annotations

import sys


def import_sklearn() -> None:
    """Import ``sklearn.base`` once, with pandas hidden if nobody has imported it yet."""
    if "sklearn.base" in sys.modules:
        return
    hide = "pandas" not in sys.modules
    if hide:
        sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` fails
    try:
        import sklearn.base  # noqa: F401
    finally:
        if hide and sys.modules.get("pandas", 0) is None:
            del sys.modules["pandas"]


import_sklearn()
