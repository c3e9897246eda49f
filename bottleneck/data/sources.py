"""What a source is, how splits are assigned, and the registry of source kinds.

A source lists its :class:`Item` rows (a stable key, a label, a split) and decodes any of
them to a uint8 H×W×3 array (``load_image``; thread-safe, so extraction decodes in threads).
The key is what the cache stores in ``paths``: a path relative to the source root, or an id
such as ``train/12345``.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bottleneck.errors import UserError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Item:
    """One image of a source: its stable key, class index and split."""

    key: str
    label: int
    split: str


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key`` alone: the same on every run and machine."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:12], 16) / 16**12


def hash_split(key: str, val_percent: float, test_percent: float) -> str:
    """Assign a split by a stable hash, so adding items never moves existing ones."""
    fraction = stable_fraction(key) * 100
    if fraction < test_percent:
        return "test"
    if fraction < test_percent + val_percent:
        return "val"
    return "train"


def check_percents(val_percent: float, test_percent: float) -> None:
    """Refuse split percentages that leave nothing sensible to train on."""
    if val_percent < 0 or test_percent < 0 or val_percent + test_percent >= 100:
        raise UserError(
            "--val-percent and --test-percent must be ≥ 0 and add up to less than 100."
        )


def stratified_limit(items: list[Item], limit: int | None) -> list[Item]:
    """At most ``limit`` items per split, keeping each split's class proportions."""
    if limit is None:
        return items
    if limit <= 0:
        raise UserError("--limit must be a positive number of images per split.")
    kept: list[Item] = []
    for split in SPLITS:
        in_split = [item for item in items if item.split == split]
        if len(in_split) <= limit:
            kept.extend(in_split)
            continue
        by_class: dict[int, list[Item]] = defaultdict(list)
        for item in sorted(in_split, key=lambda it: stable_fraction(it.key)):
            by_class[item.label].append(item)
        quotas = {c: len(v) * limit // len(in_split) for c, v in by_class.items()}
        spare = limit - sum(quotas.values())
        for label in sorted(by_class, key=lambda c: -len(by_class[c]))[:spare]:
            quotas[label] += 1
        for label, members in by_class.items():
            kept.extend(members[: quotas[label]])
    return sort_items(kept)


class Source(ABC):
    """Where images come from. Subclasses list items and stream their pixels."""

    classes: list[str]

    @abstractmethod
    def items(self) -> list[Item]:
        """Every item, sorted by split then key."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the manifest records about this source."""

    @abstractmethod
    def load_image(self, item: Item, decode_size: int | None = None,
                   data: bytes | None = None) -> np.ndarray:
        """One item as uint8 H×W×3; raises ``ValueError`` with the reason it cannot be read.

        ``decode_size``: fast decode, where the source holds encoded files (see
        :mod:`bottleneck.data.images`); sources of decoded arrays ignore it. ``data``: the
        bytes of the item's file (:meth:`file_of`), where the caller has read them already.
        """

    def targets(self) -> dict[str, float] | None:
        """Per-item numeric targets, where the source carries them."""
        return None

    # what a scan left out (path, why), for a note; sources that scan folders fill it
    skipped: Sequence[tuple[Path, str]] = ()

    def excluding(self, paths: Sequence[str | Path]) -> Source:
        """This source without anything under ``paths`` (an --out inside a folder source)."""
        return self

    def file_of(self, key: str) -> Path | None:
        """The file an item's pixels come from, where there is one (None: arrays), so a
        re-run can tell whether it changed since its features were cached."""
        return None


def sort_items(items: list[Item]) -> list[Item]:
    """Items in the order shards are planned: by split, then key."""
    order = {split: i for i, split in enumerate(SPLITS)}
    return sorted(items, key=lambda it: (order[it.split], it.key))


@dataclass(frozen=True)
class SourceOptions:
    """What the user said about a source beyond its name."""

    data_dir: str | None = None
    val_percent: float = 10
    test_percent: float = 10
    limit: int | None = None
    exclude: tuple[str, ...] = ()  # paths never read as data (the run's --out)
    label_key: str | None = None  # WebDataset: the key of the .json member holding the label


@dataclass(frozen=True)
class SourceKind:
    """A registered kind of source: whether a SOURCE argument names it, and how to open it."""

    name: str
    matches: Callable[[str], bool]
    open: Callable[[str, SourceOptions], Source]
    # the source again from what its describe() recorded (a cache manifest's ``source``)
    reopen: Callable[[dict[str, Any]], Source] | None = None
    # recorded fields that only say where the source is: a source found elsewhere is the same
    # source (its files' bytes are checked instead, see bottleneck.cache.inputs)
    location: tuple[str, ...] = ()


SOURCE_KINDS: list[SourceKind] = []


def register_source_kind(kind: SourceKind) -> SourceKind:
    """Add a source kind; kinds are tried in order of registration, the folder kind last."""
    SOURCE_KINDS.insert(len([k for k in SOURCE_KINDS if k.name != "folder"]), kind)
    return kind
