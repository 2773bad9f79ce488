"""`python -m action100m.segmenter`: serve the segmenter (settings from A100M_* variables)."""

import logging
import sys

from action100m.common.grpc_server import serve
from action100m.common.store import ArtifactStore
from action100m.v1 import segmenter_pb2_grpc

from .service import SERVICE_NAME, SegmenterService


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    servicer = SegmenterService(ArtifactStore.from_env())
    return serve("segmenter", servicer, segmenter_pb2_grpc.add_SegmenterServicer_to_server, SERVICE_NAME)


if __name__ == "__main__":
    sys.exit(main())
