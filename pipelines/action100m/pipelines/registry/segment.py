"""segment: the hierarchical tree of segments cut from the embeddings (the segmenter, on the CPU)."""

from __future__ import annotations

from collections.abc import Mapping

from action100m.v1 import segmenter_pb2, segmenter_pb2_grpc

from ..state import VideoEntry
from .stage import Stage


def segment_item(video: VideoEntry, upstream: Mapping[str, str], output: str) -> segmenter_pb2.SegmentItem:
    return segmenter_pb2.SegmentItem(video_uid=video.video_uid, embeddings_uri=upstream["embed"], output_uri=output)


SEGMENT = Stage(
    name="segment",
    service="segmenter",
    kind="trees",
    extension="json",
    stub=segmenter_pb2_grpc.SegmenterStub,
    method="Segment",
    request=segmenter_pb2.SegmentRequest,
    options=segmenter_pb2.SegmentOptions,
    make_item=segment_item,
    reads=("embed",),
    release_fields=("node_id", "parent_id", "level", "start", "end"),
    counters=("nodes", "leaves"),
)
