"""Stage options: the paper's defaults defined once, `optional` fields where 0 is a value, checked
ranges, and throughput settings that never reach the artifact keys."""

from __future__ import annotations

import math
from pathlib import Path

import grpc
import numpy as np
import pytest
import yaml

from action100m.captioner.service import SERVICE_NAME as CAPTIONER
from action100m.captioner.service import CaptionerConfig, CaptionerService
from action100m.common import paper
from action100m.common.artifacts import Embeddings
from action100m.common.options import out_of_range, resolve
from action100m.embedder.service import EmbedderConfig
from action100m.pipelines.executor import RetryPolicy, stage_config
from action100m.pipelines.registry import BY_NAME
from action100m.pipelines.state import StageConfig
from action100m.refiner.service import RefinerConfig
from action100m.segmenter.service import SERVICE_NAME as SEGMENTER
from action100m.segmenter.service import SegmenterService
from action100m.v1 import captioner_pb2, captioner_pb2_grpc, segmenter_pb2, segmenter_pb2_grpc

from ..support import REPO


def test_unset_options_take_the_default_and_zero_is_a_value():
    defaults = segmenter_pb2.SegmentOptions(min_leaf_seconds=paper.MIN_LEAF_SECONDS)
    assert resolve(segmenter_pb2.SegmentOptions(), defaults) == {"min_leaf_seconds": 0.5}
    assert resolve(segmenter_pb2.SegmentOptions(min_leaf_seconds=0), defaults) == {"min_leaf_seconds": 0.0}
    assert out_of_range({"x": math.nan}, {"x": 0}) == "x must be a finite number, got nan"
    assert out_of_range({"x": -1}, {"x": 0}) == "x must be >= 0, got -1"


def test_the_segmenter_honours_zero_and_refuses_nan(serve_in_process, local_store):
    store, root = local_store
    _, channel = serve_in_process(
        SegmenterService(store), segmenter_pb2_grpc.add_SegmenterServicer_to_server, SEGMENTER
    )
    stub = segmenter_pb2_grpc.SegmenterStub(channel)
    features = np.repeat(np.eye(4, dtype=np.float16), 10, axis=0)  # 40 frames, 4 scenes
    times = np.arange(40) * 0.1
    store.put_bytes(f"{root}/e.npz", Embeddings(features, times, 40.0, 4.0, 4).to_bytes())

    def segment(options, out):
        item = segmenter_pb2.SegmentItem(video_uid="v", embeddings_uri=f"{root}/e.npz", output_uri=f"{root}/{out}")
        return list(stub.Segment(segmenter_pb2.SegmentRequest(videos=[item], options=options), timeout=30))

    (default,) = segment(segmenter_pb2.SegmentOptions(), "default.json")
    (everything,) = segment(segmenter_pb2.SegmentOptions(min_leaf_seconds=0), "all.json")
    assert everything.nodes == 2 * 40 - 1 > default.nodes  # 0 keeps the whole dendrogram
    with pytest.raises(grpc.RpcError) as err:
        segment(segmenter_pb2.SegmentOptions(min_leaf_seconds=math.nan), "nan.json")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "min_leaf_seconds must be a finite number" in err.value.details()


def test_changing_the_caption_batch_size_leaves_every_artifact_key_unchanged(
    serve_in_process, tiny_models, local_store
):
    store, _ = local_store
    upstream = {"segment": StageConfig("segments", [], {})}
    fingerprints = []
    for batch_size in (1, 16):
        config = CaptionerConfig(
            video_model=str(tiny_models["perception_lm"]),
            image_model=str(tiny_models["mllama"]),
            device="cpu",
            batch_size=batch_size,
        )
        _, channel = serve_in_process(
            CaptionerService(store, config), captioner_pb2_grpc.add_CaptionerServicer_to_server, CAPTIONER
        )
        stub = captioner_pb2_grpc.CaptionerStub(channel)
        spec = BY_NAME["caption"]
        fingerprints.append(
            stage_config(stub, spec, captioner_pb2.CaptionOptions(), upstream, RetryPolicy()).fingerprint
        )
    assert fingerprints[0] == fingerprints[1]


def test_the_chart_and_the_services_agree_on_every_server_default():
    values = yaml.safe_load((REPO / "helm" / "action100m" / "values.yaml").read_text())
    assert values["embedder"]["env"]["A100M_WINDOWS_PER_BATCH"] == str(EmbedderConfig().windows_per_batch)
    assert values["captioner"]["env"]["A100M_CAPTION_BATCH_SIZE"] == str(CaptionerConfig().batch_size)
    assert values["refiner"]["env"]["A100M_REFINER_MAX_OUTPUT_TOKENS"] == str(RefinerConfig().max_output_tokens)


def test_the_docs_state_the_papers_parameters_as_defined():
    table = Path(REPO / "docs" / "reference" / "parameters.md").read_text()
    for name in ("MIN_LEAF_SECONDS", "MIN_ANNOTATED_SECONDS", "ROUNDS", "FRAME_STRIDE", "WINDOW_FRAMES"):
        assert f"| `{name}` | {getattr(paper, name)} |" in table, name
