"""Self-Refine for the eligible segments of several videos (docs/method.md, "Stage 3").

Eligible: non-leaf nodes lasting at least 4 s, the root included. Each gets a draft, then
"verify and revise" turns in the same conversation (3 rounds in all). All nodes of all videos run
at once, so the engine batches them; a round whose answer does not parse keeps the previous
round's answer. Per node we keep the annotation, the rounds that succeeded and the tokens used.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Collection
from dataclasses import dataclass
from typing import Any

from action100m.common import paper, work
from action100m.common.artifacts import Annotations, Captions, NodeAnnotation, SegmentTree, TreeNode
from action100m.common.errors import StageInputError

from .backends import ChatBackend
from .markdown import TreeView
from .profiles import OursProfile, PromptContext, PromptProfile
from .prompts import PromptLimits, Templates
from .schema import parse_annotation

log = logging.getLogger("action100m.refiner")

TIME_TOLERANCE = 1e-6


def eligible_nodes(tree: SegmentTree, min_seconds: float = paper.MIN_ANNOTATED_SECONDS) -> list[TreeNode]:
    parents = {n.parent_id for n in tree.nodes}
    return [n for n in tree.nodes if n.node_id in parents and n.end - n.start >= min_seconds - TIME_TOLERANCE]


@dataclass
class RefineJob:
    video_uid: str
    tree: SegmentTree
    captions: Captions
    metadata: dict[str, Any] | None


def build_context(job: RefineJob, limits: PromptLimits, profile: PromptProfile) -> PromptContext:
    if job.tree.video_uid != job.video_uid or job.captions.video_uid != job.video_uid:
        raise StageInputError(
            f"video {job.video_uid}: tree ({job.tree.video_uid}) and captions "
            f"({job.captions.video_uid}) belong to other videos"
        )
    return profile.context(TreeView(job.tree, job.captions.nodes), job.metadata, limits)


async def refine_node(
    backend: ChatBackend, context: PromptContext, video_uid: str, node: TreeNode, rounds: int
) -> NodeAnnotation:
    try:
        return await _refine_rounds(backend, context, video_uid, node, rounds)
    finally:
        work.done("segments")


async def _refine_rounds(
    backend: ChatBackend, context: PromptContext, video_uid: str, node: TreeNode, rounds: int
) -> NodeAnnotation:
    messages, depth = context.first_messages(node, backend.count_tokens)
    result = NodeAnnotation(subtree_depth=depth)
    for round_index in range(rounds):
        turn = list(messages)
        if result.gpt is not None:
            turn += [
                {"role": "assistant", "content": json.dumps(result.gpt, ensure_ascii=False)},
                {"role": "user", "content": context.revise},
            ]
        try:
            completion = await backend.complete(turn, f"{video_uid}/{node.node_id}/{round_index}")
            result.prompt_tokens += completion.prompt_tokens
            result.output_tokens += completion.output_tokens
            result.cached_tokens += completion.cached_tokens
            if completion.problem:
                result.rounds_without_answer += 1
                result.errors.append(f"round {round_index + 1}: {completion.problem}")
                continue
            answer = parse_annotation(completion.text)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            result.errors.append(f"round {round_index + 1}: {type(error).__name__}: {error}")
            continue
        if result.gpt is not None:
            messages = turn  # the revision becomes part of the conversation
        result.gpt = answer
        result.rounds_done += 1
    return result


async def refine_each(
    backend: ChatBackend,
    jobs: list[RefineJob],
    rounds: int = 3,
    min_seconds: float = paper.MIN_ANNOTATED_SECONDS,
    limits: PromptLimits | None = None,
    profile: PromptProfile | None = None,
    only: Collection[str] | None = None,
) -> AsyncGenerator[tuple[str, Annotations | BaseException], None]:
    """Every eligible node of every video (or those in `only`) submitted together, so the engine
    batches them; yields (video_uid, annotations or error) as each video's last node finishes."""
    limits, profile = limits or PromptLimits(), profile or OursProfile(Templates())
    videos: dict[asyncio.Future[list[Any]], tuple[str, list[str]]] = {}
    for job in jobs:
        try:
            context = build_context(job, limits, profile)
            nodes = [n for n in eligible_nodes(job.tree, min_seconds) if only is None or n.node_id in only]
        except Exception as error:
            yield job.video_uid, error
            continue
        work.planned("segments", len(nodes))
        tasks = [refine_node(backend, context, job.video_uid, node, rounds) for node in nodes]
        videos[asyncio.gather(*tasks, return_exceptions=True)] = (job.video_uid, [n.node_id for n in nodes])
    pending: set[asyncio.Future[list[Any]]] = set(videos)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                uid, node_ids = videos[finished]
                annotations: dict[str, NodeAnnotation] = {}
                for node_id, value in zip(node_ids, finished.result(), strict=True):
                    if isinstance(value, BaseException):
                        value = NodeAnnotation(errors=[f"{type(value).__name__}: {value}"])
                    annotations[node_id] = value
                yield uid, Annotations(uid, backend.name, annotations)
    finally:
        for future in pending:  # the caller stopped early: nothing more is wanted
            future.cancel()


async def refine_videos(
    backend: ChatBackend,
    jobs: list[RefineJob],
    rounds: int = 3,
    min_seconds: float = paper.MIN_ANNOTATED_SECONDS,
    limits: PromptLimits | None = None,
    profile: PromptProfile | None = None,
    only: Collection[str] | None = None,
) -> dict[str, Annotations | BaseException]:
    """`refine_each`, gathered: per video its annotations or its error."""
    return {uid: value async for uid, value in refine_each(backend, jobs, rounds, min_seconds, limits, profile, only)}
