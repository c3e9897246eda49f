"""Open a cache wherever it is: a local folder (:mod:`.reader`) or a URL (:mod:`.remote`,
imported only for URLs, so a local run never loads the remote machinery)."""

from __future__ import annotations

from pathlib import Path

from bottleneck.cache.reader import Cache, open_local_cache
from bottleneck.storage.location import is_url


def open_cache(root: str | Path) -> Cache:
    """Open a complete cache: a directory, or a URL whose shards are fetched and verified."""
    if is_url(root):
        from bottleneck.cache.remote import open_remote_cache

        return open_remote_cache(str(root))
    return open_local_cache(root)
