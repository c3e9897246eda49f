"""Plan a bench: which variants (cache × head × grid point) to fit, on which caches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sklearn.model_selection import ParameterGrid

from bottleneck.cache import Cache
from bottleneck.errors import UserError
from bottleneck.heads import head_param_names, make_head
from bottleneck.heads.hyperparams import parse_value


@dataclass
class Variant:
    """One row of the leaderboard before it is run."""

    cache: str
    head: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        settings = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.head}({settings})" if settings else self.head


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values: ``{C: [1, 10]}`` → ``[{C: 1}, {C: 10}]``."""
    keys = list(grid)
    return [{k: point[k] for k in keys} for point in ParameterGrid({k: list(grid[k])
                                                                    for k in keys})] \
        if keys else [{}]


def plan_variants(cache_labels: Sequence[str], heads: Sequence[str], task: str,
                  grid: Mapping[str, Sequence[Any]]) -> list[Variant]:
    """Cache × head × the grid keys that head accepts; a key no head accepts is an error."""
    used: set[str] = set()
    variants = []
    for head in heads:
        accepted = set(head_param_names(make_head(head, task)))
        own = {k: v for k, v in grid.items() if k in accepted}
        used |= set(own)
        for params in expand_grid(own):
            variants += [Variant(label, head, params) for label in cache_labels]
    unused = set(grid) - used
    if unused:
        raise UserError(f"no head in {', '.join(heads)} takes --grid {sorted(unused)[0]}; "
                        "see each head's parameters with `bottleneck heads`.")
    return variants


def cache_label(cache: Cache) -> str:
    """``vgg19:block4_pool@224/avg``: what distinguishes caches in one leaderboard."""
    config = cache.config
    layer = f":{config['layer']}" if config.get("layer") else ""
    return f"{config['backbone']}{layer}@{config['image_size']}/{config['pooling']}"


def check_same_images(caches: Sequence[Cache]) -> None:
    """Caches in one bench must hold the same images in the same splits."""
    def rows(cache: Cache) -> dict[str, str]:
        return dict(zip(cache.column("paths"), cache.column("split"), strict=True))

    reference = rows(caches[0])
    for cache in caches[1:]:
        other = rows(cache)
        if other != reference:
            differing = sorted(set(other.items()) ^ set(reference.items()))
            raise UserError(
                f"{cache.root} and {caches[0].root} do not hold the same images in the same "
                f"splits (e.g. {differing[0][0]}); extract both from the same source and splits."
            )


def parse_grid(pairs: Sequence[str]) -> dict[str, list[Any]]:
    """``["C=0.1,1,10", "hidden=(256,),(512,)"]`` → ``{"C": [0.1, 1, 10], ...}``."""
    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise UserError(f"--grid {pair!r} must look like key=v1,v2,...")
        grid[key.strip()] = [parse_value(v) for v in _split_values(values)]
    return grid


def _split_values(text: str) -> list[str]:
    """Split on commas that are not inside brackets: ``(256,),(512,)`` → two values."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]

