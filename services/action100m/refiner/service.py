"""The Refiner gRPC servicer: tree + captions (+ metadata) in, annotations artifact out.

The LLM backend is asynchronous (vLLM's engine, or an HTTP client); it lives on an event loop in
a thread of its own; each gRPC call submits all of its videos' nodes there at once and streams
each video back as soon as its last node is refined.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import re
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

from action100m.common import paper
from action100m.common.artifacts import Annotations, Captions, SegmentTree, Transcript
from action100m.common.config import from_env, setting
from action100m.common.decoding import GPT_OSS, Decoding
from action100m.common.errors import StageInputError
from action100m.common.grpc_server import serve
from action100m.common.options import resolve_checked
from action100m.common.stage import StageServicer, VideoRun, require_unique_uids, service_info
from action100m.common.store import ArtifactStore
from action100m.v1 import common_pb2, refiner_pb2, refiner_pb2_grpc

from .backends import GenerationSettings, OpenAIBackend, TransformersBackend, VllmBackend
from .harmony import is_harmony_model
from .profiles import load_profile
from .prompts import PromptLimits, prompt_limit
from .refine import RefineJob, refine_each
from .schema import annotation_schema

SERVICE_NAME = refiner_pb2.DESCRIPTOR.services_by_name["Refiner"].full_name
BACKENDS = ("vllm", "openai", "transformers")
T = TypeVar("T")


@dataclass
class RefinerConfig:
    """Read from A100M_REFINER_<FIELD> (A100M_DEVICE / A100M_DTYPE for those two)."""

    backend: str = field(default="vllm", metadata={"env": "A100M_REFINER_BACKEND"})
    model: str = field(default="openai/gpt-oss-120b", metadata={"env": "A100M_REFINER_MODEL"})
    openai_url: str = field(default="", metadata={"env": "A100M_REFINER_OPENAI_URL"})
    tokenizer: str = field(default="", metadata={"env": "A100M_REFINER_TOKENIZER"})  # openai: for budgets
    reasoning_effort: str = field(default="high", metadata={"env": "A100M_REFINER_REASONING_EFFORT"})
    reasoning_parser: str = field(default="openai_gptoss", metadata={"env": "A100M_REFINER_REASONING_PARSER"})
    # GPT-OSS's "Current date:" line, YYYY-MM-DD; empty leaves it out, so prompts do not change by the day
    conversation_date: str = field(default="", metadata={"env": "A100M_REFINER_CONVERSATION_DATE"})
    max_output_tokens: int = setting(8192, env="A100M_REFINER_MAX_OUTPUT_TOKENS", min=1)
    # decoding: GPT-OSS's publisher's recommendation (common/decoding.py); the seed makes each
    # request's draws depend on the node and round only
    temperature: float = setting(GPT_OSS.temperature, env="A100M_REFINER_TEMPERATURE", min=0, max=10)
    top_p: float = setting(GPT_OSS.top_p, env="A100M_REFINER_TOP_P", min=0.001, max=1)
    seed: int = setting(0, env="A100M_REFINER_SEED", min=0)
    # GPT-OSS: the reasoning ends after this many tokens, so the answer has room (0: no limit)
    max_reasoning_tokens: int = setting(0, env="A100M_REFINER_MAX_REASONING_TOKENS", min=0)
    max_string_chars: int = setting(6000, env="A100M_REFINER_MAX_STRING_CHARS", min=1)
    max_model_len: int = setting(32768, env="A100M_REFINER_MAX_MODEL_LEN", min=256)
    max_num_seqs: int = setting(256, env="A100M_REFINER_MAX_NUM_SEQS", min=1)
    kv_cache_gib: float = setting(0.0, env="A100M_REFINER_KV_CACHE_GIB", min=0)  # 0: engine decides
    # the share of each GPU vLLM may take (weights, activations, KV cache); `a100m plan` computes it
    gpu_memory_utilization: float = setting(0.9, env="A100M_REFINER_GPU_MEMORY_UTILIZATION", min=0.01, max=1.0)
    tensor_parallel_size: int = setting(1, env="A100M_REFINER_TENSOR_PARALLEL_SIZE", min=1, max=64)
    prefix_caching: bool = field(default=True, metadata={"env": "A100M_REFINER_PREFIX_CACHING"})
    enforce_eager: bool = field(default=False, metadata={"env": "A100M_REFINER_ENFORCE_EAGER"})  # skip compiling
    # vLLM's load format: "dummy" draws random weights (benchmarks/gpu_check.py's paper shapes, no download)
    load_format: str = field(default="auto", metadata={"env": "A100M_REFINER_LOAD_FORMAT"})
    subtree_token_budget: int = setting(6000, env="A100M_REFINER_SUBTREE_TOKEN_BUDGET", min=1)
    templates: str = field(default="", metadata={"env": "A100M_REFINER_TEMPLATES"})
    prompt: str = field(default="ours", metadata={"env": "A100M_REFINER_PROMPT"})  # or official:/path
    concurrency: int = setting(64, env="A100M_REFINER_CONCURRENCY", min=1)
    device: str = "auto"
    dtype: str = "auto"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> RefinerConfig:
        return from_env(cls, env)

    def decoding(self) -> Decoding:
        return Decoding(self.temperature, self.top_p, self.seed)

    def make_backend(self):
        if self.conversation_date and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.conversation_date):
            raise ValueError(
                f"A100M_REFINER_CONVERSATION_DATE={self.conversation_date!r}: expected YYYY-MM-DD or nothing"
            )
        settings = GenerationSettings(
            annotation_schema(self.max_string_chars or None),
            self.max_output_tokens,
            self.reasoning_effort,
            self.conversation_date,
            self.max_reasoning_tokens,
            self.decoding(),
        )
        if self.backend == "vllm":
            return VllmBackend(
                self.model,
                settings,
                self.max_model_len,
                self.max_num_seqs,
                self.prefix_caching,
                self.reasoning_parser,
                gpu_memory_utilization=self.gpu_memory_utilization,
                kv_cache_bytes=int(self.kv_cache_gib * 1024**3) or None,
                enforce_eager=self.enforce_eager,
                tensor_parallel_size=self.tensor_parallel_size,
                load_format=self.load_format,
            )
        if self.backend == "openai":
            if not self.openai_url:
                raise ValueError("the openai backend needs A100M_REFINER_OPENAI_URL")
            return OpenAIBackend(self.openai_url, self.model, settings, self.tokenizer or None, self.concurrency)
        if self.backend == "transformers":
            return TransformersBackend(self.model, settings, self.device, self.dtype)
        raise ValueError(f"A100M_REFINER_BACKEND={self.backend!r}: expected one of {', '.join(BACKENDS)}")


def read_job(store: ArtifactStore, item: refiner_pb2.RefineItem) -> RefineJob:
    """What the refiner works from for one video: its tree, captions and metadata, with the
    transcriber's transcript in place of the metadata's when the item names one."""
    tree = SegmentTree.from_json(store.get_bytes(item.tree_uri), item.tree_uri)
    captions = Captions.from_json(store.get_bytes(item.captions_uri), item.captions_uri)
    metadata = None
    if item.metadata_uri:
        try:
            metadata = json.loads(store.get_bytes(item.metadata_uri))
        except ValueError as err:
            raise StageInputError(f"{item.metadata_uri}: metadata is not JSON ({err})") from None
        if not isinstance(metadata, dict):
            raise StageInputError(f"{item.metadata_uri}: metadata must be a JSON object")
    if item.transcript_uri:  # what the transcriber heard replaces the metadata's transcript
        transcript = Transcript.from_json(store.get_bytes(item.transcript_uri), item.transcript_uri)
        metadata = transcript.into(metadata)
    return RefineJob(item.video_uid, tree, captions, metadata)


class RefinerService(StageServicer, refiner_pb2_grpc.RefinerServicer):
    def __init__(self, store: ArtifactStore, config: RefinerConfig):
        super().__init__(store)
        self.config = config
        self.profile = load_profile(config.prompt, config.templates or None)
        self.backend = config.make_backend()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="refiner-loop", daemon=True).start()

    def _on_loop(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def load(self) -> None:
        self._on_loop(self.backend.start())

    def close(self) -> None:
        self._on_loop(self.backend.close())
        self.loop.call_soon_threadsafe(self.loop.stop)

    def defaults(self) -> refiner_pb2.RefineOptions:
        return refiner_pb2.RefineOptions(
            rounds=paper.ROUNDS,
            min_annotated_seconds=paper.MIN_ANNOTATED_SECONDS,
            max_subtree_depth=paper.MAX_SUBTREE_DEPTH,
            prompt_token_budget=self.config.subtree_token_budget,
        )

    def _prepare(self, item: refiner_pb2.RefineItem, files) -> RefineJob:
        return read_job(self.store, item)

    def Refine(
        self, request: refiner_pb2.RefineRequest, context: grpc.ServicerContext
    ) -> Iterator[refiner_pb2.RefineResult]:
        require_unique_uids(request.videos, context)
        minimums = {"rounds": 1, "max_subtree_depth": 0, "prompt_token_budget": 1, "min_annotated_seconds": 0}
        values = resolve_checked(request.options, self.defaults(), minimums, context)
        rounds, min_seconds = values["rounds"], values["min_annotated_seconds"]
        limits = PromptLimits(
            subtree_token_budget=values["prompt_token_budget"],
            max_subtree_depth=values["max_subtree_depth"],
            max_prompt_tokens=prompt_limit(self.config.max_model_len, self.config.max_output_tokens),
        )

        def process(
            todo: list[tuple[str, RefineJob]], keep_going: Callable[[], None]
        ) -> Iterator[tuple[str, Annotations | BaseException]]:
            jobs = [job for _, job in todo]
            videos = refine_each(self.backend, jobs, rounds, min_seconds, limits, self.profile)
            return self._iterate_on_loop(videos, keep_going)

        for item, run, value in self.stream(
            request,
            context,
            prepare=self._prepare,
            process=process,
            publish=lambda item, value: self.store.put_bytes(
                item.output_uri, value.to_json(), content_type="application/json"
            ),
        ):
            yield _result(item, run, value)

    def _iterate_on_loop(self, items: AsyncGenerator[T, None], keep_going: Callable[[], None]) -> Iterator[T]:
        """Iterates, from this gRPC thread, an async generator that runs on the backend's event loop;
        stops it (its unfinished requests cancelled) when nobody wants the rest."""
        step: concurrent.futures.Future[T] | None = None
        try:
            while True:
                step = asyncio.run_coroutine_threadsafe(_next_or_end(items), self.loop)
                while True:
                    try:
                        value = step.result(timeout=0.5)
                        break
                    except TimeoutError:
                        keep_going()
                step = None
                if value is _END:
                    return
                yield value
        finally:
            if step is not None:
                step.cancel()
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(items.aclose(), self.loop).result(timeout=30)

    def Info(self, request, context):
        model = common_pb2.ModelInfo(role="llm", name=self.config.model, dtype=self.config.dtype)
        settings = {
            "backend": self.config.backend,
            "reasoning_effort": self.config.reasoning_effort,
            "conversation_date": self.config.conversation_date,
            "max_reasoning_tokens": self.config.max_reasoning_tokens,
            "max_output_tokens": self.config.max_output_tokens,
            "max_string_chars": self.config.max_string_chars,
            "decoding": self.config.decoding().describe(),
            "prompt": {"profile": self.profile.name.split(":", 1)[0], "words": self.profile.fingerprint()},
            # how the messages become tokens: GPT-OSS's harmony (openai_harmony), else the model's
            # template; behind the openai backend, whatever its server does
            "prompt_format": "server"
            if self.config.backend == "openai"
            else ("harmony" if is_harmony_model(self.config.model) else "chat template"),
        }
        return service_info("refiner", self.defaults(), [model], settings)


_END: Any = object()


async def _next_or_end(items: AsyncIterator[T]) -> T:
    try:
        return await anext(items)
    except StopAsyncIteration:
        return _END  # type: ignore[no-any-return,unused-ignore]


def _result(item: refiner_pb2.RefineItem, run: VideoRun, annotations: Annotations | None) -> refiner_pb2.RefineResult:
    result = refiner_pb2.RefineResult(status=run.status())
    if not run.failed:
        result.annotations_uri = item.output_uri
    if annotations is not None:
        nodes = annotations.nodes.values()
        result.nodes_eligible = len(annotations.nodes)
        result.nodes_refined = sum(1 for n in nodes if n.gpt is not None)
        result.nodes_failed = result.nodes_eligible - result.nodes_refined
        result.rounds_done = sum(n.rounds_done for n in nodes)
        result.rounds_without_answer = sum(n.rounds_without_answer for n in nodes)
        result.prompt_tokens = sum(n.prompt_tokens for n in nodes)
        result.output_tokens = sum(n.output_tokens for n in nodes)
    return result


def serve_from_env() -> int:
    """Serves the refiner until SIGTERM, configured by A100M_* environment variables."""
    servicer = RefinerService(ArtifactStore.from_env(), RefinerConfig.from_env())
    try:
        return serve("refiner", servicer, refiner_pb2_grpc.add_RefinerServicer_to_server, SERVICE_NAME)
    finally:
        servicer.close()
