"""The Segmenter gRPC servicer: embeddings artifact in, tree artifact out, per-video status."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc

from action100m.common import paper
from action100m.common.artifacts import Embeddings, SegmentTree
from action100m.common.grpc_server import serve
from action100m.common.options import resolve_checked
from action100m.common.release.ids import NODE_ID_RECIPE
from action100m.common.stage import StageServicer, require_unique_uids, service_info
from action100m.common.store import ArtifactStore
from action100m.v1 import segmenter_pb2, segmenter_pb2_grpc

from .segment import segment_video

SERVICE_NAME = segmenter_pb2.DESCRIPTOR.services_by_name["Segmenter"].full_name
DEFAULTS = segmenter_pb2.SegmentOptions(min_leaf_seconds=paper.MIN_LEAF_SECONDS)


class SegmenterService(StageServicer, segmenter_pb2_grpc.SegmenterServicer):
    def Segment(
        self, request: segmenter_pb2.SegmentRequest, context: grpc.ServicerContext
    ) -> Iterator[segmenter_pb2.SegmentResult]:
        require_unique_uids(request.videos, context)
        min_seconds = resolve_checked(request.options, DEFAULTS, {"min_leaf_seconds": 0}, context)["min_leaf_seconds"]

        def segment_each(
            todo: list[tuple[str, segmenter_pb2.SegmentItem]], keep_going: Callable[[], None]
        ) -> Iterator[tuple[str, SegmentTree | BaseException]]:
            """Video by video (CPU work, no batching to gain); each error stays its video's."""
            for uid, item in todo:
                keep_going()
                try:
                    embeddings = Embeddings.from_bytes(self.store.get_bytes(item.embeddings_uri), item.embeddings_uri)
                    yield uid, segment_video(uid, embeddings, min_seconds, source=item.embeddings_uri)
                except Exception as error:  # reported in the video's status
                    yield uid, error

        for item, run, tree in self.stream(
            request,
            context,
            prepare=lambda item, files: item,
            process=segment_each,
            publish=lambda item, tree: self.store.put_bytes(
                item.output_uri, tree.to_json(), content_type="application/json"
            ),
        ):
            result = segmenter_pb2.SegmentResult(status=run.status())
            if not run.failed:
                result.tree_uri = item.output_uri
            if tree is not None:
                result.nodes = len(tree.nodes)
                result.leaves = len(tree.leaves())
                result.depth = max(n.level for n in tree.nodes)
            yield result

    def Info(self, request, context):
        # The id recipe shapes every tree: part of the stage's fingerprint, so trees of another
        # recipe are never mixed with these.
        return service_info("segmenter", DEFAULTS, output_settings={"node_ids": NODE_ID_RECIPE})


def serve_from_env() -> int:
    """Serves the segmenter until SIGTERM, configured by A100M_* environment variables."""
    servicer = SegmenterService(ArtifactStore.from_env())
    return serve("segmenter", servicer, segmenter_pb2_grpc.add_SegmenterServicer_to_server, SERVICE_NAME)
