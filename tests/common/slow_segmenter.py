"""A test double of the segmenter for the bootstrap tests: it sleeps instead of clustering.

Run as a script it serves on the port given in argv[1] until SIGTERM (for the drain test).
"""

from __future__ import annotations

import sys
import threading
import time

import grpc

from action100m.common.grpc_server import ServerSettings, ServiceHost, check_alive, is_alive, work_slot
from action100m.common.keepalive import DEFAULT_KEEPALIVE, Keepalive
from action100m.v1 import common_pb2, segmenter_pb2, segmenter_pb2_grpc


class SlowSegmenter(segmenter_pb2_grpc.SegmenterServicer):
    """Streams one result per video after `seconds`, holding a work slot and checking the deadline as
    a real stage does between units. `started` counts calls that began working."""

    def __init__(self, seconds: float = 0.0, gate: threading.Event | None = None, check: bool = True):
        self.seconds = seconds
        self.gate = gate
        self.check = check  # False: a handler that never looks at its caller (works to the end)
        self.started = 0
        self.finished = 0
        self.stopped_early = threading.Event()

    def Segment(self, request, context):
        if any(not v.embeddings_uri for v in request.videos):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "embeddings_uri is required")
        if any(v.video_uid == "explode" for v in request.videos):
            raise RuntimeError("the clustering blew up")
        with work_slot(lambda: is_alive(context)):
            self.started += 1
            if self.gate is not None:
                self.gate.wait(30)
            deadline = time.monotonic() + self.seconds
            while time.monotonic() < deadline:
                try:
                    if self.check:
                        check_alive(context)
                except Exception:
                    self.stopped_early.set()
                    raise
                time.sleep(0.02)
            self.finished += 1
        for v in request.videos:
            yield segmenter_pb2.SegmentResult(
                status=common_pb2.VideoStatus(video_uid=v.video_uid, outcome=common_pb2.OUTCOME_DONE),
                tree_uri=v.output_uri,
            )


def host_for(servicer, load=None, keepalive: Keepalive = DEFAULT_KEEPALIVE, **settings) -> ServiceHost:
    defaults = dict(host="127.0.0.1", port=0, metrics_port=0, max_concurrent=1, max_queued=1, grace_seconds=10)
    defaults.update(settings)
    return ServiceHost(
        "segmenter",
        [(segmenter_pb2_grpc.add_SegmenterServicer_to_server, servicer)],
        [segmenter_pb2.DESCRIPTOR.services_by_name["Segmenter"].full_name],
        ServerSettings(**defaults),
        load=load,
        keepalive=keepalive,
    )


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.INFO)
    host = host_for(SlowSegmenter(seconds=float(sys.argv[2])), port=int(sys.argv[1]), metrics_port=-1)
    sys.exit(host.serve_forever())
