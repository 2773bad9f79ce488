"""The producer thread ahead of its consumer: order, bound, errors, early stop."""

from __future__ import annotations

import threading
import time

import pytest

from action100m.common.prefetch import prefetched


def test_items_arrive_in_order_and_the_producer_stays_at_most_depth_ahead():
    produced = []

    def numbers():
        for i in range(50):
            produced.append(i)
            yield i

    consumed = []
    for item in prefetched(numbers(), depth=3):
        time.sleep(0.002)
        assert len(produced) - len(consumed) <= 3 + 2  # the queue, plus one in hand on each side
        consumed.append(item)
    assert consumed == list(range(50))


def test_a_producer_error_reaches_the_consumer():
    def failing():
        yield 1
        raise ValueError("decoder broke")

    got = []
    with pytest.raises(ValueError, match="decoder broke"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1]


def test_stopping_early_stops_the_producer():
    finished = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            finished.set()

    stream = prefetched(endless(), depth=2)
    assert next(stream) == 0
    stream.close()
    assert finished.wait(5)
