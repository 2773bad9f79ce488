"""Videos a service process is computing right now, keyed by output URI.

A client whose connection dropped retries its call; a second pipeline run may name the same
videos. Either way the new call finds the videos in this registry and waits for the work already
under way (it *joins* it) instead of computing them a second time. The owner of the work keeps
going while anyone waits for it, even if its own caller has left.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Work:
    """One video being computed by some call; resolved once, when it is published or has failed."""

    key: str
    done: threading.Event = field(default_factory=threading.Event)
    waiters: int = 0
    error_code: str = ""  # a gRPC status code name when the work failed
    error_message: str = ""
    value: Any = None  # the stage's result object, for the joiners' statistics

    @property
    def failed(self) -> bool:
        return bool(self.error_code)


class InFlight:
    """The registry of one process; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._work: dict[str, Work] = {}

    def claim(self, keys: Iterable[str]) -> tuple[set[str], dict[str, Work]]:
        """Claims the keys nobody computes; returns (claimed, {key: work to join} for the others)."""
        claimed: set[str] = set()
        joined: dict[str, Work] = {}
        with self._lock:
            for key in keys:
                work = self._work.get(key)
                if work is None:
                    self._work[key] = Work(key)
                    claimed.add(key)
                else:
                    work.waiters += 1
                    joined[key] = work
        return claimed, joined

    def leave(self, work: Work) -> None:
        """A joiner stops waiting (its caller left)."""
        with self._lock:
            work.waiters -= 1

    def wanted(self, keys: Iterable[str]) -> bool:
        """Whether another call waits for any of these keys."""
        with self._lock:
            return any(self._work[k].waiters > 0 for k in keys if k in self._work)

    def finish(self, key: str, value: Any = None, error_code: str = "", error_message: str = "") -> None:
        """Resolves the work on `key` (published, or failed with a status code) and forgets it."""
        with self._lock:
            work = self._work.pop(key, None)
        if work is not None:
            work.value, work.error_code, work.error_message = value, error_code, error_message
            work.done.set()

    def abandon(self, keys: Iterable[str], reason: str) -> None:
        """The owner stopped before finishing these keys: joiners report UNAVAILABLE, which callers retry."""
        for key in list(keys):
            self.finish(key, error_code="UNAVAILABLE", error_message=reason)
