"""`a100m refiner render-prompt`: the exact first-round messages the refiner sends for one node."""

from __future__ import annotations

import json
from collections.abc import Callable

from action100m.common.release import read_rows
from action100m.common.release.assemble import from_row

from .markdown import TreeView
from .profiles import load_profile
from .prompts import PromptLimits


def render_prompt(
    path: str,
    video_uid: str,
    node_id: str,
    count_tokens: Callable[[str], int],
    limits: PromptLimits | None = None,
    templates_path: str | None = None,
    prompt: str = "ours",
) -> list[dict[str, str]]:
    """The first-round messages for one node of a release file, under a prompt profile."""
    rows = [r for r in read_rows(path) if r.get("video_uid") == video_uid]
    if not rows:
        raise KeyError(f"{path}: no video {video_uid!r}")
    tree, captions, metadata = from_row(rows[0])
    node = next((n for n in tree.nodes if n.node_id == node_id), None)
    if node is None:
        raise KeyError(f"{path}: video {video_uid} has no node {node_id!r}")
    profile = load_profile(prompt, templates_path)
    context = profile.context(TreeView(tree, captions.nodes), metadata, limits or PromptLimits())
    messages, _ = context.first_messages(node, count_tokens)
    return messages


def print_messages(messages: list[dict[str, str]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(messages, indent=1, ensure_ascii=False))
        return
    for message in messages:
        print(f"=== {message['role']} ===")
        print(message["content"])
