"""The captioner over real gRPC with tiny random Perception-LM and Mllama models."""

from __future__ import annotations

import pytest

from action100m.captioner.backends import TransformersCaptioner
from action100m.captioner.service import SERVICE_NAME, CaptionerConfig, CaptionerService
from action100m.common.artifacts import Captions, SegmentTree
from action100m.devtools.synthetic_video import write_video
from action100m.embedder.encoder import VJepa2Encoder
from action100m.embedder.pipeline import embed_videos
from action100m.segmenter.segment import segment_video
from action100m.v1 import captioner_pb2, captioner_pb2_grpc, common_pb2

from ..support import in_request_order

OPTIONS = captioner_pb2.CaptionOptions(caption_max_new_tokens=6, action_max_new_tokens=4, image_max_new_tokens=6)


class FailsOnOneNode:
    """Test double around the real backend: generation raises for one chosen node (as an OOM would)."""

    def __init__(self, inner: TransformersCaptioner, node_id: str):
        self.inner, self.node_id, self.models = inner, node_id, inner.models

    def load(self):
        self.inner.load()

    def generate(self, jobs):
        if any(job.node_id == self.node_id and job.field == "plm_action" for job in jobs):
            raise RuntimeError("CUDA out of memory (simulated)")
        return self.inner.generate(jobs)


@pytest.fixture(scope="module")
def segmented(tiny_models, tmp_path_factory):
    """A synthetic video and the tree the real embedder + segmenter make of it."""
    folder = tmp_path_factory.mktemp("captioner")
    path = write_video(folder / "scenes.mp4", frames=500, fps=25, scene_starts=(0, 150, 330))
    encoder = VJepa2Encoder(str(tiny_models["vjepa2"]), device="cpu")
    embeddings = dict(embed_videos(encoder, [("scenes", str(path))]))["scenes"].embeddings
    return path, segment_video("scenes", embeddings)


@pytest.fixture
def captioner(serve_in_process, tiny_models, local_store, segmented):
    store, root = local_store
    path, tree = segmented
    store.put_file(f"{root}/videos/scenes.mp4", path)
    store.put_bytes(f"{root}/trees/scenes.json", tree.to_json())
    config = CaptionerConfig(
        video_model=str(tiny_models["perception_lm"]),
        image_model=str(tiny_models["mllama"]),
        device="cpu",
        batch_size=16,
    )
    leaf = tree.leaves()[0].node_id
    backend = FailsOnOneNode(TransformersCaptioner(config.video_model, config.image_model, "cpu"), leaf)
    _, channel = serve_in_process(
        CaptionerService(store, config, backend), captioner_pb2_grpc.add_CaptionerServicer_to_server, SERVICE_NAME
    )
    return store, root, tree, leaf, captioner_pb2_grpc.CaptionerStub(channel)


def item(root: str, uid: str, video: str = "scenes.mp4", tree: str = "scenes.json"):
    return captioner_pb2.CaptionItem(
        video_uid=uid,
        video_uri=f"{root}/videos/{video}",
        tree_uri=f"{root}/trees/{tree}",
        output_uri=f"{root}/captions/{uid}.json",
    )


def test_every_node_is_captioned_leaves_get_llama_and_the_video_is_decoded_once(captioner, tmp_path):
    store, root, tree, failing_leaf, stub = captioner
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    store.put_file(f"{root}/videos/corrupt.mp4", tmp_path / "corrupt.mp4")
    corrupt_tree = SegmentTree("corrupt", tree.duration, tree.nodes, tree.fps, tree.frame_stride)
    store.put_bytes(f"{root}/trees/corrupt.json", corrupt_tree.to_json())
    missing_tree = SegmentTree("missing", tree.duration, tree.nodes, tree.fps, tree.frame_stride)
    store.put_bytes(f"{root}/trees/missing.json", missing_tree.to_json())

    request = captioner_pb2.CaptionRequest(
        videos=[
            item(root, "corrupt", "corrupt.mp4", "corrupt.json"),
            item(root, "scenes"),
            item(root, "missing", "missing.mp4", "missing.json"),
        ],
        options=OPTIONS,
    )
    corrupt, ok, missing = in_request_order(stub.Caption(request, timeout=600), request)

    assert corrupt.status.outcome == common_pb2.OUTCOME_FAILED and corrupt.status.error_code == "INVALID_ARGUMENT"
    assert "corrupt.mp4" in corrupt.status.error_message
    assert missing.status.error_code == "NOT_FOUND" and "missing.mp4" in missing.status.error_message
    assert not store.exists(f"{root}/captions/corrupt.json")

    assert ok.status.outcome == common_pb2.OUTCOME_DONE
    # One decoding pass for all nodes' frames (it stops after the last frame anybody asked for);
    # decoding per node would pay thousands.
    assert 480 <= ok.frames_decoded <= 500
    assert ok.nodes == len(tree.nodes) and ok.nodes_failed == 1
    captions = Captions.from_json(store.get_bytes(ok.captions_uri))
    leaves = {n.node_id for n in tree.leaves()}
    assert set(captions.nodes) == {n.node_id for n in tree.nodes}
    for node_id, node in captions.nodes.items():
        assert isinstance(node.plm_caption, str)
        if node_id == failing_leaf:
            assert node.plm_action is None
            assert node.errors == {"plm_action": "RuntimeError: CUDA out of memory (simulated)"}
        else:
            assert isinstance(node.plm_action, str) and node.errors == {}
        assert (node.llama3_caption is not None) == (node_id in leaves)


def test_finished_captions_are_not_recomputed(captioner):
    _store, root, _tree, _, stub = captioner
    (first,) = stub.Caption(captioner_pb2.CaptionRequest(videos=[item(root, "scenes")], options=OPTIONS), timeout=600)
    assert first.status.outcome == common_pb2.OUTCOME_DONE
    (again,) = stub.Caption(captioner_pb2.CaptionRequest(videos=[item(root, "scenes")], options=OPTIONS), timeout=60)
    assert again.status.outcome == common_pb2.OUTCOME_CACHED


def test_sampled_captions_are_the_same_batched_or_alone_and_decoding_is_in_the_fingerprint(
    tiny_models, serve_in_process, local_store
):
    import numpy as np

    from action100m.captioner.backends import CaptionJob
    from action100m.common.decoding import Decoding
    from action100m.pipelines.executor import RetryPolicy, stage_config
    from action100m.pipelines.registry import stage

    sampled = {"video": Decoding(1.0, 1.0, seed=1), "image": Decoding(1.0, 1.0, seed=1)}
    backend = TransformersCaptioner(
        str(tiny_models["perception_lm"]), str(tiny_models["mllama"]), "cpu", "auto", sampled
    )
    backend.load()
    pictures = np.random.default_rng(0).integers(0, 255, (3, 1, 64, 64, 3), dtype=np.uint8)
    jobs = [CaptionJob("v", f"n{i}", "llama3_caption", pictures[i], 8) for i in range(3)]
    batched = backend.generate(jobs)
    assert backend.generate(jobs[1:2])[0] == batched[1]
    backend.decoding = {"video": Decoding(1.0, 1.0, seed=2), "image": Decoding(1.0, 1.0, seed=2)}
    assert [g.text for g in backend.generate(jobs)] != [g.text for g in batched]

    fingerprints = []
    for temperature in (0.6, 0.9):
        config = CaptionerConfig(str(tiny_models["perception_lm"]), str(tiny_models["mllama"]), "cpu")
        config.image_temperature = temperature
        service = CaptionerService(local_store[0], config, backend)
        _, channel = serve_in_process(service, captioner_pb2_grpc.add_CaptionerServicer_to_server, SERVICE_NAME)
        stub = captioner_pb2_grpc.CaptionerStub(channel)
        info = stub.Info(common_pb2.InfoRequest())
        assert info.output_settings["decoding"]["image"]["temperature"] == temperature
        spec = stage("caption")
        fingerprints.append(stage_config(stub, spec, spec.options(), {}, RetryPolicy()).fingerprint)
    assert fingerprints[0] != fingerprints[1]
