"""Leak check: images whose decoded pixels are identical but sit in different splits."""

from __future__ import annotations

from collections import defaultdict

import h5py

from bottleneck.cache import Cache


def cross_split_duplicates(cache: Cache) -> list[list[dict[str, str]]] | None:
    """Groups of rows with the same content hash that span more than one split.

    None when the cache has no ``content_hash`` column (made before it existed).
    """
    groups: dict[int, list[dict[str, str]]] = defaultdict(list)
    for path in cache.shard_paths:
        with h5py.File(path, "r") as handle:
            if "content_hash" not in handle:
                return None
            for key, split, digest in zip(handle["paths"].asstr()[:], handle["split"].asstr()[:],
                                          handle["content_hash"][:], strict=True):
                groups[int(digest)].append({"path": str(key), "split": str(split)})
    return [rows for rows in groups.values() if len({r["split"] for r in rows}) > 1]
