"""The stage registry: everything the pipeline knows about each stage, in one place.

The DAG, the steps, the local runner and the CLI all read `STAGES`; adding a stage means adding
its service and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from action100m.v1 import (
    captioner_pb2,
    captioner_pb2_grpc,
    embedder_pb2,
    embedder_pb2_grpc,
    refiner_pb2,
    refiner_pb2_grpc,
    segmenter_pb2,
    segmenter_pb2_grpc,
)

from .keys import artifact_key
from .state import VideoEntry

ItemBuilder = Callable[[VideoEntry, dict[str, str], str], Any]
"""(video, its upstream artifact URIs by stage name, its output URI) -> the stage's request item."""


@dataclass(frozen=True)
class Stage:
    name: str  # the pipeline's name for it, also the DAG parameter prefix ("embed")
    service: str  # the service that runs it ("embedder"), its chart name and its module
    kind: str  # the artifacts' folder under the artifact prefix ("embeddings")
    extension: str  # of its artifacts
    stub: Callable[[Any], Any]
    method: str  # the streaming batch call
    request: type[Any]
    options: type[Any]
    make_item: ItemBuilder
    reads: tuple[str, ...]  # upstream stages whose artifacts (and so fingerprints) it reads
    counters: tuple[str, ...]  # fields of its per-video result summed into the run's statistics
    reads_metadata: bool = False  # the video's metadata is one of its inputs (so part of its keys)
    port: int = 50051

    def artifact(self, prefix: str, fingerprint: str, video: VideoEntry) -> str:
        """Where this stage publishes a video's artifact under its fingerprint (see `keys`)."""
        video_input = video.input_id(with_metadata=self.reads_metadata)
        return artifact_key(prefix, self.kind, fingerprint, video.video_uid, self.extension, video_input)

    def default_address(self, release: str = "action100m", namespace: str | None = None) -> str:
        """The headless Service the chart makes for this stage's service when installed as `release`
        (clients balance over its pods with round robin); the names follow `_helpers.tpl`."""
        host = f"{chart_fullname(release)}-{self.service}-headless"
        if namespace:
            host = f"{host}.{namespace}.svc"
        return f"dns:///{host}:{self.port}"


def chart_fullname(release: str) -> str:
    """`action100m.fullname` of the chart: the release name if it holds "action100m", else both."""
    name = release if "action100m" in release else f"{release}-action100m"
    return name[:40].rstrip("-")


STAGES: tuple[Stage, ...] = (
    Stage(
        "embed",
        "embedder",
        "embeddings",
        "npz",
        embedder_pb2_grpc.EmbedderStub,
        "Embed",
        embedder_pb2.EmbedRequest,
        embedder_pb2.EmbedOptions,
        lambda v, up, out: embedder_pb2.EmbedItem(video_uid=v.video_uid, video_uri=v.uri, output_uri=out),
        (),
        ("windows", "frames_decoded"),
    ),
    Stage(
        "segment",
        "segmenter",
        "trees",
        "json",
        segmenter_pb2_grpc.SegmenterStub,
        "Segment",
        segmenter_pb2.SegmentRequest,
        segmenter_pb2.SegmentOptions,
        lambda v, up, out: segmenter_pb2.SegmentItem(video_uid=v.video_uid, embeddings_uri=up["embed"], output_uri=out),
        ("embed",),
        ("nodes", "leaves"),
    ),
    Stage(
        "caption",
        "captioner",
        "captions",
        "json",
        captioner_pb2_grpc.CaptionerStub,
        "Caption",
        captioner_pb2.CaptionRequest,
        captioner_pb2.CaptionOptions,
        lambda v, up, out: captioner_pb2.CaptionItem(
            video_uid=v.video_uid, video_uri=v.uri, tree_uri=up["segment"], output_uri=out
        ),
        ("segment",),
        ("nodes", "nodes_failed", "frames_decoded", "output_tokens"),
    ),
    Stage(
        "refine",
        "refiner",
        "annotations",
        "json",
        refiner_pb2_grpc.RefinerStub,
        "Refine",
        refiner_pb2.RefineRequest,
        refiner_pb2.RefineOptions,
        lambda v, up, out: refiner_pb2.RefineItem(
            video_uid=v.video_uid,
            tree_uri=up["segment"],
            captions_uri=up["caption"],
            metadata_uri=v.metadata_uri,
            output_uri=out,
        ),
        ("segment", "caption"),
        ("nodes_eligible", "nodes_refined", "nodes_failed", "prompt_tokens", "output_tokens"),
        reads_metadata=True,
    ),
)
BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}
BY_SERVICE: dict[str, Stage] = {stage.service: stage for stage in STAGES}
FINAL = STAGES[-1]


def stage(name: str) -> Stage:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r} (expected one of {', '.join(BY_NAME)})") from None
