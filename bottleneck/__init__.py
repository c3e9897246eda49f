"""bottleneck: a frozen-backbone feature cache (HDF5 shards) plus lightweight heads.

The Python API mirrors the CLI::

    import bottleneck
    cache = bottleneck.extract("photos/", backbone="mobilenet_v2", out="cache/")
    data = bottleneck.open_cache("cache/").load("train")

Attributes load lazily, so ``import bottleneck`` (and ``bottleneck --help``) stay fast: it
imports neither Keras nor TensorFlow (see :mod:`bottleneck.backend`).
"""

from __future__ import annotations

import importlib
import os
import warnings
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# pandas takes this package for the numerical 'bottleneck' it optionally uses, and warns
warnings.filterwarnings("ignore", message=r"Pandas requires version .* of 'bottleneck'")

__version__ = "0.1.0"

_API = {
    "Cache": "bottleneck.cache",
    "open_cache": "bottleneck.cache",
    "extract": "bottleneck.extraction",
    "open_source": "bottleneck.data",
    "fashion_mnist_source": "bottleneck.data",
    "npz_source": "bottleneck.data",
    "fit": "bottleneck.models.fit",
    "evaluate": "bottleneck.models.evaluate",
    "predict": "bottleneck.models.predict",
    "finetune": "bottleneck.models.finetune",
    "export": "bottleneck.models.export",
    "bench": "bottleneck.benching",
    "report": "bottleneck.reporting",
    "similar": "bottleneck.models.similar",
    "make_head": "bottleneck.heads",
    "register_head": "bottleneck.heads",
    "load_model": "bottleneck.models.model_dir",
    "DenseClassifier": "bottleneck.heads.dense",
    "DenseRegressor": "bottleneck.heads.dense",
}
__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'bottleneck' has no attribute '{name}'")
    return getattr(importlib.import_module(_API[name]), name)
