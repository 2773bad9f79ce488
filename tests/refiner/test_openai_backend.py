"""The `openai` backend against vLLM's own OpenAI-compatible server serving a tiny random Llama."""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.request

import jsonschema
import pytest

from action100m.common.decoding import Decoding
from action100m.devtools.tiny_models import build_tiny_models
from action100m.refiner.backends import GenerationSettings, OpenAIBackend
from action100m.refiner.refine import RefineJob, refine_videos
from action100m.refiner.schema import annotation_schema

from ..support import CHAT_INJECTION, HOSTILE_METADATA, free_port, need_vllm_env, small_tree, vllm_env, wait_for

MAX_CHARS = 40
# Greedy here: vLLM 0.32 on a CPU cannot seed a request whose prompt it prefills in chunks (its CPU
# generator has no offset to rewind: the engine dies), and this server runs on the CPU.
GREEDY = Decoding(temperature=0.0)


@pytest.fixture(scope="module")
def openai_server(tmp_path_factory):
    python = need_vllm_env()
    folder = tmp_path_factory.mktemp("openai")
    model = build_tiny_models(folder / "models", only=["llama"])["llama"]
    port = free_port()
    log = folder / "server.log"
    command = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--served-model-name",
        "tiny-llama",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "8192",
        "--enforce-eager",
        "--max-num-seqs",
        "16",
        # as a deployment for random weights must: no free whitespace, so strings bound the answer
        "--structured-outputs-config",
        '{"backend": "xgrammar", "disable_any_whitespace": true}',
    ]
    with open(log, "w") as sink:
        process = subprocess.Popen(command, env=vllm_env(), stdout=sink, stderr=subprocess.STDOUT)

    def healthy() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, process, 420, log)
        yield f"http://127.0.0.1:{port}/v1", model
    finally:
        process.terminate()
        process.wait(60)


@pytest.mark.vllm
def test_openai_backend_refines_every_eligible_node_with_schema_valid_answers(openai_server):
    url, model = openai_server
    schema = annotation_schema(MAX_CHARS)
    backend = OpenAIBackend(
        url,
        "tiny-llama",
        GenerationSettings(schema, max_output_tokens=400, decoding=GREEDY),
        tokenizer=str(model),
        concurrency=4,
    )
    tree, captions = small_tree()

    async def run():
        await backend.start()
        try:
            return await refine_videos(backend, [RefineJob("vid", tree, captions, HOSTILE_METADATA)], rounds=3)
        finally:
            await backend.close()

    annotations = asyncio.run(run())["vid"]
    assert set(annotations.nodes) == {"root", "a", "b"}
    for node_id, node in annotations.nodes.items():
        assert node.rounds_done == 3 and node.errors == [], (node_id, node.errors)
        jsonschema.validate(node.gpt, schema)
        assert node.prompt_tokens > 0 and node.output_tokens > 0


@pytest.mark.vllm
def test_openai_backend_gives_up_after_retries_on_a_dead_endpoint(tiny_models):
    backend = OpenAIBackend(
        f"http://127.0.0.1:{free_port()}/v1",
        "nothing",
        GenerationSettings(annotation_schema(40), decoding=GREEDY),
        tokenizer=str(tiny_models["gpt_oss"]),
        retries=1,
        timeout=5,
    )

    async def run():
        await backend.start()
        try:
            return await backend.complete([{"role": "user", "content": "hi"}], "probe")
        finally:
            await backend.close()

    from openai import APIConnectionError

    with pytest.raises(APIConnectionError):
        asyncio.run(run())


@pytest.mark.vllm
def test_the_server_reads_no_control_token_from_what_the_backend_sends(openai_server):
    """vLLM's server tokenizes the chat itself: its /tokenize answer for the messages the backend
    sends holds the template's control tokens only, while the raw messages would inject more."""
    url, model = openai_server
    backend = OpenAIBackend(
        url, "tiny-llama", GenerationSettings(annotation_schema(MAX_CHARS), decoding=GREEDY), tokenizer=str(model)
    )
    backend._load_tokenizer()
    special = {backend.tokenizer.convert_tokens_to_ids(t) for t in backend.special_tokens()}

    def server_specials(messages) -> int:
        body = json.dumps({"model": "tiny-llama", "messages": messages, "add_generation_prompt": True}).encode()
        request = urllib.request.Request(
            url.removesuffix("/v1") + "/tokenize", body, {"Content-Type": "application/json"}
        )
        tokens = json.loads(urllib.request.urlopen(request, timeout=30).read())["tokens"]
        return sum(1 for token in tokens if token in special)

    def chat(text: str):
        return [{"role": "system", "content": "Annotate."}, {"role": "user", "content": f"Title: {text}"}]

    assert server_specials(backend.defuse(chat(CHAT_INJECTION))) == server_specials(chat("plain"))
    assert server_specials(chat(CHAT_INJECTION)) > server_specials(chat("plain"))  # undefused, it would inject
