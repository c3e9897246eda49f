"""Leak check: images whose decoded pixels are identical but sit in different splits."""

from __future__ import annotations

from collections import defaultdict

from bottleneck.cache import Cache


def cross_split_duplicates(cache: Cache) -> list[list[dict[str, str]]] | None:
    """Groups of rows with the same content hash that span more than one split.

    None when the cache has no ``content_hash`` column (made before it existed).
    """
    groups: dict[int, list[dict[str, str]]] = defaultdict(list)
    try:
        hashes = cache.column("content_hash")
    except KeyError:  # h5py: no such dataset
        return None
    for key, split, digest in zip(cache.column("paths"), cache.column("split"), hashes,
                                  strict=True):
        groups[int(digest)].append({"path": str(key), "split": str(split)})
    return [rows for rows in groups.values() if len({r["split"] for r in rows}) > 1]
