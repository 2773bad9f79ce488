"""What every stage servicer does around its own work: per-video status, caching, error codes.

A batch call never fails as a whole because of one video: the video's error becomes a FAILED
`VideoStatus` whose code says what kind of problem it is (the same codes a unary call would use).
Each video is published and reported the moment it is finished (`stream_videos`), so a call that
dies part-way loses only the videos still in flight.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import grpc

from action100m.v1 import common_pb2

from .errors import InputChanged, classify
from .grpc_server import DeadlineExceeded, is_alive, work_slot
from .inflight import InFlight
from .store import ArtifactStore
from .video import VideoFile

log = logging.getLogger("action100m.stage")


class StageItem(Protocol):
    """What every stage's request item has (EmbedItem, SegmentItem, CaptionItem, RefineItem)."""

    @property
    def video_uid(self) -> str: ...

    @property
    def output_uri(self) -> str: ...


ItemT = TypeVar("ItemT", bound=StageItem)
InputT = TypeVar("InputT")
ResultT = TypeVar("ResultT")


# Long enough for any real id (YouTube: 11, paths: a few hundred), short enough to bound every log
# line and key that holds one.
MAX_UID_CHARS = 1024


@dataclass
class VideoRun:
    """The status of one video while a batch call works on it."""

    video_uid: str
    started: float = field(default_factory=time.monotonic)
    outcome: int = common_pb2.OUTCOME_UNSPECIFIED
    error_code: str = ""
    error_message: str = ""

    def done(self, cached: bool = False) -> None:
        self.outcome = common_pb2.OUTCOME_CACHED if cached else common_pb2.OUTCOME_DONE

    def fail(self, error: BaseException) -> None:
        code, message = classify(error)
        if code == grpc.StatusCode.INTERNAL:
            log.exception("video %s failed unexpectedly", self.video_uid, exc_info=error)
        self.fail_with(code.name, message)

    def fail_with(self, code: str, message: str) -> None:
        self.outcome = common_pb2.OUTCOME_FAILED
        self.error_code, self.error_message = code, message

    def joined(self) -> None:
        self.outcome = common_pb2.OUTCOME_JOINED

    @property
    def failed(self) -> bool:
        return self.outcome == common_pb2.OUTCOME_FAILED

    def status(self) -> common_pb2.VideoStatus:
        return common_pb2.VideoStatus(
            video_uid=self.video_uid,
            outcome=self.outcome,  # type: ignore[arg-type]
            error_code=self.error_code,
            error_message=self.error_message,
            wall_seconds=time.monotonic() - self.started,
        )


def require_unique_uids(items: Sequence[Any], context: grpc.ServicerContext) -> None:
    """A request is wrong as a whole when it has no videos, names one twice or has an overlong uid."""
    if not items:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request names no videos")
    seen: set[str] = set()
    for item in items:
        if not item.video_uid:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "every video needs a video_uid")
        if len(item.video_uid) > MAX_UID_CHARS:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"video_uid {item.video_uid[:40]!r}... is longer than {MAX_UID_CHARS} characters",
            )
        if item.video_uid in seen:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"video_uid {item.video_uid[:80]!r} appears twice")
        seen.add(item.video_uid)


def service_info(
    service: str,
    defaults: Any,
    models: Sequence[common_pb2.ModelInfo] = (),
    output_settings: dict[str, Any] | None = None,
) -> common_pb2.ServiceInfo:
    """The Info answer: version, models, the effective default options (the stage's Options
    message), the settings that change the output, and where the service runs."""
    from .version import __version__

    info = common_pb2.ServiceInfo(service=service, version=__version__, models=list(models))
    info.default_options.Pack(defaults)
    info.output_settings.update(output_settings or {})
    info.runtime.update(runtime())
    return info


# Environment variables that say where a service runs (`a100m plan` sets them per service).
RUNTIME_ENV = (
    "CUDA_VISIBLE_DEVICES",
    "A100M_DEVICE",
    "A100M_GPU_MEMORY_FRACTION",
    "A100M_REFINER_GPU_MEMORY_UTILIZATION",
    "A100M_REFINER_TENSOR_PARALLEL_SIZE",
)


def runtime() -> dict[str, str]:
    return {name: os.environ[name] for name in RUNTIME_ENV if name in os.environ}


def local_video(store: ArtifactStore, item: Any, files: contextlib.ExitStack[Any]) -> VideoFile:
    """The item's video as a local file (kept while `files` is open), checked first against the
    content signature it was planned with: a video replaced or edited since fails (InputChanged)
    rather than being read against artifacts computed from the old one."""
    if item.video_signature:
        now = store.signature(item.video_uri)
        if now != item.video_signature:
            raise InputChanged(
                f"{item.video_uri}: changed since planning (planned {item.video_signature}, now {now}); "
                "rerun to plan it again"
            )
    path = files.enter_context(store.local_path(item.video_uri))
    names_stream = "video_stream" in item.DESCRIPTOR.fields_by_name and item.HasField("video_stream")
    return VideoFile(str(path), item.video_stream if names_stream else None)


def input_uris(item: Any) -> list[str]:
    """The URIs a request item reads: its `*_uri` fields but `output_uri` (a proto message or an object)."""
    names = [f.name for f in item.DESCRIPTOR.fields] if hasattr(item, "DESCRIPTOR") else list(vars(item))
    return [getattr(item, name) for name in names if name.endswith("_uri") and name != "output_uri"]


Keep = Callable[[], None]
"""Called between units of work; raises DeadlineExceeded once nobody wants the result any more."""


def stream_videos(
    items: Sequence[ItemT],
    *,
    store: ArtifactStore,
    overwrite: bool,
    inflight: InFlight,
    alive: Callable[[], bool],
    prepare: Callable[[ItemT, contextlib.ExitStack[Any]], InputT],
    process: Callable[[list[tuple[str, InputT]], Keep], Iterator[tuple[str, ResultT | BaseException]]],
    publish: Callable[[ItemT, ResultT], object],
) -> Iterator[tuple[ItemT, VideoRun, ResultT | None]]:
    """The batch call of every stage, one (item, run, result) per video as soon as it is settled.

    Per item: CACHED if its output exists (unless `overwrite`); JOINED when another call of this
    process computes it (reported once that call publishes it), or when an earlier item of this
    call has the same output (one file under several uids: computed once, reported for each);
    otherwise `prepare(item, files)` gives its input (local copies stay open in `files` until
    `process` is done), and `process` yields (video_uid, result or exception) in any order, as
    videos finish; each result is published by `publish(item, result)` before it is reported. Own
    work runs inside a work slot and goes on while the caller is `alive()` or another call has joined it.
    """
    firsts: dict[str, ItemT] = {}
    for item in items:
        firsts.setdefault(item.output_uri, item)
    unique = list(firsts.values())
    settled: dict[str, tuple[VideoRun, ResultT | None]] = {}
    for item, run, value in _stream_unique(unique, store, overwrite, inflight, alive, prepare, process, publish):
        settled[item.output_uri] = (run, value)
        yield item, run, value
    for item in items:
        if firsts[item.output_uri] is item:
            continue
        first, value = settled[item.output_uri]
        copy = VideoRun(item.video_uid)
        if first.failed:
            copy.fail_with(first.error_code, first.error_message)
        else:
            copy.joined()
        yield item, copy, value


def _stream_unique(
    items: Sequence[ItemT],
    store: ArtifactStore,
    overwrite: bool,
    inflight: InFlight,
    alive: Callable[[], bool],
    prepare: Callable[[ItemT, contextlib.ExitStack[Any]], InputT],
    process: Callable[[list[tuple[str, InputT]], Keep], Iterator[tuple[str, ResultT | BaseException]]],
    publish: Callable[[ItemT, ResultT], object],
) -> Iterator[tuple[ItemT, VideoRun, ResultT | None]]:
    """`stream_videos` over items whose outputs differ."""
    runs = {item.video_uid: VideoRun(item.video_uid) for item in items}
    todo: list[ItemT] = []
    for item in items:
        run = runs[item.video_uid]
        try:
            store.resolve_writable(item.output_uri, inputs=input_uris(item))
            if not overwrite and store.exists(item.output_uri):
                run.done(cached=True)
                yield item, run, None
                continue
            todo.append(item)
        except Exception as error:
            run.fail(error)
            yield item, run, None
    mine, joined = inflight.claim(item.output_uri for item in todo)
    unfinished = set(mine)

    def wanted() -> bool:
        return alive() or inflight.wanted(unfinished)

    def keep_going() -> None:
        if not wanted():
            raise DeadlineExceeded("the caller left and no other call waits for these videos")

    try:
        own = [item for item in todo if item.output_uri in mine]
        if own:
            with work_slot(wanted), contextlib.ExitStack() as files:
                inputs: list[tuple[str, InputT]] = []
                for item in own:
                    try:
                        inputs.append((item.video_uid, prepare(item, files)))
                    except Exception as error:
                        yield _settle(item, runs[item.video_uid], error, inflight, unfinished)
                by_uid = {item.video_uid: item for item in own}
                for uid, value in process(inputs, keep_going) if inputs else ():
                    item = by_uid[uid]
                    if not isinstance(value, BaseException):
                        try:
                            publish(item, value)
                        except Exception as error:
                            value = error
                    yield _settle(item, runs[uid], value, inflight, unfinished)
    finally:
        inflight.abandon(unfinished, "the call computing this video stopped before it finished; retry")
    yield from _joined_results(todo, joined, runs, inflight, alive)


def _joined_results(
    todo: Sequence[ItemT],
    joined: dict[str, Any],
    runs: dict[str, VideoRun],
    inflight: InFlight,
    alive: Callable[[], bool],
) -> Iterator[tuple[ItemT, VideoRun, Any]]:
    """The videos another call of this process computed for us, as each of those calls publishes it."""
    for item in todo:
        work = joined.get(item.output_uri)
        if work is None:
            continue
        try:
            while not work.done.wait(0.2):
                if not alive():
                    raise DeadlineExceeded("the caller left while waiting for a video another call computes")
        finally:
            inflight.leave(work)
        run = runs[item.video_uid]
        if work.failed:
            run.fail_with(work.error_code, work.error_message)
        else:
            run.joined()
        yield item, run, work.value


class StageServicer:
    """What the four servicers share: their artifact store and their registry of videos in flight."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store
        self.inflight = InFlight()

    def stream(
        self,
        request: Any,
        context: grpc.ServicerContext,
        prepare: Callable[[Any, contextlib.ExitStack[Any]], Any],
        process: Callable[[list[tuple[str, Any]], Keep], Iterator[tuple[str, Any]]],
        publish: Callable[[Any, Any], object],
    ) -> Iterator[tuple[Any, VideoRun, Any]]:
        """`stream_videos` over the request's videos, alive while its caller is."""
        return stream_videos(
            request.videos,
            store=self.store,
            overwrite=request.overwrite,
            inflight=self.inflight,
            alive=lambda: is_alive(context),
            prepare=prepare,
            process=process,
            publish=publish,
        )


def _settle(
    item: ItemT, run: VideoRun, value: Any, inflight: InFlight, unfinished: set[str]
) -> tuple[ItemT, VideoRun, Any]:
    """Records a video's outcome, releases its in-flight entry, and gives what the call yields."""
    unfinished.discard(item.output_uri)
    if isinstance(value, BaseException):
        run.fail(value)
        inflight.finish(item.output_uri, error_code=run.error_code, error_message=run.error_message)
        return item, run, None
    run.done()
    inflight.finish(item.output_uri, value)
    return item, run, value
