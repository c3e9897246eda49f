"""The threaded loader: input order, a bounded look-ahead, failures as data."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from bottleneck.data.decode import decode_bytes
from bottleneck.data.fingerprint import content_hash
from bottleneck.data.loader import iter_batches, iter_decoded, load_one
from bottleneck.data.resize import resize_bilinear
from tests.data.encoded import jpeg, photo


def encoded(count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    return [jpeg(rng.integers(0, 256, (20 + i % 7, 30 + i % 5, 3), dtype=np.uint8))
            for i in range(count)]


def test_results_come_in_input_order_whatever_order_they_finish_in():
    rng = np.random.default_rng(1)
    delays = rng.uniform(0, 0.01, 40)

    def item(i: int):
        def load() -> np.ndarray:
            time.sleep(delays[i])  # later items often finish first
            return np.full((3, 4, 3), i, np.uint8)
        return load

    got = list(iter_decoded([item(i) for i in range(40)], workers=4, prefetch=8))
    assert [r.index for r in got] == list(range(40))
    assert all(r.image is not None and int(r.image[0, 0, 0]) == r.index for r in got)


def test_the_look_ahead_is_bounded_by_prefetch():
    pulled = []
    started = []
    lock = threading.Lock()

    def items():
        for i in range(50):
            pulled.append(i)

            def load(i=i) -> np.ndarray:
                with lock:
                    started.append(i)
                return np.zeros((2, 2, 3), np.uint8)
            yield load

    prefetch = 5
    for consumed, result in enumerate(iter_decoded(items(), workers=3, prefetch=prefetch)):
        assert result.index == consumed
        # handed out consumed + 1 items; at most `prefetch` more were read from the input
        assert len(pulled) <= consumed + 1 + prefetch
        time.sleep(0.001)
    assert len(pulled) == 50 and sorted(started) == list(range(50))


def test_failures_are_returned_as_reasons_not_raised(tmp_path):
    good = encoded(3)
    items = [good[0], b"", b"garbage, not an image", tmp_path / "missing.png", good[1],
             good[2][: len(good[2]) // 2], good[2]]
    got = list(iter_decoded(items, 16, workers=2, prefetch=3))
    errors = {r.index: r.error for r in got if r.error}
    assert set(errors) == {1, 2, 3, 5}
    assert "empty" in errors[1] and "cannot read" in errors[3] and "truncated" in errors[5]
    for r in got:
        if r.error is None:
            assert r.image.shape == (16, 16, 3) and r.image.dtype == np.float32


def test_each_result_is_decode_resize_and_hash():
    data = jpeg(photo())
    result = load_one(0, data, 32, decode_size=32)
    pixels = decode_bytes(data, 32)
    np.testing.assert_array_equal(result.image, resize_bilinear(pixels, 32))
    assert result.content_hash == content_hash(pixels)
    assert load_one(0, data).image.shape == photo().shape  # no size: the decoded pixels
    grey = load_one(1, np.zeros((5, 6), np.uint8))  # arrays are converted to RGB
    assert grey.image.shape == (5, 6, 3)


def test_batches_hold_batch_size_images_and_carry_the_failures():
    good = encoded(7)
    items = [good[0], b"bad", good[1], good[2], good[3], b"", good[4], good[5], good[6], b"x"]
    batches = list(iter_batches(items, 8, 3, workers=2, prefetch=2))
    assert [len(b.indices) for b in batches] == [3, 3, 1]
    assert [i for b in batches for i in b.indices] == [0, 2, 3, 4, 6, 7, 8]
    assert [i for b in batches for i, _ in b.failures] == [1, 5, 9]
    first = batches[0]
    assert first.images.shape == (3, 8, 8, 3) and first.content_hashes.dtype == np.uint64
    assert first.content_hashes[1] == content_hash(decode_bytes(good[1]))


def test_stopping_early_does_not_hang_and_rejects_bad_arguments():
    stream = iter_decoded(encoded(30), 8, workers=2, prefetch=4)
    assert next(stream).index == 0
    stream.close()
    with pytest.raises(ValueError):
        list(iter_decoded([], prefetch=0))
    with pytest.raises(ValueError):
        list(iter_batches([], 8, 0))
