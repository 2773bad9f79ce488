"""The Self-Refine rounds, answer parsing and the transformers backend, without vLLM.

`ScriptedChat` is a test double of a chat backend (the real ones are vLLM, an OpenAI-compatible
server, transformers): it answers each request with the next scripted text and records the
conversations it was sent, so the round logic can be checked turn by turn.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from action100m.refiner.backends import Completion, GenerationSettings, TransformersBackend, final_answer
from action100m.refiner.profiles import OursProfile
from action100m.refiner.prompts import PromptLimits, Templates
from action100m.refiner.refine import RefineJob, build_context, eligible_nodes, refine_each, refine_node
from action100m.refiner.schema import annotation_schema, parse_annotation

from ..support import small_tree


def answer(brief: str) -> str:
    return json.dumps(
        {
            "summary": {"brief": brief, "detailed": "A person cuts bread."},
            "action": {"brief": "Cut bread", "detailed": "Cut the bread with a knife.", "actor": "a person"},
        }
    )


class ScriptedChat:
    """Test double of a ChatBackend: scripted answers per node, the conversations it received."""

    name = "scripted"

    def __init__(self, script: list[str | Completion | Exception]):
        self.script = list(script)
        self.sent: list[list[dict[str, str]]] = []

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def complete(self, messages: list[dict[str, str]], request_id: str) -> Completion:
        self.sent.append(messages)
        reply = self.script.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, Completion):
            return reply
        return Completion(reply, prompt_tokens=100, output_tokens=20, cached_tokens=60)


def context_and_root():
    tree, captions = small_tree()
    context = build_context(
        RefineJob("vid", tree, captions, {"title": "Bread"}), PromptLimits(), OursProfile(Templates())
    )
    return context, tree.nodes[0]


def test_three_rounds_draft_then_two_revisions_in_one_conversation():
    context, root = context_and_root()
    chat = ScriptedChat([answer("draft"), answer("second"), answer("final")])
    result = asyncio.run(refine_node(chat, context, "vid", root, rounds=3))
    assert result.gpt["summary"]["brief"] == "final" and result.rounds_done == 3 and result.errors == []
    assert (result.prompt_tokens, result.output_tokens, result.cached_tokens) == (300, 60, 180)
    first, second, third = chat.sent
    assert [m["role"] for m in first] == ["system", "user"]  # our instructions, then the request
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert json.loads(second[2]["content"])["summary"]["brief"] == "draft"
    assert second[3]["content"] == context.templates.revise
    assert third[:4] == second and json.loads(third[4]["content"])["summary"]["brief"] == "second"


def test_a_round_without_valid_json_keeps_the_previous_answer():
    context, root = context_and_root()
    chat = ScriptedChat([answer("draft"), "I think it is bread.", RuntimeError("engine hiccup")])
    result = asyncio.run(refine_node(chat, context, "vid", root, rounds=3))
    assert result.gpt["summary"]["brief"] == "draft" and result.rounds_done == 1
    assert result.errors[0].startswith("round 2: ValueError: no JSON object")
    assert result.errors[1] == "round 3: RuntimeError: engine hiccup"


def test_every_round_failing_leaves_no_annotation():
    context, root = context_and_root()
    result = asyncio.run(refine_node(ScriptedChat(["no", "no", "no"]), context, "vid", root, rounds=3))
    assert result.gpt is None and result.rounds_done == 0 and len(result.errors) == 3


def test_each_video_comes_out_when_its_nodes_are_done_and_a_bad_one_fails_alone():
    tree, captions = small_tree()
    _, other_captions = small_tree()
    other_captions.video_uid = "someone-else"
    jobs = [RefineJob("vid", tree, captions, None), RefineJob("bad", tree, other_captions, None)]
    chat = ScriptedChat([answer(str(i)) for i in range(len(eligible_nodes(tree)))])

    async def collect():
        return [item async for item in refine_each(chat, jobs, rounds=1)]

    (bad, error), (uid, annotations) = asyncio.run(collect())
    assert bad == "bad" and "belong to other videos" in str(error)
    assert uid == "vid" and set(annotations.nodes) == {n.node_id for n in eligible_nodes(tree)}


@pytest.mark.parametrize(
    "text,problem",
    [("no json here", "no JSON object"), ("[1, 2]", "no JSON object"), ('{"summary": {}}', "'summary' must be")],
)
def test_parse_annotation_refuses_what_is_not_an_annotation(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_annotation(text)


def test_parse_annotation_takes_the_object_after_reasoning_and_keeps_control_characters():
    parsed = parse_annotation("Let me think.\n" + answer("tab\there").replace("\\t", "\t"))
    assert parsed["summary"]["brief"] == "tab\there"


def test_final_answer_takes_the_final_channel_of_a_harmony_output():
    text = "<|channel|>analysis<|message|>thinking<|end|><|start|>assistant<|channel|>final<|message|>{}<|return|>"
    assert final_answer(text) == "{}"
    assert final_answer("  plain text ") == "plain text"


def test_the_transformers_backend_answers_on_the_tiny_gpt_oss(tiny_models):
    """Real generate() on the tiny random GPT-OSS: no schema during decoding, so the answer is noise
    that a round may fail to parse; what is checked is the backend's contract."""
    settings = GenerationSettings(annotation_schema(40), max_output_tokens=24, reasoning_effort="low")
    backend = TransformersBackend(str(tiny_models["gpt_oss"]), settings, device="cpu", dtype="float32")

    async def run():
        await backend.start()
        try:
            messages = [{"role": "user", "content": "Describe the segment."}]
            return await backend.complete(messages, "r1"), backend.count_tokens("Describe the segment.")
        finally:
            await backend.close()

    completion, counted = asyncio.run(run())
    assert 0 < completion.output_tokens <= 24
    assert completion.prompt_tokens > counted > 0  # harmony's system message and headers
    # random weights in free decoding never reach a final channel: the round says why, in words
    assert completion.text == "" and completion.problem.startswith(("no final answer", "text outside any channel"))


def test_a_completion_without_a_final_answer_fails_its_round_and_is_counted():
    context, root = context_and_root()
    spent = Completion("", 100, 4096, problem="no final answer: reasoning used all 4096 tokens")
    chat = ScriptedChat([answer("draft"), spent, answer("final")])
    result = asyncio.run(refine_node(chat, context, "vid", root, rounds=3))
    assert result.gpt["summary"]["brief"] == "final" and result.rounds_done == 2
    assert result.rounds_without_answer == 1 and result.output_tokens == 20 + 4096 + 20  # its tokens were spent
    assert result.errors == ["round 2: no final answer: reasoning used all 4096 tokens"]
