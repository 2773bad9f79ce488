"""The segmenter over real gRPC: what a request may write, and what it may not."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from action100m.common.artifacts import Embeddings
from action100m.common.stage import MAX_UID_CHARS
from action100m.common.store import ArtifactStore
from action100m.segmenter.service import SERVICE_NAME, SegmenterService
from action100m.v1 import common_pb2, segmenter_pb2, segmenter_pb2_grpc


@pytest.fixture
def segmenter(serve_in_process, tmp_path):
    """A segmenter whose store writes under artifacts/ and only reads inputs/ (a read-only root)."""
    store = ArtifactStore([f"file://{tmp_path}"], read_only_roots=[f"file://{tmp_path}/inputs"])
    features = np.random.default_rng(0).normal(size=(12, 8)).astype(np.float16)
    embeddings = Embeddings(features, np.arange(12) * 0.5, fps=25.0, duration=6.0, frame_stride=12)
    for folder in ("inputs", "artifacts"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "v.npz").write_bytes(embeddings.to_bytes())
    _, channel = serve_in_process(
        SegmenterService(store), segmenter_pb2_grpc.add_SegmenterServicer_to_server, SERVICE_NAME
    )
    return segmenter_pb2_grpc.SegmenterStub(channel), tmp_path


def segment(stub, embeddings_uri: str, output_uri: str, uid: str = "v"):
    item = segmenter_pb2.SegmentItem(video_uid=uid, embeddings_uri=embeddings_uri, output_uri=output_uri)
    (result,) = stub.Segment(segmenter_pb2.SegmentRequest(videos=[item]), timeout=30)
    return result.status


@pytest.mark.parametrize(
    "folder,message",
    [
        ("artifacts", "the output is one of the request's inputs; refusing to overwrite it"),
        ("inputs", "inside a read-only root"),
    ],
)
def test_a_request_never_writes_over_an_input(segmenter, folder, message):
    stub, root = segmenter
    source = root / folder / "v.npz"
    before = source.read_bytes()
    status = segment(stub, f"file://{source}", f"file://{source}")
    assert status.outcome == common_pb2.OUTCOME_FAILED and status.error_code == "INVALID_ARGUMENT"
    assert message in status.error_message
    assert source.read_bytes() == before
    ok = segment(stub, f"file://{root}/inputs/v.npz", f"file://{root}/artifacts/v.json")
    assert ok.outcome == common_pb2.OUTCOME_DONE


def test_an_overlong_uid_is_refused_before_any_work(segmenter):
    stub, root = segmenter
    with pytest.raises(grpc.RpcError) as error:
        segment(stub, f"file://{root}/inputs/v.npz", f"file://{root}/artifacts/v.json", uid="u" * (MAX_UID_CHARS + 1))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"is longer than {MAX_UID_CHARS} characters" in error.value.details()
    assert len(error.value.details()) < 200
