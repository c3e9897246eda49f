"""Decode, resize and hash images in threads, in order, with a bounded look-ahead.

simplejpeg and Pillow release the GIL while they decode, and the NumPy resize mostly runs
outside it, so threads scale across cores without the cost of processes. At most
``prefetch`` items are submitted and not yet handed out: memory stays bounded however far
ahead the workers could run, and an input generator is read only that far ahead. A file that
cannot be decoded comes back as data (its ``ValueError`` reason), never as an exception.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import numpy as np

from bottleneck.data.decode import decode_bytes, decode_file, to_rgb
from bottleneck.data.fingerprint import content_hash
from bottleneck.data.resize import resize_bilinear

# a path, encoded bytes, decoded pixels, or a callable returning any of them
Pixels: TypeAlias = "str | Path | bytes | np.ndarray"
Source: TypeAlias = "Pixels | Callable[[], Pixels]"


@dataclass
class Loaded:
    """One item: its pixels (float32 size×size×3 when resized, else uint8 H×W×3) and content
    hash, or the reason it could not be decoded."""

    index: int
    image: np.ndarray | None = None
    content_hash: int | None = None
    error: str | None = None


@dataclass
class Batch:
    """Up to ``batch_size`` decoded images stacked, and the failures met on the way."""

    indices: np.ndarray  # int64, positions in the input
    images: np.ndarray  # float32 (n, size, size, 3)
    content_hashes: np.ndarray  # uint64
    failures: list[tuple[int, str]] = field(default_factory=list)


def load_pixels(item: Source, decode_size: int | None = None) -> np.ndarray:
    """uint8 H×W×3 from a path, encoded bytes, an array, or a callable giving one of them."""
    value = item() if callable(item) else item
    if isinstance(value, (str, Path)):
        return decode_file(value, decode_size)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return decode_bytes(bytes(value), decode_size)
    return to_rgb(np.asarray(value))


def load_one(index: int, item: Source, image_size: int | None = None,
             decode_size: int | None = None, hashes: bool = True) -> Loaded:
    """Decode (and resize to ``image_size``, and hash) one item; a ``ValueError`` becomes
    the result's ``error``."""
    try:
        pixels = load_pixels(item, decode_size)
    except ValueError as exc:
        return Loaded(index, error=str(exc) or type(exc).__name__)
    digest = content_hash(pixels) if hashes else None
    image = resize_bilinear(pixels, image_size) if image_size else pixels
    return Loaded(index, image, digest)


def iter_decoded(items: Iterable[Source], image_size: int | None = None, *,
                 decode_size: int | None = None, workers: int | None = None,
                 prefetch: int = 64, hashes: bool = True) -> Iterator[Loaded]:
    """:func:`load_one` of every item on ``workers`` threads, yielded in input order, with
    never more than ``prefetch`` items in flight (submitted and not yet yielded)."""
    if prefetch < 1:
        raise ValueError(f"prefetch must be at least 1, got {prefetch}")
    workers = workers or os.cpu_count() or 1
    pending: deque[Future[Loaded]] = deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="decode")
    try:
        for index, item in enumerate(items):
            pending.append(pool.submit(load_one, index, item, image_size, decode_size, hashes))
            if len(pending) >= prefetch:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:  # also when the consumer stops early: drop what has not started
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def iter_batches(items: Iterable[Source], image_size: int, batch_size: int, *,
                 decode_size: int | None = None, workers: int | None = None,
                 prefetch: int = 2) -> Iterator[Batch]:
    """Batches of ``batch_size`` decoded images (the last may be smaller), in input order;
    ``prefetch`` batches' worth of items at most in flight. Failures ride along with the
    batch during which they were met (a batch may hold only failures at the end)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    done: list[Loaded] = []
    failures: list[tuple[int, str]] = []
    for loaded in iter_decoded(items, image_size, decode_size=decode_size, workers=workers,
                               prefetch=max(1, prefetch) * batch_size):
        if loaded.error is not None:
            failures.append((loaded.index, loaded.error))
            continue
        done.append(loaded)
        if len(done) == batch_size:
            yield _stack(done, failures, image_size)
            done, failures = [], []
    if done or failures:
        yield _stack(done, failures, image_size)


def _stack(done: list[Loaded], failures: list[tuple[int, str]], size: int) -> Batch:
    images = (np.stack([d.image for d in done]) if done  # type: ignore[misc]
              else np.zeros((0, size, size, 3), np.float32))
    return Batch(np.array([d.index for d in done], np.int64), images,
                 np.array([d.content_hash for d in done], np.uint64), failures)
