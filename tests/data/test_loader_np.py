"""The threaded loader: input order, a bounded look-ahead, errors at their item's turn."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from bottleneck.data.loader import ordered_map


def test_results_come_in_input_order_whatever_order_they_finish_in():
    delays = np.random.default_rng(1).uniform(0, 0.01, 40)

    def work(i: int) -> int:
        time.sleep(delays[i])  # later items often finish first
        return i

    assert list(ordered_map(work, range(40), workers=4, ahead=8)) == list(range(40))


def test_the_look_ahead_is_bounded():
    started: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            started.append(i)
        return i

    results = ordered_map(work, range(100), workers=4, ahead=5)
    assert next(results) == 0
    time.sleep(0.05)  # give the threads every chance to run ahead
    assert max(started) <= 5  # never more than `ahead` items past the one consumed
    assert list(results) == list(range(1, 100))


def test_threads_run_at_once():
    barrier = threading.Barrier(3, timeout=5)

    def work(i: int) -> int:
        barrier.wait()  # only passes when three items are being worked on together
        return i

    assert list(ordered_map(work, range(3), workers=3, ahead=3)) == [0, 1, 2]


def test_an_error_is_raised_at_its_items_turn():
    def work(i: int) -> int:
        if i == 3:
            raise OSError("disk gone")
        return i

    results = ordered_map(work, range(10), workers=2, ahead=4)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(OSError, match="disk gone"):
        next(results)
