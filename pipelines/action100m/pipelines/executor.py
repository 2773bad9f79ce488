"""The executor: stages of the registry run on one shard, each a thin gRPC client of its service.

`execute` is the one way stages run: the DAG's per-stage task (KFP, kfp.local) calls it with one
stage, the stage-by-stage run with one stage per shard, tests with every stage; the stage order is
the registry's. A stage asks its service only for the videos whose output is not published under
the stage's fingerprint (a rerun recomputes nothing finished), reads the streamed result of each
video as it is published, and records it in the shard's state.

Retries, one layer per kind of failure (README, "Retries"):
- the artifact store unreachable for a while: the store's HTTP client (`S3Settings.http_client`);
- a transient error of the call (UNAVAILABLE: a pod starting or lost; RESOURCE_EXHAUSTED: its
  queue full; DEADLINE_EXCEEDED, CANCELLED, ABORTED), or of one video (UNAVAILABLE: the store
  still unreachable after the client's retries): this step, with backoff, sending again only
  the videos that have no result yet (published ones are found CACHED, ones still in flight on
  the same pod are JOINED);
- a video that fails (bad input, a stage error): never retried; the video is reported failed;
- the step's own pod dying: KFP's `set_retry` on the task.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from action100m.common.grpc_client import open_channel
from action100m.common.store import ArtifactStore
from action100m.v1 import common_pb2

from .keys import fingerprint
from .registry import Stage, stage, upstream_of
from .state import Failure, ShardState, StageConfig

log = logging.getLogger("action100m.pipeline")

TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.ABORTED,
    }
)
# A video failed UNAVAILABLE could not reach the artifact store; sent again, it may pass. Its other
# failures (bad input, a full disk, out of memory) would fail again: reported at once.
VIDEO_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE.name})
OUTCOME_NAMES = {
    common_pb2.OUTCOME_DONE: "done",
    common_pb2.OUTCOME_CACHED: "cached",
    common_pb2.OUTCOME_JOINED: "joined",
    common_pb2.OUTCOME_FAILED: "failed",
}


@dataclass(frozen=True)
class RetryPolicy:
    """How a step retries the transient failures of its service call: for as long as a service
    restart takes (the local run's supervisor, or Kubernetes, restarting a pod that then loads its
    models), not for a number of tries that a slow restart outlasts."""

    patience_seconds: float = 1800.0  # transient failures in a row are retried for this long
    attempts: int | None = None  # and at most this many times in a row (None: no bound but time)
    initial_backoff: float = 2.0
    max_backoff: float = 60.0
    call_timeout: float = 6 * 3600.0  # one call; a retry resumes where it stopped

    def backoff(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1)))

    def gives_up(self, attempt: int, failing_since: float | None) -> bool:
        """Whether failure number `attempt` of a streak that began at `failing_since` (None: now) is the last."""
        now = time.monotonic()
        out_of_tries = self.attempts is not None and attempt >= self.attempts
        return out_of_tries or now - (now if failing_since is None else failing_since) >= self.patience_seconds


def _retrying(call: Callable[[], Any], what: str, policy: RetryPolicy) -> Any:
    attempt, failing_since = 0, time.monotonic()
    while True:
        try:
            return call()
        except grpc.RpcError as error:
            attempt += 1  # a short call: its streak began with the first try
            if error.code() not in TRANSIENT or policy.gives_up(attempt, failing_since):
                raise
            delay = policy.backoff(attempt)
            log.warning("%s: %s (attempt %d); retrying in %.0fs", what, error.code().name, attempt, delay)
            time.sleep(delay)


StageOptions = Mapping[str, Message]
"""Options per stage name: each the stage's Options message (fields not set take the service's defaults)."""


def options_dict(options: Message) -> dict[str, Any]:
    """The fields an Options message sets, by their proto names: the form of DAG parameters and reports."""
    return json_format.MessageToDict(options, preserving_proto_field_name=True)


def parse_options(spec: Stage, options: Mapping[str, Any] | None) -> Message:
    """The stage's Options message from a dict of its fields (a DAG parameter, `--options`); an
    unknown field or a wrong type raises ValueError naming it."""
    try:
        return json_format.ParseDict(dict(options or {}), spec.options())
    except json_format.ParseError as error:
        raise ValueError(f"{spec.name} options: {error}") from None


def options_of(spec: Stage, options: StageOptions) -> Message:
    """The stage's Options in `options`, or an empty one (every field at the service's default)."""
    found = options.get(spec.name)
    return spec.options() if found is None else found


def stage_config(
    stub: Any, spec: Stage, options: Message, upstream: Mapping[str, StageConfig], policy: RetryPolicy
) -> StageConfig:
    """The stage's models, the options in force (the service's defaults with the request's fields
    over them) and its fingerprint, from its service's Info."""
    info = _retrying(lambda: stub.Info(common_pb2.InfoRequest(), timeout=120), f"{spec.service} Info", policy)
    defaults = spec.options()
    if info.HasField("default_options") and not info.default_options.Unpack(defaults):
        raise ValueError(f"the {spec.service} sent defaults of another type: {info.default_options.type_url}")
    models = [m.name for m in info.models]
    settings = json_format.MessageToDict(info.output_settings)
    fp = fingerprint(
        spec.name,
        models=models,
        defaults=options_dict(defaults),
        settings=settings,
        options=options_dict(options),
        # an optional stage's output enters each video's key instead (`Stage.artifact`): it ran on
        # some videos only, so the fingerprint of the stages reading it is the same in every shard
        upstream=[
            upstream[name].fingerprint
            for name in spec.reads
            if name in upstream and upstream[name].fingerprint and not stage(name).optional
        ],
    )
    effective = spec.options()
    effective.CopyFrom(defaults)
    effective.MergeFrom(options)  # the request's set fields over the defaults
    return StageConfig(fp, models, options_dict(effective), info.version, settings=settings)


def current_config(
    address: str, spec: Stage, options: Message, upstream: Mapping[str, StageConfig], policy: RetryPolicy | None = None
) -> StageConfig:
    """A stage's config, asked of its service at `address` as the executor asks it."""
    with open_channel(address) as channel:
        return stage_config(spec.stub(channel), spec, options, upstream, policy or RetryPolicy())


def execute(
    state: ShardState,
    stages: Sequence[Stage],
    addresses: Mapping[str, str],
    options: StageOptions | None = None,
    store: ArtifactStore | None = None,
    overwrite: bool = False,
    policy: RetryPolicy = RetryPolicy(),
) -> ShardState:
    """Runs `stages` (in the given order, each after those it reads) on one shard through the
    services at `addresses` (stage name -> address); returns the shard's state with their outcomes."""
    store = store or ArtifactStore.from_env()
    options = options or {}
    for spec in stages:
        config = state.stages.get(spec.name)
        if config is not None and config.settled:  # imported from a dataset, or published already: nothing to run
            continue
        # first: a shard whose videos all failed earlier (at plan, say) has nothing to run, and the
        # stages it reads did not run on it either
        if not any(spec.runs_on(video) for video in state.active()):
            log.info("shard %d %s: no video of the shard needs it; nothing to do", state.shard, spec.name)
            continue
        # a stage that runs on some videos only may have run on none of this shard
        missing = [name for name in spec.reads if name not in state.stages and not stage(name).optional]
        if missing:
            raise ValueError(f"{spec.name} reads {', '.join(missing)}, which has not run on shard {state.shard}")
        state = _run_stage(spec, state, addresses[spec.name], options_of(spec, options), store, overwrite, policy)
    return state


def _run_stage(
    spec: Stage,
    state: ShardState,
    address: str,
    options: Message,
    store: ArtifactStore,
    overwrite: bool,
    policy: RetryPolicy,
) -> ShardState:
    """One stage on one shard."""
    started = time.monotonic()
    stats = state.stats_of(spec.name)
    with open_channel(address) as channel:
        stub = spec.stub(channel)
        state.stages[spec.name] = stage_config(stub, spec, options, state.stages, policy)
        recomputed = {uid for name in upstream_of(spec) for uid in state.recomputed.get(name, ())}
        fresh, forced = [], []
        active = state.active()
        videos = [video for video in active if spec.runs_on(video)]
        if len(videos) < len(active):
            log.info(
                "shard %d %s: %d of %d video(s) are not for it (%s); not sent",
                state.shard,
                spec.name,
                len(active) - len(videos),
                len(active),
                spec.not_for,
            )
        for video in videos:
            output = state.artifact(spec, video)
            upstream = {
                name: state.artifact(stage(name), video)
                for name in spec.reads
                if name in state.stages and stage(name).runs_on(video)
            }
            item = spec.make_item(video, upstream, output)
            if overwrite or video.video_uid in recomputed:
                forced.append(item)  # recomputed upstream in this run: its old output is stale
            elif store.exists(output):
                stats.count("cached")
            else:
                fresh.append(item)
        for items, force in ((fresh, False), (forced, True)):
            if items:
                _call_resuming(stub, spec, items, options, force, state, policy)
    stats.seconds += time.monotonic() - started
    log.info(
        "shard %d %s: %d done, %d cached, %d joined, %d failed, %d calls",
        state.shard,
        spec.name,
        stats.done,
        stats.cached,
        stats.joined,
        stats.failed,
        stats.calls,
    )
    return state


def _call_resuming(
    stub: Any, spec: Stage, items: list[Any], options: Any, force: bool, state: ShardState, policy: RetryPolicy
) -> None:
    """Streams the stage's call; after a transient error of the call, or of single videos (their
    artifact store unreachable), calls again for the videos with no result yet."""
    stats = state.stats_of(spec.name)
    remaining = {item.video_uid: item for item in items}
    attempt = 0  # the current streak of transient failures: how many, since when
    failing_since: float | None = None
    while remaining:
        stats.calls += 1
        request = spec.request(videos=list(remaining.values()), options=options, overwrite=force)
        retry_videos: dict[str, str] = {}  # uid -> why it failed transiently in this call
        last_attempt = policy.gives_up(attempt + 1, failing_since)
        try:
            for result in getattr(stub, spec.method)(request, timeout=policy.call_timeout):
                status = result.status
                if status.video_uid not in remaining:
                    continue
                failed_transiently = (
                    status.outcome == common_pb2.OUTCOME_FAILED and status.error_code in VIDEO_TRANSIENT
                )
                if failed_transiently and not last_attempt:
                    retry_videos[status.video_uid] = status.error_message
                    continue
                remaining.pop(status.video_uid)
                _record(state, spec, result)
                if not failed_transiently:  # the service works: a later failure starts a new streak
                    attempt, failing_since = 0, None
        except grpc.RpcError as error:
            attempt, failing_since = attempt + 1, failing_since or time.monotonic()
            if error.code() in TRANSIENT and not policy.gives_up(attempt, failing_since):
                _back_off(state, spec, policy, attempt, len(remaining), f"{error.code().name}: {error.details()}")
                continue
            reason = f"{spec.service} call failed after {attempt} attempt(s): {error.details()}"
            _fail_all(state, spec, remaining, error.code().name, reason)
            return
        if retry_videos:
            attempt, failing_since = attempt + 1, failing_since or time.monotonic()
            _back_off(state, spec, policy, attempt, len(retry_videos), next(iter(retry_videos.values())))
            continue
        if remaining:  # the stream ended without a result for these: a server bug, said plainly
            _fail_all(state, spec, remaining, "INTERNAL", f"{spec.service} sent no result for this video")
            return


def _back_off(state: ShardState, spec: Stage, policy: RetryPolicy, attempt: int, videos: int, why: str) -> None:
    state.stats_of(spec.name).retries += 1
    delay = policy.backoff(attempt)
    log.warning(
        "shard %d %s: %d video(s) unfinished after a transient failure (attempt %d); resuming in %.0fs: %s",
        state.shard,
        spec.name,
        videos,
        attempt,
        delay,
        why,
    )
    time.sleep(delay)


def _record(state: ShardState, spec: Stage, result: Any) -> None:
    status = result.status
    outcome = OUTCOME_NAMES.get(status.outcome, "failed")
    # work is counted where it was done: a video joined to another's computation adds none
    counters = {name: int(getattr(result, name)) for name in spec.counters} if outcome == "done" else {}
    state.stats_of(spec.name).count(outcome, counters)
    if outcome == "failed":
        state.failed[status.video_uid] = Failure(spec.name, status.error_code, status.error_message)
    elif outcome in ("done", "joined"):
        state.recomputed.setdefault(spec.name, []).append(status.video_uid)


def _fail_all(state: ShardState, spec: Stage, remaining: dict[str, Any], code: str, reason: str) -> None:
    for uid in remaining:
        state.failed[uid] = Failure(spec.name, code, reason)
        state.stats_of(spec.name).count("failed")
    remaining.clear()
