"""The cache on disk: ``manifest.json`` (owned by :mod:`.manifest`), ``shard-NNNNN.h5`` files
(:mod:`.shards`), optional targets file (:mod:`.targets`), read by :class:`Cache`."""

from bottleneck.cache.manifest import FORMAT, MANIFEST, Manifest, ShardRecord, is_cache
from bottleneck.cache.opening import open_cache
from bottleneck.cache.reader import TARGETS_FILE, Cache

__all__ = ["FORMAT", "MANIFEST", "TARGETS_FILE", "Cache", "Manifest", "ShardRecord",
           "is_cache", "open_cache"]
