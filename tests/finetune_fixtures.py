"""Head directories and one fine-tuned model for the finetune and export tests (a plugin
loaded with ``pytest_plugins``, on top of ``tests.heads_fixtures``' VGG16 caches)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bottleneck.cache import Cache
from bottleneck.heads import HEADS, class_scores

QUICK = {"dense": {"epochs": 5, "hidden": (16,)}}
# every (head, task) that has a Keras form: all of them can be assembled
KERAS_HEADS = [(name, task) for name, spec in HEADS.items() if spec.to_keras
               for task in spec.tasks]
FINETUNE = {"epochs": 2, "unfreeze_top": 4, "augment": "flip,zoom=0.1", "batch_size": 16}


def reference(head: Any, task: str, features: np.ndarray, n_classes: int) -> np.ndarray:
    """What a Keras form of ``head`` gives: probabilities, softmax of scores, or the value."""
    if task == "regress":
        return np.asarray(head.predict(features)).reshape(-1, 1)
    kind, values = class_scores(head, features, n_classes)
    if kind == "score":
        values = np.exp(values - values.max(axis=1, keepdims=True))
        values /= values.sum(axis=1, keepdims=True)
    return values


@pytest.fixture(scope="session")
def head_dirs(feature_cache: Cache, price_cache: Cache,
              tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """A fitted MODEL_DIR per (head, task) that can be assembled."""
    import bottleneck

    root = tmp_path_factory.mktemp("finetune_heads")
    dirs = {}
    for name, task in KERAS_HEADS:
        cache = price_cache if task == "regress" else feature_cache
        dirs[name, task] = root / f"{name}-{task}"
        bottleneck.fit(cache, name, dirs[name, task], task=task, params=QUICK.get(name),
                       progress=False)
    return dirs


@pytest.fixture(scope="session")
def small_heads(spatial_cache: Cache, tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, Path]:
    """logreg and dense heads on VGG16 cut at block3_pool (11 layers, 1.7M weights) with
    --pooling none: fine-tuning and exporting them is quick."""
    import bottleneck

    root = tmp_path_factory.mktemp("small_heads")
    for name in ("logreg", "dense"):
        bottleneck.fit(spatial_cache, name, root / name, params=QUICK.get(name), progress=False)
    return {name: root / name for name in ("logreg", "dense")}


@pytest.fixture(scope="session")
def finetuned(small_heads: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The small logreg head fine-tuned with its top 4 layers, 2 epochs, flips and zooms."""
    from bottleneck.models.finetune import finetune

    out = tmp_path_factory.mktemp("finetuned") / "logreg-ft"
    return finetune(small_heads["logreg"], out, **FINETUNE)  # the API is quiet by default
