"""A synthetic video through the embedder and the segmenter over real gRPC, artifacts in moto S3."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import grpc
import numpy as np
import pytest

from action100m.common.artifacts import Embeddings, SegmentTree
from action100m.common.release import check_video
from action100m.common.store import ArtifactStore, S3Settings
from action100m.devtools.synthetic_video import write_video
from action100m.embedder.service import SERVICE_NAME as EMBEDDER
from action100m.embedder.service import EmbedderConfig, EmbedderService
from action100m.segmenter.service import SERVICE_NAME as SEGMENTER
from action100m.segmenter.service import SegmenterService
from action100m.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc, segmenter_pb2, segmenter_pb2_grpc

from ..support import in_request_order

FPS = 25
CUTS = (300, 640)  # raw frames where a new scene starts


@pytest.fixture
def s3_store(moto_s3):
    settings = S3Settings(endpoint=urlsplit(moto_s3).netloc, secure=False, access_key="testing", secret_key="testing")
    client = settings.client()
    if not client.bucket_exists("pipeline"):
        client.make_bucket("pipeline")
    root = f"s3://pipeline/{uuid.uuid4().hex[:8]}"
    return ArtifactStore([root], s3=settings), root


@pytest.fixture
def stages(serve_in_process, tiny_models, s3_store):
    store, root = s3_store
    embedder = EmbedderService(
        store, EmbedderConfig(model=str(tiny_models["vjepa2"]), device="cpu", windows_per_batch=4)
    )
    _, embed_channel = serve_in_process(embedder, embedder_pb2_grpc.add_EmbedderServicer_to_server, EMBEDDER)
    _, segment_channel = serve_in_process(
        SegmenterService(store), segmenter_pb2_grpc.add_SegmenterServicer_to_server, SEGMENTER
    )
    return store, root, embedder_pb2_grpc.EmbedderStub(embed_channel), segmenter_pb2_grpc.SegmenterStub(segment_channel)


def test_top_splits_land_on_the_scene_cuts(stages, tmp_path):
    store, root, embed, segment = stages
    video = write_video(tmp_path / "scenes.mp4", frames=1000, fps=FPS, scene_starts=(0, *CUTS))
    store.put_file(f"{root}/videos/scenes.mp4", video)
    (tmp_path / "broken.mp4").write_bytes(video.read_bytes()[:3000])
    store.put_file(f"{root}/videos/broken.mp4", tmp_path / "broken.mp4")

    request = embedder_pb2.EmbedRequest(
        videos=[
            embedder_pb2.EmbedItem(
                video_uid="scenes", video_uri=f"{root}/videos/scenes.mp4", output_uri=f"{root}/emb/scenes.npz"
            ),
            embedder_pb2.EmbedItem(
                video_uid="broken", video_uri=f"{root}/videos/broken.mp4", output_uri=f"{root}/emb/broken.npz"
            ),
            embedder_pb2.EmbedItem(
                video_uid="gone", video_uri=f"{root}/videos/gone.mp4", output_uri=f"{root}/emb/gone.npz"
            ),
        ]
    )
    ok, broken, gone = in_request_order(embed.Embed(request, timeout=300), request)
    assert ok.status.outcome == common_pb2.OUTCOME_DONE
    assert (ok.num_frames, ok.windows, ok.frames_decoded) == (250, 25, 1000)
    assert ok.duration_seconds == pytest.approx(40.0) and ok.fps == pytest.approx(25.0)
    assert broken.status.outcome == common_pb2.OUTCOME_FAILED and broken.status.error_code == "INVALID_ARGUMENT"
    assert "broken.mp4" in broken.status.error_message
    assert gone.status.error_code == "NOT_FOUND" and "gone.mp4" in gone.status.error_message

    tree_uri = f"{root}/trees/scenes.json"
    (result,) = segment.Segment(
        segmenter_pb2.SegmentRequest(
            videos=[
                segmenter_pb2.SegmentItem(video_uid="scenes", embeddings_uri=ok.embeddings_uri, output_uri=tree_uri),
            ]
        ),
        timeout=120,
    )
    assert result.status.outcome == common_pb2.OUTCOME_DONE and result.nodes >= 3
    tree = SegmentTree.from_json(store.get_bytes(tree_uri))
    assert check_video(tree.to_release_row()) == []
    assert tree.nodes[0].end == 40.0

    sampled = 4 / FPS
    top_splits = sorted({n.start for n in tree.nodes if 1 <= n.level <= 2 and n.start > 0})
    for cut in CUTS:
        boundary = (cut / 4 - 0.5) * sampled  # midway between the sampled frames around the cut
        nearest = min(top_splits, key=lambda s: abs(s - boundary))
        assert abs(nearest - boundary) <= sampled + 0.01, (cut, boundary, top_splits)

    (again,) = embed.Embed(
        embedder_pb2.EmbedRequest(
            videos=[
                embedder_pb2.EmbedItem(
                    video_uid="scenes", video_uri=f"{root}/videos/scenes.mp4", output_uri=f"{root}/emb/scenes.npz"
                ),
            ]
        ),
        timeout=60,
    )
    assert again.status.outcome == common_pb2.OUTCOME_CACHED


def _npz(features, times=None, duration=None) -> bytes:
    n = len(features) if np.ndim(features) else 0
    times = np.arange(n) * 0.16 if times is None else times
    return Embeddings(
        np.asarray(features),
        np.asarray(times, float),
        25.0,
        duration if duration is not None else max(n * 0.16, 0.16),
        4,
    ).to_bytes()


BAD_EMBEDDINGS = {
    "nan": (_npz(np.where(np.arange(40)[:, None] == 7, np.nan, np.ones((40, 8)))), "NaN values in 1 frame"),
    "inf": (_npz(np.full((40, 8), np.inf)), "inf values"),
    "empty": (_npz(np.zeros((0, 8))), "features are empty"),
    "flat": (_npz(np.ones(40)), "must be 2-D"),
    "times": (_npz(np.ones((40, 8)), times=np.arange(39) * 0.16), "frame times for 40 feature rows"),
    "not-npz": (b"definitely not an npz", "not a readable embeddings"),
}


def test_bad_embeddings_are_rejected_with_invalid_argument(stages):
    store, root, _, segment = stages
    items = []
    for name, (data, _) in BAD_EMBEDDINGS.items():
        store.put_bytes(f"{root}/emb/{name}.npz", data)
        items.append(
            segmenter_pb2.SegmentItem(
                video_uid=name, embeddings_uri=f"{root}/emb/{name}.npz", output_uri=f"{root}/trees/{name}.json"
            )
        )
    items.append(
        segmenter_pb2.SegmentItem(
            video_uid="missing", embeddings_uri=f"{root}/emb/missing.npz", output_uri=f"{root}/trees/missing.json"
        )
    )
    items.append(
        segmenter_pb2.SegmentItem(
            video_uid="escape", embeddings_uri="s3://elsewhere/emb.npz", output_uri=f"{root}/trees/escape.json"
        )
    )
    response = segment.Segment(segmenter_pb2.SegmentRequest(videos=items), timeout=60)
    by_uid = {r.status.video_uid: r.status for r in response}
    for name, (_, problem) in BAD_EMBEDDINGS.items():
        assert by_uid[name].outcome == common_pb2.OUTCOME_FAILED
        assert by_uid[name].error_code == "INVALID_ARGUMENT", (name, by_uid[name])
        assert problem in by_uid[name].error_message and f"{name}.npz" in by_uid[name].error_message
        assert not store.exists(f"{root}/trees/{name}.json")
    assert by_uid["missing"].error_code == "NOT_FOUND"
    assert by_uid["escape"].error_code == "INVALID_ARGUMENT" and "outside" in by_uid["escape"].error_message

    with pytest.raises(grpc.RpcError) as err:
        list(segment.Segment(segmenter_pb2.SegmentRequest(videos=[items[0], items[0]]), timeout=10))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "twice" in err.value.details()
