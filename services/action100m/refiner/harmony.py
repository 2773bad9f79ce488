"""GPT-OSS's own format, harmony: requests rendered and completions read by `openai_harmony`.

A request is harmony's system message (model identity, knowledge cutoff, reasoning effort, the
channels; a conversation date only when one is configured, so a prompt does not change by the
day), our instructions as the `developer` message, then the user and assistant turns. The model
answers in channels: reasoning in `analysis`, the answer in `final`, ended by `<|return|>`. Only
the final channel's text is the answer; a completion without one is a failure with its reason.
vLLM constrains the final channel to the annotation schema and leaves the reasoning free
(`structural_tag`, the form vLLM's own chat server builds for GPT-OSS).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

REASONING_EFFORTS = ("low", "medium", "high")


# GPT-OSS's embedding rows (openai/gpt-oss-20b and -120b config.json): ids at or above it do not exist
# for the model, though the encoding names one (<|reserved_201088|>).
GPT_OSS_VOCAB_SIZE = 201088
# The control tokens of an assistant turn: message headers and ends. Never inside a message's text.
_STRUCTURE = ("<|start|>", "<|channel|>", "<|message|>", "<|constrain|>", "<|end|>", "<|return|>", "<|call|>")


class NoFinalAnswer(ValueError):
    """A completion that holds no usable final answer; the message says why in plain words."""


@functools.cache
def _encoding() -> Any:
    from openai_harmony import HarmonyEncodingName, load_harmony_encoding

    return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)


@functools.cache
def is_harmony_model(model: str) -> bool:
    """Whether a model (a folder or a hub id) is a GPT-OSS model, by its config's model_type."""
    import json
    from pathlib import Path

    config = Path(model) / "config.json"
    try:
        return bool(json.loads(config.read_text()).get("model_type") == "gpt_oss")
    except (OSError, ValueError):
        pass
    try:  # a hub id: its config from the cache (the weights' download puts it there first)
        from transformers import AutoConfig

        return bool(AutoConfig.from_pretrained(model, local_files_only=True).model_type == "gpt_oss")
    except Exception:  # not downloaded yet: judge by the name
        return "gpt-oss" in model.lower()


@functools.cache
def _token_id(control_token: str) -> int:
    (only,) = _encoding().encode(control_token, allowed_special="all")
    return int(only)


@functools.cache
def control_token_ids() -> dict[str, int]:
    """Every control token harmony's encoding names (the reserved ones too), with its id."""
    return {token: _token_id(token) for token in _encoding()._inner.special_tokens()}


@functools.cache
def _unused_control_token_ids() -> list[int]:
    used = {_token_id(t) for t in _STRUCTURE if t != "<|call|>"}  # no tools offered: no call
    return sorted(i for i in control_token_ids().values() if i not in used and i < GPT_OSS_VOCAB_SIZE)


@dataclass(frozen=True)
class HarmonyFormat:
    reasoning_effort: str = "high"
    conversation_date: str = ""  # YYYY-MM-DD, or "" for none

    def __post_init__(self) -> None:
        if self.reasoning_effort not in REASONING_EFFORTS:
            raise ValueError(
                f"reasoning effort {self.reasoning_effort!r}: expected one of {', '.join(REASONING_EFFORTS)}"
            )

    @property
    def encoding(self) -> Any:
        return _encoding()

    def stop_token_ids(self) -> list[int]:
        """The tokens that end an assistant turn: `<|return|>`, and `<|call|>` (a tool call)."""
        return list(self.encoding.stop_tokens_for_assistant_actions())

    def token_id(self, control_token: str) -> int:
        return _token_id(control_token)

    def count_tokens(self, text: str) -> int:
        return len(self.encoding.encode(text, disallowed_special=()))

    def conversation(self, messages: Sequence[dict[str, str]]) -> Any:
        """Our chat messages as a harmony conversation: a leading `system` message becomes the
        developer's instructions; earlier answers are final-channel assistant messages."""
        from openai_harmony import Conversation, DeveloperContent, Message, ReasoningEffort, Role, SystemContent

        system = SystemContent.new().with_reasoning_effort(ReasoningEffort(self.reasoning_effort.capitalize()))
        if self.conversation_date:
            system = system.with_conversation_start_date(self.conversation_date)
        rendered = [Message.from_role_and_content(Role.SYSTEM, system)]
        for index, message in enumerate(messages):
            role, content = message["role"], message["content"]
            if role in ("system", "developer") and index == 0:
                instructions = DeveloperContent.new().with_instructions(content)
                rendered.append(Message.from_role_and_content(Role.DEVELOPER, instructions))
            elif role == "user":
                rendered.append(Message.from_role_and_content(Role.USER, content))
            elif role == "assistant":
                rendered.append(Message.from_role_and_content(Role.ASSISTANT, content).with_channel("final"))
            else:
                raise ValueError(f"message {index}: role {role!r} has no place in a harmony conversation")
        return Conversation.from_messages(rendered)

    def prompt_ids(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """The request's token ids, ending where the assistant's turn begins. Contents are text:
        `<|start|>` typed in a title stays seven characters, never the control token."""
        from openai_harmony import Role

        return list(self.encoding.render_conversation_for_completion(self.conversation(messages), Role.ASSISTANT))

    def answer(self, completion_ids: Sequence[int], max_tokens: int) -> str:
        """The final channel's text of a completion, or NoFinalAnswer saying what came instead."""
        from openai_harmony import HarmonyError, Role

        ids = list(completion_ids)
        return_id, call_id = self.token_id("<|return|>"), self.token_id("<|call|>")
        try:
            messages = self.encoding.parse_messages_from_completion_tokens(ids, Role.ASSISTANT)
        except HarmonyError as error:
            raise NoFinalAnswer(f"text outside any channel ({error})") from None
        finals = [m for m in messages if m.channel == "final"]
        if ids and ids[-1] == call_id:
            called = next((m.recipient for m in reversed(messages) if m.recipient), "a tool")
            raise NoFinalAnswer(f"the model called {called}; the refiner offers no tools")
        if not ids or ids[-1] != return_id:
            if finals:
                raise NoFinalAnswer(f"final answer cut off: the completion used all {max_tokens} tokens")
            if messages:
                raise NoFinalAnswer(f"no final answer: reasoning used all {max_tokens} tokens")
            raise NoFinalAnswer(f"no final answer in {len(ids)} tokens")
        if not finals:
            channel = messages[-1].channel if messages else None
            raise NoFinalAnswer(f"no final answer: the turn ended in the {channel or 'no'} channel")
        return "".join(part.text for part in finals[-1].content)

    def unused_control_token_ids(self) -> list[int]:
        """Control tokens a refine completion never holds (the reserved ones, `<|endoftext|>`, and
        `<|call|>`: the refiner offers no tools). xgrammar reads every token as its text, so inside
        the JSON a control token is just more characters to it: a bias against these keeps them out
        (the structural ones stay free)."""
        return _unused_control_token_ids()

    def structural_tag(self, schema: dict[str, Any], max_reasoning_tokens: int = 0) -> dict[str, Any]:
        """vLLM's `structured_outputs.structural_tag` (xgrammar's format): reasoning free, then a
        final channel that must hold compact JSON valid under `schema`. Control tokens are matched
        as tokens (as text they would be `<`, `|`, ...). After the JSON only a stop token can
        follow: xgrammar lets none inside a constraint. `max_reasoning_tokens` (0: no limit) ends
        the analysis message there, so a final answer always has room."""

        def token(name: str) -> dict[str, Any]:
            return {"type": "token", "token": self.token_id(name)}  # by id: vLLM checks the tag without a vocabulary

        def text(value: str) -> dict[str, Any]:
            return {"type": "const_string", "value": value}

        def sequence(*elements: dict[str, Any]) -> dict[str, Any]:
            return {"type": "sequence", "elements": list(elements)}

        reasoning: dict[str, Any] = {"type": "any_tokens", "exclude_tokens": [self.token_id(t) for t in _STRUCTURE]}
        if max_reasoning_tokens:
            reasoning["max_tokens"] = max_reasoning_tokens
        analysis = sequence(
            token("<|channel|>"),
            text("analysis"),
            token("<|message|>"),
            reasoning,
            token("<|end|>"),
            token("<|start|>"),
            text("assistant"),
        )
        content_types = [
            text(""),  # as harmony renders it; and as the model writes it when told the answer is JSON:
            text(" json"),
            sequence(text(" "), token("<|constrain|>"), text("json")),
        ]
        answer = {"type": "json_schema", "json_schema": schema, "max_whitespace_cnt": 1}
        final = sequence(
            token("<|channel|>"),
            text("final"),
            {"type": "or", "elements": content_types},
            token("<|message|>"),
            answer,
        )
        return {"type": "structural_tag", "format": sequence({"type": "optional", "content": analysis}, final)}
