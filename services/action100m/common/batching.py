"""Decode on a thread, batch across videos, finish per video: the loop of the GPU stages.

A producer (decoding and preprocessing, on a CPU thread via `prefetched`) emits typed events per
video: `VideoStarted`, any number of `VideoChunk`, then `VideoEnded`, or `VideoFailed` at any
point. Each started video gets a `VideoSession` that turns its chunks into work items (encoder
windows, caption jobs). Items of any video are queued by batch key and run `batch_size` at a time;
each output goes back to its video's session. A video is finished, and yielded at once, when it
has ended and none of its items is waiting or running, so its result can be published while
other videos are still being worked on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from . import work
from .prefetch import prefetched

InfoT = TypeVar("InfoT")
DataT = TypeVar("DataT")
W = TypeVar("W", bound="WorkItem")
O = TypeVar("O")  # noqa: E741 - the output of one work item
R = TypeVar("R")
O_contra = TypeVar("O_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)


@dataclass(frozen=True)
class VideoStarted(Generic[InfoT]):
    video_uid: str
    info: InfoT


@dataclass(frozen=True)
class VideoChunk(Generic[DataT]):
    video_uid: str
    data: DataT


@dataclass(frozen=True)
class VideoEnded(Generic[InfoT]):
    video_uid: str
    info: InfoT


@dataclass(frozen=True)
class VideoFailed:
    """The video failed (unreadable, corrupt...); the others go on."""

    video_uid: str
    error: BaseException


VideoEvent = VideoStarted[Any] | VideoChunk[Any] | VideoEnded[Any] | VideoFailed


class WorkItem(Protocol):
    @property
    def video_uid(self) -> str: ...


class VideoSession(Protocol[W, O_contra, R_co]):
    """One video's state while the loop works on it."""

    def on_chunk(self, data: Any) -> Sequence[W]:
        """Work items that this chunk makes ready."""
        ...

    def on_end(self, info: Any) -> Sequence[W]:
        """Work items that only the end of the video makes ready (a tail window, say)."""
        ...

    def apply(self, item: W, output: O_contra) -> None:
        """Takes the output of one of its items."""
        ...

    def finish(self) -> R_co:
        """The video's result, once every item has been applied."""
        ...


def cross_video_batches(
    events: Iterable[VideoEvent],
    open_session: Callable[[VideoStarted[Any]], VideoSession[W, O, R]],
    run_batch: Callable[[list[W]], Sequence[O]],
    batch_size: int,
    batch_key: Callable[[W], Hashable] = lambda item: None,
    keep_going: Callable[[], None] = lambda: None,
    queue_depth: int = 8,
    name: str = "decode",
    unit: str = "items",
) -> Iterator[tuple[str, R | BaseException]]:
    """Yields (video_uid, result or error) for every video of `events`, as each finishes.

    A batch that raises is run again video by video, so that a failure fails only the video whose
    items cause it (one broken input never fails the others of its batch); `keep_going` is called
    before every batch and may raise to stop the whole loop. Items are counted as `unit`s of work
    (`work`) when queued and when their batch is done.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batcher = _Batcher(open_session, run_batch, batch_size, batch_key, keep_going, unit)
    for event in prefetched(events, queue_depth, name):
        yield from batcher.on_event(event)
    yield from batcher.flush()


class _Batcher(Generic[W, O, R]):
    """The state of `cross_video_batches`: each video's session, its items not yet computed, and
    the queues of items waiting for a full batch (one queue per batch key)."""

    def __init__(
        self,
        open_session: Callable[[VideoStarted[Any]], VideoSession[W, O, R]],
        run_batch: Callable[[list[W]], Sequence[O]],
        batch_size: int,
        batch_key: Callable[[W], Hashable],
        keep_going: Callable[[], None],
        unit: str = "items",
    ):
        self.open_session, self.run_batch, self.batch_size = open_session, run_batch, batch_size
        self.batch_key, self.keep_going, self.unit = batch_key, keep_going, unit
        self.sessions: dict[str, VideoSession[W, O, R]] = {}
        self.pending: dict[str, int] = defaultdict(int)
        self.ended: set[str] = set()
        self.queues: dict[Hashable, list[W]] = defaultdict(list)

    def on_event(self, event: VideoEvent) -> Iterator[tuple[str, R | BaseException]]:
        uid = event.video_uid
        if isinstance(event, VideoFailed):
            self.drop(uid)
            yield uid, event.error
            return
        if not isinstance(event, VideoStarted) and uid not in self.sessions:
            return  # the video failed while its chunks were still queued
        try:  # a session that raises fails its video only
            if isinstance(event, VideoStarted):
                self.sessions[uid] = self.open_session(event)
                return
            if isinstance(event, VideoChunk):
                ready = self.sessions[uid].on_chunk(event.data)
            else:
                self.ended.add(uid)
                ready = self.sessions[uid].on_end(event.info)
        except Exception as error:
            self.drop(uid)
            yield uid, error
            return
        yield from self.enqueue(ready)
        yield from self.finished()

    def flush(self) -> Iterator[tuple[str, R | BaseException]]:
        """The partial batches left when the events end."""
        for key in list(self.queues):
            while self.queues[key]:
                batch, self.queues[key] = self.queues[key][: self.batch_size], self.queues[key][self.batch_size :]
                yield from self.run(batch)
        yield from self.finished()

    def drop(self, uid: str) -> None:
        self.sessions.pop(uid, None)
        self.pending.pop(uid, None)
        self.ended.discard(uid)
        for key in self.queues:
            kept = [item for item in self.queues[key] if item.video_uid != uid]
            work.done(self.unit, len(self.queues[key]) - len(kept))  # never to run: no longer to do
            self.queues[key] = kept

    def finished(self) -> Iterator[tuple[str, R | BaseException]]:
        for uid in [u for u in self.ended if self.pending[u] == 0]:
            session = self.sessions[uid]
            self.drop(uid)
            try:
                yield uid, session.finish()
            except Exception as error:
                yield uid, error

    def run(self, items: list[W]) -> Iterator[tuple[str, R | BaseException]]:
        self.keep_going()
        try:
            outputs = self.run_batch(items)
        except Exception as error:
            videos = list(dict.fromkeys(item.video_uid for item in items))
            if len(videos) > 1:  # one video's input may be what broke it: each alone, so only that one fails
                for uid in videos:
                    yield from self.run([item for item in items if item.video_uid == uid])
                return
            work.done(self.unit, len(items))
            if videos[0] in self.sessions:
                self.drop(videos[0])
                yield videos[0], error
            return
        work.done(self.unit, len(items))
        for item, output in zip(items, outputs, strict=True):
            session = self.sessions.get(item.video_uid)
            if session is not None:
                session.apply(item, output)
                self.pending[item.video_uid] -= 1
        yield from self.finished()

    def enqueue(self, items: Sequence[W]) -> Iterator[tuple[str, R | BaseException]]:
        work.planned(self.unit, len(items))
        for item in items:
            self.pending[item.video_uid] += 1
            queue = self.queues[self.batch_key(item)]
            queue.append(item)
            if len(queue) >= self.batch_size:
                self.queues[self.batch_key(item)] = []
                yield from self.run(queue)
