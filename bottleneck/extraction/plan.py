"""Plan shards: each a pure function of (config, its list of items), keyed by their hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bottleneck.cache.manifest import ShardRecord, shard_name
from bottleneck.data.sources import Item
from bottleneck.errors import UserError


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
        digest = hashlib.sha256()
        for item in self.items:
            digest.update(f"{item.key}\0{item.label}\0{item.split}\n".encode())
        return digest.hexdigest()

    def record(self) -> ShardRecord:
        """The manifest's entry for this shard, not yet done."""
        return ShardRecord(self.file, len(self.items), self.inputs_sha256)


def plan_shards(items: list[Item], shard_size: int) -> list[ShardPlan]:
    """Cut the sorted item list into shards of ``shard_size`` items."""
    if shard_size <= 0:
        raise UserError("--shard-size must be a positive number of images.")
    return [ShardPlan(i, items[start:start + shard_size])
            for i, start in enumerate(range(0, len(items), shard_size))]
