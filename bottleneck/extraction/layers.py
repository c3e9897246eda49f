"""Several layers from one pass: ``--out`` becomes a folder with one ordinary cache per layer.

``OUT/block4_pool/``, ``OUT/block5_pool/``, … are complete caches with the same rows, each with
its own manifest (its own ``layer``). ``OUT`` itself holds no manifest, so it never looks like
a cache; it may hold other caches of ours (an earlier run's other layers), nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bottleneck.cache.manifest import is_cache
from bottleneck.errors import UserError


def layer_list(layer: str | Sequence[str | None] | None) -> list[str | None]:
    """``--layer`` as given (None, one name, or several) → the list of layers to keep."""
    if layer is None or isinstance(layer, str):
        return [layer]
    layers = list(layer)
    if not layers:
        return [None]
    if len(layers) > 1:
        for name in layers:
            if not name or "/" in name or "\\" in name or name.startswith("."):
                raise UserError(f"with several --layer, each needs a plain layer name (it names "
                                f"its cache folder), got {name!r}.")
        repeated = sorted({n for n in layers if layers.count(n) > 1})
        if repeated:
            raise UserError(f"--layer {repeated[0]} is given twice; name each layer once.")
    return layers


def layer_dirs(out: Path, layers: Sequence[str]) -> list[Path]:
    """``OUT/<layer>`` for each layer, after checking ``OUT`` may hold them."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a directory for the caches.")
    if out.is_dir() and is_cache(out):
        raise UserError(f"--out {out} is a single-layer cache; with several --layer give a new "
                        "folder, which will hold one cache per layer.")
    if out.is_dir():
        strangers = [child.name for child in sorted(out.iterdir())
                     if child.name not in layers and not (child.is_dir() and is_cache(child))]
        if strangers:
            raise UserError(f"{out} holds {strangers[0]!r}, which is not a bottleneck cache; "
                            "with several --layer give a new or empty --out folder.")
    return [out / name for name in layers]
