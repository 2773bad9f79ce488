"""LLM backends of the refiner, behind one async interface.

- `VllmBackend`: vLLM's async engine in the service process (its own environment, `.venv-vllm`);
  every round of every node is submitted as it becomes ready, so continuous batching keeps the GPU
  full; JSON-schema structured outputs (xgrammar); prefix caching shares each video's prompt head.
- `OpenAIBackend`: any OpenAI-compatible endpoint (a separate vLLM deployment, say), with
  `response_format` json_schema, bounded concurrency and retries with backoff.
- `TransformersBackend`: generate() for a machine without vLLM (no constrained decoding; an
  answer that does not parse fails its round, and the previous round's answer stays).

GPT-OSS models are spoken to in harmony (`harmony.py`: rendered and parsed by `openai_harmony`);
other models through their tokenizer's chat template. The openai backend leaves both to its server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Protocol

from action100m.common.decoding import GPT_OSS, Decoding, per_row_sampler

from .harmony import HarmonyFormat, NoFinalAnswer, is_harmony_model

log = logging.getLogger("action100m.refiner")

HARMONY_FINAL = "<|channel|>final<|message|>"
HARMONY_ENDS = ("<|return|>", "<|end|>", "<|call|>")


@dataclass
class Completion:
    text: str  # the final answer (reasoning removed)
    prompt_tokens: int
    output_tokens: int
    cached_tokens: int = 0  # prompt tokens served from the prefix cache, where the backend says
    problem: str = ""  # why the completion holds no answer ("no final answer: reasoning used all 4096 tokens")


def _read(harmony: HarmonyFormat, ids: Any, max_tokens: int) -> tuple[str, str]:
    """(answer, "") or ("", why there is none) for a harmony completion."""
    try:
        return harmony.answer(ids, max_tokens), ""
    except NoFinalAnswer as problem:
        return "", str(problem)


def final_answer(text: str) -> str:
    """The final-channel message of a harmony-format output, or the text as it is."""
    if HARMONY_FINAL in text:
        text = text.rsplit(HARMONY_FINAL, 1)[1]
    for end in HARMONY_ENDS:
        text = text.split(end, 1)[0]
    return text.strip()


class ChatBackend(Protocol):
    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def count_tokens(self, text: str) -> int: ...

    async def complete(self, messages: list[dict[str, str]], request_id: str) -> Completion: ...


@dataclass
class GenerationSettings:
    schema: dict[str, Any]
    max_output_tokens: int = 4096
    reasoning_effort: str = "high"
    conversation_date: str = ""  # harmony's "Current date:" line; "" leaves it out
    max_reasoning_tokens: int = 0  # harmony: the analysis message ends after this many (0: no limit)
    decoding: Decoding = GPT_OSS  # each request seeded from its id (video/node/round)


# Where each message's content goes in the rendered template: private-use characters no tokenizer
# treats specially and no template rewrites.
_SLOT = re.compile("\ue000(\\d+)\ue001")
# Put after the first character of a special-token string in text sent to a server that tokenizes
# it itself: invisible, and the string no longer matches the control token.
WORD_JOINER = "\u2060"


class _TokenizerMixin:
    """Prompt tokens from messages whose contents are untrusted (titles, transcripts, captions):
    the chat template's own markup becomes control tokens, the contents never do."""

    model: str
    reasoning_effort: str
    harmony: HarmonyFormat | None = None

    def _load_tokenizer(self) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.model)

    def _choose_format(self, settings: GenerationSettings, speaks_harmony: bool) -> None:
        """Harmony for GPT-OSS (rendered and parsed by openai_harmony), the chat template otherwise."""
        if speaks_harmony:
            self.harmony = HarmonyFormat(settings.reasoning_effort, settings.conversation_date)
        else:
            self._load_tokenizer()

    def count_tokens(self, text: str) -> int:
        if self.harmony is not None:
            return self.harmony.count_tokens(text)
        return len(self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])

    def _prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The request's token ids, markup as markup and every content as plain text: harmony's
        renderer for GPT-OSS; otherwise the template rendered around slots, its markup tokenized as
        markup and each content with `split_special_tokens` (`<|start|>` in a title stays text)."""
        if self.harmony is not None:
            return self.harmony.prompt_ids(messages)
        slotted = [{**message, "content": f"\ue000{index}\ue001"} for index, message in enumerate(messages)]
        text = str(
            self.tokenizer.apply_chat_template(
                slotted, tokenize=False, add_generation_prompt=True, reasoning_effort=self.reasoning_effort
            )
        )
        ids: list[int] = []
        for position, piece in enumerate(_SLOT.split(text)):
            if position % 2 == 0:
                ids += self.tokenizer(piece, add_special_tokens=False)["input_ids"] if piece else []
            else:
                content = messages[int(piece)]["content"]
                ids += self.tokenizer(content, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        return ids

    def special_tokens(self) -> list[str]:
        """Every string the tokenizer reads as a control token, longest first."""
        tokens = set(self.tokenizer.all_special_tokens)
        tokens.update(t.content for t in self.tokenizer.added_tokens_decoder.values() if t.special)
        return sorted((t for t in tokens if len(t) > 1), key=len, reverse=True)

    def defuse(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        """For a server that renders and tokenizes messages itself: a word joiner after the first
        character of every special-token string in the contents, so no content becomes a control token."""
        pattern = re.compile("|".join(re.escape(t) for t in self.special_tokens()))
        return [
            {**m, "content": pattern.sub(lambda hit: hit[0][0] + WORD_JOINER + hit[0][1:], m["content"])}
            for m in messages
        ]


class VllmBackend(_TokenizerMixin):
    def __init__(
        self,
        model: str,
        settings: GenerationSettings,
        max_model_len: int = 32768,
        max_num_seqs: int = 256,
        prefix_caching: bool = True,
        reasoning_parser: str = "",
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        kv_cache_bytes: int | None = None,
        enforce_eager: bool = False,
        tensor_parallel_size: int = 1,
        load_format: str = "auto",
    ):
        self.name = model
        self.model = model
        self.settings = settings
        self.reasoning_effort = settings.reasoning_effort
        self.engine_options = dict(
            model=model,
            max_model_len=max_model_len,
            max_num_seqs=max_num_seqs,
            enable_prefix_caching=prefix_caching,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            kv_cache_memory_bytes=kv_cache_bytes,
            enforce_eager=enforce_eager,
            tensor_parallel_size=tensor_parallel_size,
            load_format=load_format,
            structured_outputs_config={
                "backend": "xgrammar",
                "disable_any_whitespace": True,
                # a harmony request's grammar spans the reasoning itself (HarmonyFormat.structural_tag)
                "reasoning_parser": "" if is_harmony_model(model) else reasoning_parser,
            },
        )
        self.engine: Any = None
        self.seeded = True

    async def start(self) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.platforms import current_platform
        from vllm.v1.engine.async_llm import AsyncLLM

        # vLLM 0.32 on a CPU dies on a seeded request whose prompt it prefills in chunks (its CPU
        # generator has no offset to rewind): there, sampled draws come from the engine's generator
        self.seeded = not current_platform.is_cpu()
        if not self.seeded and not self.settings.decoding.greedy:
            log.warning("vLLM on a CPU: requests cannot be seeded; sampled answers differ from run to run")

        self._choose_format(self.settings, is_harmony_model(self.model))
        started = time.monotonic()
        self.engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**self.engine_options))
        log.info("vLLM engine started: %s in %.0fs", self.engine_options.get("model"), time.monotonic() - started)

    async def close(self) -> None:
        if self.engine is not None:
            self.engine.shutdown()
            self.engine = None

    async def complete(self, messages: list[dict[str, str]], request_id: str) -> Completion:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        harmony = self.harmony
        if harmony is not None:  # the schema binds the final channel; the reasoning before it is free
            tag = harmony.structural_tag(self.settings.schema, self.settings.max_reasoning_tokens)
            constraint = StructuredOutputsParams(structural_tag=json.dumps(tag))
        else:
            constraint = StructuredOutputsParams(json=self.settings.schema)
        decoding = self.settings.decoding
        params = SamplingParams(
            max_tokens=self.settings.max_output_tokens,
            temperature=decoding.temperature,
            top_p=decoding.top_p,
            seed=decoding.request_seed(request_id) if self.seeded and not decoding.greedy else None,
            skip_special_tokens=False,
            structured_outputs=constraint,
            stop_token_ids=harmony.stop_token_ids() if harmony is not None else None,
            logit_bias=dict.fromkeys(harmony.unused_control_token_ids(), -100.0) if harmony is not None else None,
        )
        prompt_ids = self._prompt_ids(messages)
        final: Any = None
        async for output in self.engine.generate({"prompt_token_ids": prompt_ids}, params, request_id=request_id):
            final = output
        completion = final.outputs[0]
        answer, problem = final_answer(completion.text), ""
        if harmony is not None:
            answer, problem = _read(harmony, completion.token_ids, self.settings.max_output_tokens)
        return Completion(answer, len(prompt_ids), len(completion.token_ids), final.num_cached_tokens or 0, problem)


class OpenAIBackend(_TokenizerMixin):
    """Chat completions against an OpenAI-compatible server; the tokenizer (for budgets) loads from `tokenizer`."""

    def __init__(
        self,
        base_url: str,
        model: str,
        settings: GenerationSettings,
        tokenizer: str | None = None,
        concurrency: int = 32,
        retries: int = 4,
        timeout: float = 600.0,
        api_key_env: str = "OPENAI_API_KEY",
    ):
        import os

        self.name = model
        self.model = tokenizer or model
        self.served_model = model
        self.base_url = base_url
        self.settings = settings
        self.reasoning_effort = settings.reasoning_effort
        self.retries = retries
        self.timeout = timeout
        self.api_key = os.environ.get(api_key_env, "EMPTY")  # a Secret in the chart, never a literal
        self.limit = asyncio.Semaphore(concurrency)
        self.client: Any = None

    async def start(self) -> None:
        from openai import AsyncOpenAI

        self._load_tokenizer()
        self.client = AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=0)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()

    async def complete(self, messages: list[dict[str, str]], request_id: str) -> Completion:
        from openai import APIConnectionError, APIStatusError, APITimeoutError

        response_format = {
            "type": "json_schema",
            "json_schema": {"name": "segment_annotation", "schema": self.settings.schema, "strict": True},
        }
        for attempt in range(self.retries + 1):
            try:
                async with self.limit:
                    response = await self.client.chat.completions.create(
                        model=self.served_model,
                        messages=self.defuse(messages),
                        temperature=self.settings.decoding.temperature,
                        top_p=self.settings.decoding.top_p,
                        seed=None if self.settings.decoding.greedy else self.settings.decoding.request_seed(request_id),
                        max_tokens=self.settings.max_output_tokens,
                        response_format=response_format,
                        extra_body={"reasoning_effort": self.reasoning_effort},
                    )
                usage = response.usage
                cached = getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", 0) or 0
                return Completion(
                    final_answer(response.choices[0].message.content or ""),
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    cached,
                )
            except (APIConnectionError, APITimeoutError, APIStatusError) as error:
                status = getattr(error, "status_code", None)
                if attempt == self.retries or (status is not None and status < 500 and status != 429):
                    raise
                delay = min(30.0, 0.5 * 2**attempt) * (0.5 + random.random())
                log.warning("%s: %s; retry %d in %.1fs", request_id, error, attempt + 1, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")


class TransformersBackend(_TokenizerMixin):
    def __init__(self, model: str, settings: GenerationSettings, device: str = "auto", dtype: str = "auto"):
        self.name = model
        self.model = model
        self.settings = settings
        self.reasoning_effort = settings.reasoning_effort
        self.device, self.dtype = device, dtype
        self.lock = asyncio.Lock()

    async def start(self) -> None:
        from transformers import AutoModelForCausalLM

        from action100m.common.devices import pick_device, pick_dtype

        self._choose_format(self.settings, is_harmony_model(self.model))
        device = pick_device(self.device)
        self.llm = (
            AutoModelForCausalLM.from_pretrained(self.model, dtype=pick_dtype(self.dtype, device))
            .to(device)  # type: ignore[arg-type]
            .eval()
        )

    async def close(self) -> None:
        self.llm = None

    async def complete(self, messages: list[dict[str, str]], request_id: str) -> Completion:
        import torch

        ids = self._prompt_ids(messages)

        def run() -> list[int]:
            with torch.inference_mode():
                inputs = torch.tensor([ids], device=self.llm.device)
                out = self.llm.generate(
                    inputs,
                    attention_mask=torch.ones_like(inputs),
                    do_sample=False,
                    max_new_tokens=self.settings.max_output_tokens,
                    **sampling,
                    **ends,
                )
            return out[0, len(ids) :].tolist()

        decoding = self.settings.decoding
        sampling = {} if decoding.greedy else {"logits_processor": [per_row_sampler(decoding, [request_id])]}
        if self.harmony is not None:
            ends = {
                "eos_token_id": self.harmony.stop_token_ids(),
                "pad_token_id": self.llm.generation_config.pad_token_id,
            }
        else:
            ends = {"pad_token_id": self.tokenizer.pad_token_id}
        async with self.lock:  # one generate() at a time on the model
            new = await asyncio.to_thread(run)
        if self.harmony is not None:
            answer, problem = _read(self.harmony, new, self.settings.max_output_tokens)
            return Completion(answer, len(ids), len(new), problem=problem)
        text = self.tokenizer.decode(new, skip_special_tokens=False)
        return Completion(final_answer(str(text)), len(ids), len(new))
