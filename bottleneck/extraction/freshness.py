"""Whether an earlier run's done shards still hold the features of the files they name.

Each shard's sidecar (:mod:`bottleneck.cache.inputs`) records the size, mtime and sha256 of
its input files. A re-run keeps a shard only while every input is the same bytes: a stat
first, the sha256 only where the stat moved (a copied or touched dataset is hashed once, kept,
and its new times recorded). A shard with a changed input is left out of the keys handed to
:func:`~bottleneck.extraction.plan.replan`, which recomputes it as a shard that lost images.
Shards made before sidecars existed are kept as before, unless the source moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bottleneck.cache.inputs import compare_all, read_inputs, write_inputs
from bottleneck.cache.manifest import Manifest
from bottleneck.data.sources import Source


@dataclass
class Freshness:
    """The shard keys still valid, and the inputs found changed since they were cached."""

    keys: dict[str, list[str]]
    changed: list[str] = field(default_factory=list)


def check_inputs(outs: list[Path], old: Manifest, keys: dict[str, list[str]],
                 source: Source, moved: bool) -> Freshness:
    """Drop from ``keys`` (shard file → its input keys) every shard whose files changed.

    ``moved``: the source is recorded at another place than now; shards without a sidecar
    then cannot be trusted and are recomputed. The sidecars of kept shards whose files only
    got new times are rewritten (in every layer's folder ``outs``) with those times.
    """
    present = {item.key for item in source.items()}
    records = {record.file: record for record in old.shards}
    found = Freshness({})
    for file, shard_keys in keys.items():
        record = records[file]
        if not set(shard_keys) <= present:  # lost an image: replan recomputes it anyway
            found.keys[file] = shard_keys
            continue
        try:
            recorded = read_inputs(outs[0], file, record.inputs_sha256)
        except (OSError, ValueError):  # a damaged sidecar: nothing to trust
            continue
        if recorded is None:
            if not moved:
                found.keys[file] = shard_keys
            continue
        if set(recorded) != set(shard_keys):
            continue
        compared = compare_all({key: source.file_of(key) for key in recorded}, recorded)
        changed = sorted(key for key, (differs, _) in compared.items() if differs)
        if changed:
            found.changed += changed
            continue
        now = {key: identity for key, (_, identity) in compared.items()}
        if now != recorded:  # the same bytes with new times: remember the times
            for folder in outs:
                write_inputs(folder, file, record.inputs_sha256, now)
        found.keys[file] = shard_keys
    return found
