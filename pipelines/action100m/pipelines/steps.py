"""What each pipeline step does: a thin gRPC client of one service, working on one shard.

A shard state (JSON) flows through the steps: its videos, the fingerprints of the stages done, the
videos that failed (with stage, code and reason), stage times and service calls. A step asks its
service for the videos whose output is not published yet under the stage's fingerprint, and skips
the call entirely when there are none, so a rerun recomputes nothing that is finished.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from action100m.common.grpc_client import open_channel
from action100m.common.store import ArtifactStore
from action100m.v1 import (
    captioner_pb2,
    captioner_pb2_grpc,
    common_pb2,
    embedder_pb2,
    embedder_pb2_grpc,
    refiner_pb2,
    refiner_pb2_grpc,
    segmenter_pb2,
    segmenter_pb2_grpc,
)

from .fingerprint import artifact_key, fingerprint

log = logging.getLogger("action100m.pipeline")
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED)


@dataclass(frozen=True)
class Stage:
    name: str  # also the key of its artifacts' folder
    kind: str  # artifact kind (fingerprint.EXTENSIONS)
    stub: Callable
    method: str
    request: Callable
    item: Callable
    options: Callable
    reads: tuple[str, ...]  # upstream stages whose fingerprints this one depends on


STAGES = {
    "embed": Stage(
        "embed",
        "embeddings",
        embedder_pb2_grpc.EmbedderStub,
        "Embed",
        embedder_pb2.EmbedRequest,
        lambda v, a, out: embedder_pb2.EmbedItem(video_uid=v["video_uid"], video_uri=v["uri"], output_uri=out),
        embedder_pb2.EmbedOptions,
        (),
    ),
    "segment": Stage(
        "segment",
        "trees",
        segmenter_pb2_grpc.SegmenterStub,
        "Segment",
        segmenter_pb2.SegmentRequest,
        lambda v, a, out: segmenter_pb2.SegmentItem(
            video_uid=v["video_uid"], embeddings_uri=a["embed"], output_uri=out
        ),
        segmenter_pb2.SegmentOptions,
        ("embed",),
    ),
    "caption": Stage(
        "caption",
        "captions",
        captioner_pb2_grpc.CaptionerStub,
        "Caption",
        captioner_pb2.CaptionRequest,
        lambda v, a, out: captioner_pb2.CaptionItem(
            video_uid=v["video_uid"], video_uri=v["uri"], tree_uri=a["segment"], output_uri=out
        ),
        captioner_pb2.CaptionOptions,
        ("segment",),
    ),
    "refine": Stage(
        "refine",
        "annotations",
        refiner_pb2_grpc.RefinerStub,
        "Refine",
        refiner_pb2.RefineRequest,
        lambda v, a, out: refiner_pb2.RefineItem(
            video_uid=v["video_uid"],
            tree_uri=a["segment"],
            captions_uri=a["caption"],
            metadata_uri=v["metadata_uri"],
            output_uri=out,
        ),
        refiner_pb2.RefineOptions,
        ("segment", "caption"),
    ),
}


def store_for(allowed_roots: str = "", s3_endpoint: str = "") -> ArtifactStore:
    """The step's artifact store: roots and endpoint from the pipeline's parameters when given, else
    from A100M_* variables; credentials always from the environment (a Secret on Kubernetes)."""
    import os

    env = dict(os.environ)
    if allowed_roots:
        env["A100M_ALLOWED_ROOTS"] = allowed_roots
    if s3_endpoint:
        env["A100M_S3_ENDPOINT"] = s3_endpoint
    return ArtifactStore.from_env(env)


def _call(stub_method, request, timeout: float, attempts: int = 3):
    for attempt in range(1, attempts + 1):
        try:
            return stub_method(request, timeout=timeout)
        except grpc.RpcError as error:
            if error.code() not in RETRYABLE or attempt == attempts:
                raise
            delay = min(60.0, 5.0 * 2 ** (attempt - 1))
            log.warning("%s (attempt %d); retrying in %.0fs", error.code().name, attempt, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def artifacts_of(shard: dict[str, Any], video: dict[str, Any]) -> dict[str, str]:
    return {
        name: artifact_key(shard["prefix"], STAGES[name].kind, fp, video["video_uid"])
        for name, fp in shard["fingerprints"].items()
    }


def run_stage(
    stage_name: str,
    shard_json: str,
    address: str,
    options_json: str = "{}",
    overwrite: bool = False,
    timeout: float = 6 * 3600,
    store: ArtifactStore | None = None,
) -> str:
    """One stage on one shard: returns the shard state with this stage's results added."""
    from google.protobuf import json_format

    stage = STAGES[stage_name]
    shard = json.loads(shard_json)
    store = store or store_for()
    started = time.monotonic()
    options = json_format.Parse(options_json or "{}", stage.options())
    with open_channel(address) as channel:
        stub = stage.stub(channel)
        info = _call(stub.Info, common_pb2.InfoRequest(), timeout=120)
        fp = fingerprint(
            stage.name,
            models=[m.name for m in info.models],
            defaults=info.default_options_json,
            options=json_format.MessageToDict(options),
            upstream=[shard["fingerprints"][s] for s in stage.reads],
        )
        shard["fingerprints"][stage.name] = fp
        # A video recomputed upstream in this run is recomputed here too, even if an output exists.
        recomputed = set(shard.setdefault("recomputed", []))
        fresh, forced = [], []
        for video in shard["videos"]:
            if video["video_uid"] in shard["failed"]:
                continue
            output = artifacts_of(shard, video)[stage.name]
            item = stage.item(video, artifacts_of(shard, video), output)
            if overwrite or video["video_uid"] in recomputed:
                forced.append(item)
            elif not store.exists(output):
                fresh.append(item)
        for items, force in ((fresh, False), (forced, True)):
            if not items:
                continue
            request = stage.request(videos=items, options=options, overwrite=force)
            response = _call(getattr(stub, stage.method), request, timeout=timeout)
            shard["calls"][stage.name] = shard["calls"].get(stage.name, 0) + 1
            for result in response.results:
                status = result.status
                shard.setdefault("sent", {}).setdefault(stage.name, []).append(status.video_uid)
                if status.outcome == common_pb2.OUTCOME_FAILED:
                    shard["failed"][status.video_uid] = {
                        "stage": stage.name,
                        "code": status.error_code,
                        "reason": status.error_message,
                    }
                elif status.outcome == common_pb2.OUTCOME_DONE and status.video_uid not in recomputed:
                    recomputed.add(status.video_uid)
                    shard["recomputed"].append(status.video_uid)
                _record_stats(shard, stage.name, result)
        pending = fresh + forced
    shard["stage_seconds"][stage.name] = shard["stage_seconds"].get(stage.name, 0.0) + time.monotonic() - started
    log.info("shard %s %s: %d sent, %d failed so far", shard["shard"], stage.name, len(pending), len(shard["failed"]))
    return json.dumps(shard)


def _record_stats(shard: dict[str, Any], stage: str, result) -> None:
    stats = shard["stats"].setdefault(stage, {})
    for field in ("nodes", "nodes_refined", "frames_decoded", "windows", "output_tokens", "prompt_tokens"):
        if hasattr(result, field):
            stats[field] = stats.get(field, 0) + int(getattr(result, field))
