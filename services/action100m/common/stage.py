"""What every stage servicer does around its own work: per-video status, caching, error codes.

A batch call never fails as a whole because of one video: the video's error becomes a FAILED
`VideoStatus` whose code says what kind of problem it is (the same codes a unary call would use).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from action100m.v1 import common_pb2

from .store import ArtifactNotFound, ArtifactStore
from .uris import UriError
from .video import VideoError, VideoNotFound

log = logging.getLogger("action100m.stage")


class StageInputError(ValueError):
    """Input that is present but wrong (bad shapes, NaNs, an inconsistent artifact)."""


@dataclass
class VideoFailed:
    """A producer's message that one video of a batch failed (the others go on)."""

    video_uid: str
    error: BaseException


def classify(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message a failed video reports."""
    if isinstance(error, (ArtifactNotFound, VideoNotFound)):
        return grpc.StatusCode.NOT_FOUND, str(error)
    if isinstance(error, (UriError, VideoError, StageInputError)):
        return grpc.StatusCode.INVALID_ARGUMENT, str(error)
    if isinstance(error, MemoryError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, f"out of memory: {error}"
    return grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}"


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
        self.outcome = common_pb2.OUTCOME_FAILED
        self.error_code, self.error_message = code.name, message

    @property
    def failed(self) -> bool:
        return self.outcome == common_pb2.OUTCOME_FAILED

    def status(self) -> common_pb2.VideoStatus:
        return common_pb2.VideoStatus(
            video_uid=self.video_uid,
            outcome=self.outcome,
            error_code=self.error_code,
            error_message=self.error_message,
            wall_seconds=time.monotonic() - self.started,
        )


def require_unique_uids(items: Sequence[Any], context: grpc.ServicerContext) -> None:
    """A request is wrong as a whole when it has no videos or names one twice."""
    if not items:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the request names no videos")
    seen: set[str] = set()
    for item in items:
        if not item.video_uid:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "every video needs a video_uid")
        if item.video_uid in seen:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"video_uid {item.video_uid} appears twice")
        seen.add(item.video_uid)


def service_info(service: str, defaults: Any, models: Sequence[common_pb2.ModelInfo] = ()) -> common_pb2.ServiceInfo:
    """The Info answer: version, models and the effective default options as JSON."""
    from google.protobuf import json_format

    from .version import __version__

    return common_pb2.ServiceInfo(
        service=service,
        version=__version__,
        models=list(models),
        default_options_json=json_format.MessageToJson(defaults, preserving_proto_field_name=True, indent=None),
    )


def run_batched(
    items: Sequence[Any],
    store: ArtifactStore,
    overwrite: bool,
    prepare: Callable[[Any, contextlib.ExitStack], Any],
    process: Callable[[list[tuple[str, Any]]], dict[str, Any]],
    publish: Callable[[Any, Any], None],
) -> list[tuple[VideoRun, Any]]:
    """The batch call of every stage: the GPU stages work on all videos together, the segmenter one by one.

    Per item: CACHED if its output exists (unless `overwrite`), else `prepare(item, files)` gives
    its input (local copies of artifacts stay open in `files` until `process` is done). `process`
    takes [(video_uid, input)] and returns video_uid -> result or exception; each result is
    published by `publish(item, result)`. Returns (run, result or None) in request order.
    """

    runs = {item.video_uid: VideoRun(item.video_uid) for item in items}
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as files:
        todo = []
        for item in items:
            run = runs[item.video_uid]
            try:
                store.resolve(item.output_uri)
                if not overwrite and store.exists(item.output_uri):
                    run.done(cached=True)
                    continue
                todo.append((item.video_uid, prepare(item, files)))
            except Exception as error:  # noqa: BLE001 - this video fails alone
                run.fail(error)
        outcomes = process(todo) if todo else {}
    for item in items:
        if item.video_uid not in outcomes:
            continue
        run, value = runs[item.video_uid], outcomes[item.video_uid]
        try:
            if isinstance(value, BaseException):
                raise value
            publish(item, value)
            results[item.video_uid] = value
            run.done()
        except Exception as error:  # noqa: BLE001
            run.fail(error)
    return [(runs[item.video_uid], results.get(item.video_uid)) for item in items]
