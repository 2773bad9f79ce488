"""Untrusted text never becomes chat-control tokens, whatever the backend.

Titles, descriptions, transcripts and captions may hold `<|start|>` or `<|eot_id|>`. For a model
with a chat template (here a tiny Llama), the vLLM and transformers backends tokenize the
template's markup as markup and every content as plain text; GPT-OSS is rendered by harmony
(tests/refiner/test_harmony.py); the openai backend, whose server tokenizes, sends contents with
those strings defused.
"""

from __future__ import annotations

import pytest

from action100m.refiner.backends import (
    WORD_JOINER,
    GenerationSettings,
    OpenAIBackend,
    TransformersBackend,
    VllmBackend,
)

from ..support import CHAT_INJECTION

SETTINGS = GenerationSettings(schema={"type": "object"}, reasoning_effort="low")


def messages(untrusted: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Annotate the segment."},
        {"role": "user", "content": f"Title: {untrusted}\nTranscript: {untrusted}"},
    ]


def rendered_then_tokenized(backend, chat: list[dict[str, str]]) -> list[int]:
    """What rendering the template to text and tokenizing it again gives (the old way; a server's way)."""
    text = backend.tokenizer.apply_chat_template(
        chat, tokenize=False, add_generation_prompt=True, reasoning_effort="low"
    )
    return backend.tokenizer(text, add_special_tokens=False)["input_ids"]


def special_counts(backend, ids: list[int]) -> dict[int, int]:
    special = {backend.tokenizer.convert_tokens_to_ids(t) for t in backend.special_tokens()}
    return {i: ids.count(i) for i in special if i in ids}


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> str:
    from action100m.devtools.tiny_models import build_tiny_models

    return str(build_tiny_models(tmp_path_factory.mktemp("llama"), only=["llama"])["llama"])


@pytest.fixture(params=["vllm", "transformers"])
def local_backend(request, tiny_llama):
    """The backends that tokenize themselves (their engines are not needed for the prompt)."""
    backend = (
        VllmBackend(tiny_llama, SETTINGS) if request.param == "vllm" else TransformersBackend(tiny_llama, SETTINGS)
    )
    backend._choose_format(SETTINGS, speaks_harmony=False)
    return backend


def test_gpt_oss_is_rendered_by_harmony_and_other_models_by_their_template(tiny_models, tiny_llama):
    gpt_oss = VllmBackend(str(tiny_models["gpt_oss"]), SETTINGS)
    gpt_oss._choose_format(SETTINGS, speaks_harmony=True)
    chat = messages("Making bread at home")
    assert gpt_oss.harmony is not None and gpt_oss._prompt_ids(chat) == gpt_oss.harmony.prompt_ids(chat)
    assert gpt_oss.engine_options["structured_outputs_config"]["reasoning_parser"] == ""  # the grammar spans it
    llama = VllmBackend(tiny_llama, SETTINGS, reasoning_parser="deepseek_r1")
    assert llama.engine_options["structured_outputs_config"]["reasoning_parser"] == "deepseek_r1"


def test_benign_prompts_are_tokenized_as_before(local_backend):
    chat = messages("Making bread at home, 12 minutes")
    assert local_backend._prompt_ids(chat) == rendered_then_tokenized(local_backend, chat)


def test_control_tokens_in_content_stay_text(local_backend):
    hostile, benign = messages(CHAT_INJECTION), messages("plain words")
    ids = local_backend._prompt_ids(hostile)
    # the same control tokens as a benign prompt: the template's, none from the content
    assert special_counts(local_backend, ids) == special_counts(local_backend, local_backend._prompt_ids(benign))
    assert CHAT_INJECTION in local_backend.tokenizer.decode(ids)  # the text itself reaches the model whole
    # the defect this guards against: rendering to text and tokenizing again turns them into control tokens
    naive = rendered_then_tokenized(local_backend, hostile)
    assert sum(special_counts(local_backend, naive).values()) > sum(special_counts(local_backend, ids).values())


def test_the_openai_backend_defuses_what_its_server_would_read_as_control_tokens(tiny_models):
    backend = OpenAIBackend("http://127.0.0.1:1/v1", "served", SETTINGS, tokenizer=str(tiny_models["gpt_oss"]))
    backend._load_tokenizer()
    hostile = messages(CHAT_INJECTION)
    sent = backend.defuse(hostile)
    assert sent[0] == hostile[0] and WORD_JOINER in sent[1]["content"]
    assert sent[1]["content"].replace(WORD_JOINER, "") == hostile[1]["content"]  # nothing else changed
    server_side = rendered_then_tokenized(backend, sent)  # what the server does with what we send
    assert special_counts(backend, server_side) == special_counts(
        backend, rendered_then_tokenized(backend, messages("x"))
    )
