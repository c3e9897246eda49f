"""Decoding in threads, in order, a bounded distance ahead of whoever consumes it.

simplejpeg and Pillow release the GIL while they decode, and NumPy while it resizes, so
threads give real parallelism without pickling pixels between processes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(function: Callable[[T], R], items: Iterable[T], workers: int,
                ahead: int, threaded: bool = False) -> Iterator[R]:
    """``function(item)`` for each item, in order, on ``workers`` threads, never more than
    ``ahead`` results computed ahead of the consumer (memory stays bounded). An exception
    raised by ``function`` is raised here, at its item's turn. One worker runs in the
    consumer's thread unless ``threaded``."""
    ahead = max(1, ahead)
    if workers < 1 or workers == 1 and not threaded:
        yield from map(function, items)
        return
    pending: deque[Future[R]] = deque()
    source = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        try:
            for item in source:
                pending.append(pool.submit(function, item))
                if len(pending) >= ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
