"""Run a producer (decoding, preprocessing) on a CPU thread ahead of its consumer (the GPU loop).

The producer is an ordinary generator; `prefetched` drains it on a thread into a bounded queue,
so at most `depth` items wait in memory, and hands the items over in order. An exception in the
producer is raised in the consumer; a consumer that stops early stops the producer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


class _Raised:
    def __init__(self, error: BaseException):
        self.error = error


def prefetched(items: Iterable[T], depth: int = 8, name: str = "prefetch") -> Iterator[T]:
    handoff: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as error:
            put(_Raised(error))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's cleanup (closing a video) runs now, not at garbage collection
        put(_END)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item  # type: ignore[misc]  # the producer put a T
    finally:
        stop.set()
        thread.join(timeout=5)
