"""A pass over one split decodes each shard's split column once per cache object: a streamed
fit's later passes (an L-BFGS step, an epoch) read only features and labels; a shard
rewritten under another sha256 is read afresh."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from bottleneck.cache import open_cache
from bottleneck.cache.synthetic import gaussian_shards, write_cache


def test_later_passes_reuse_the_split_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    root = write_cache(tmp_path / "cache", gaussian_shards(300, 8, 3, shard_rows=64),
                       ["a", "b", "c"], (8,))
    cache = open_cache(root)
    first = [b["labels"] for b in cache.iter_batches("train", 50)]

    def refuse(self: h5py.Dataset, *args: object, **kwargs: object) -> None:
        raise AssertionError("the split column was decoded again")

    monkeypatch.setattr(h5py.Dataset, "asstr", refuse)
    again = [b["labels"] for b in cache.iter_batches("train", 50)]
    assert len(first) == len(again) and all(
        np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert sum(map(len, again)) == cache.split_counts()["train"]
    cache.manifest.shards[0].sha256 = "0" * 64  # another shard content: not the memo's
    with h5py.File(cache.root / cache.manifest.shards[0].file, "r") as handle, \
            pytest.raises(AssertionError, match="decoded again"):
        cache._split_rows(handle, "train", cache.manifest.shards[0])
