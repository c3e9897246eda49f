"""A cache's rows as a PyTorch ``IterableDataset`` of ``(features, labels or targets)`` batches,
read shard by shard (:meth:`Cache.iter_batches`), for plain PyTorch training loops; Keras on
any backend takes :func:`bottleneck.cache.batches.feature_batches` instead.

Use it with ``DataLoader(dataset, batch_size=None)`` (the batches come made). With several
DataLoader workers, worker ``i`` of ``n`` yields batches ``i, i + n, …``, so each batch comes
once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def torch_dataset(cache: Any, split: str | None = None, batch_size: int = 256,
                  target: str = "labels") -> Any:
    """An ``IterableDataset`` of float32 feature and int64 label (or float64 target) tensors."""
    import torch
    from torch.utils.data import IterableDataset, get_worker_info

    class CacheRows(IterableDataset):  # type: ignore[misc,type-arg]
        """Batches of one split's cached rows."""

        def __init__(self) -> None:
            super().__init__()
            self.cache, self.split, self.batch_size, self.target = cache, split, batch_size, \
                target
            rows = cache.split_counts().get(split, 0) if split else cache.rows
            self.rows = int(rows)

        def __iter__(self) -> Iterator[tuple[Any, Any]]:
            worker = get_worker_info()
            first, step = (worker.id, worker.num_workers) if worker is not None else (0, 1)
            for number, batch in enumerate(self.cache.iter_batches(self.split, self.batch_size)):
                if number % step == first:
                    features = np.ascontiguousarray(batch["features"], dtype=np.float32)
                    yield torch.from_numpy(features), torch.from_numpy(batch[self.target])

    return CacheRows()
