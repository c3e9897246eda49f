"""Plan shards: each a pure function of (config, its list of items), known by their hash.

A first run cuts the sorted item list into ``shard_size`` pieces. A later run over the same
source keeps every shard whose items are all still there (same key, label and split) — done
shards as they are, unfinished ones to be computed — and puts the items no kept shard holds
into new shards numbered after the last one. So a grown folder computes only its new
images, and a shard that lost an image is recomputed (its other images go to new shards).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bottleneck.cache.manifest import Manifest, ShardRecord, shard_index, shard_name
from bottleneck.data.sources import Item, sort_items
from bottleneck.errors import UserError


def inputs_sha256(items: list[Item]) -> str:
    """The identity of a shard: sha256 over its items' (key, label, split), in plan order."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.key}\0{item.label}\0{item.split}\n".encode())
    return digest.hexdigest()


@dataclass
class ShardPlan:
    """One shard's inputs: which items, in which order."""

    index: int
    items: list[Item]

    @property
    def file(self) -> str:
        return shard_name(self.index)

    @property
    def inputs_sha256(self) -> str:
        return inputs_sha256(self.items)

    def record(self) -> ShardRecord:
        """The manifest's entry for this shard, not yet done."""
        return ShardRecord(self.file, len(self.items), self.inputs_sha256)


def cut(items: list[Item], shard_size: int, first_index: int = 0) -> list[ShardPlan]:
    """Consecutive pieces of ``shard_size`` items, numbered from ``first_index``."""
    if shard_size <= 0:
        raise UserError("--shard-size must be a positive number of images.")
    return [ShardPlan(first_index + i, items[start:start + shard_size])
            for i, start in enumerate(range(0, len(items), shard_size))]


def plan_shards(items: list[Item], shard_size: int) -> list[ShardPlan]:
    """A first run's plan: the sorted item list cut into shards of ``shard_size`` items."""
    return cut(items, shard_size)


@dataclass
class Replan:
    """A later run's plan and what it found."""

    plans: list[ShardPlan]
    kept: list[ShardRecord]  # done shards carried over as they are
    dropped: list[ShardRecord]  # shards whose images changed or went away


def replan(items: list[Item], old: Manifest, shard_keys: dict[str, list[str]],
           shard_size: int) -> Replan:
    """Plan a run over ``items`` that keeps what ``old`` holds and is still valid.

    ``shard_keys`` maps each done shard's file to the keys it was planned with (its rows and
    its failures); unfinished shards are recognised by re-cutting what no done shard holds.
    """
    by_key = {item.key: item for item in items}
    kept, dropped, claimed = [], [], set()
    for record in old.shards:
        if not record.done:
            continue
        keys = shard_keys.get(record.file)
        members = [by_key.get(k) for k in keys] if keys is not None else [None]
        if None in members or inputs_sha256(sort_items(members)) != record.inputs_sha256:
            dropped.append(record)
            continue
        kept.append(record)
        claimed.update(keys)
    rest = [item for item in items if item.key not in claimed]
    pending = {r.inputs_sha256: r for r in old.shards if not r.done}
    used = {shard_index(r.file) for r in old.shards}
    next_index = max(used, default=-1) + 1
    plans = []
    for piece in cut(rest, shard_size):
        earlier = pending.pop(piece.inputs_sha256, None)
        if earlier is not None:  # an unfinished shard of the earlier run: the same file name
            plans.append(ShardPlan(shard_index(earlier.file), piece.items))
        else:
            plans.append(ShardPlan(next_index, piece.items))
            next_index += 1
    return Replan(plans, kept, dropped)
