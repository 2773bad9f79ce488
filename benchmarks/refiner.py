"""The refiner's engine use: 64 eligible nodes submitted together against one at a time (same engine,
same run), the prompt tokens actually computed with prefix caching on against off, and the same for
the two prompt profiles (`ours` against `official`, a fresh engine each, first round) on one tree.

Runs in the refiner's environment: `.venv-vllm/bin/python benchmarks/refiner.py [--json]`.
Defaults use a tiny random GPT-OSS on the CPU (--model for a real one on a GPU). Throughput rows use
one round per node so that both paths make the same requests; the caching rows run all rounds.
The tree is a random strict binary tree over a 10-minute video (leaves 1-8 s), with filler captions
(the refiner's environment has no clustering library).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from report import emit, parser

from action100m.common.artifacts import Captions, NodeCaptions, SegmentTree, TreeNode
from action100m.refiner.backends import GenerationSettings, VllmBackend
from action100m.refiner.profiles import load_profile
from action100m.refiner.prompts import PromptLimits
from action100m.refiner.refine import RefineJob, eligible_nodes, refine_videos
from action100m.refiner.schema import annotation_schema
from action100m.segmenter.tree import node_id

WORDS = [
    "a",
    "person",
    "cuts",
    "the",
    "bread",
    "on",
    "a",
    "wooden",
    "board",
    "then",
    "places",
    "the",
    "slices",
    "into",
    "a",
    "bowl",
    "and",
    "wipes",
    "the",
    "knife",
]


def synthetic_tree(duration: float, rng: np.random.Generator) -> SegmentTree:
    nodes = [TreeNode(node_id("bench", 0.0, duration), None, 0, 0.0, duration)]
    frontier = [nodes[0]]
    while frontier:
        node = frontier.pop()
        if (node.end - node.start < 8 and rng.random() < 0.5) or node.end - node.start < 2:
            continue
        cut = round(node.start + (node.end - node.start) * rng.uniform(0.3, 0.7), 2)
        for start, end in ((node.start, cut), (cut, node.end)):
            child = TreeNode(node_id("bench", start, end), node.node_id, node.level + 1, start, end)
            nodes.append(child)
            frontier.append(child)
    nodes.sort(key=lambda n: (n.level, n.start))
    return SegmentTree("bench", duration, nodes)


def synthetic_job(nodes_wanted: int) -> RefineJob:
    rng = np.random.default_rng(0)
    tree = synthetic_tree(600.0, rng)
    captions = {
        n.node_id: NodeCaptions(" ".join(rng.choice(WORDS, 40)), "Cut the bread", " ".join(rng.choice(WORDS, 60)))
        for n in tree.nodes
    }
    keep = {n.node_id for n in eligible_nodes(tree)[:nodes_wanted]}
    return RefineJob("bench", tree, Captions("bench", captions), {"title": "Cutting bread", "duration": 600}), keep


async def run(backend, job, keep, rounds: int, together: bool, limits: PromptLimits):
    started = time.perf_counter()
    if together:
        annotations = (await refine_videos(backend, [job], rounds, limits=limits, only=keep))["bench"].nodes
    else:
        annotations = {}
        for node_id in sorted(keep):
            result = await refine_videos(backend, [job], rounds, limits=limits, only={node_id})
            annotations.update(result["bench"].nodes)
    return time.perf_counter() - started, annotations


def engine(args, settings, caching: bool) -> VllmBackend:
    return VllmBackend(
        args.model,
        settings,
        max_model_len=args.max_model_len,
        max_num_seqs=args.nodes,
        prefix_caching=caching,
        reasoning_parser=args.reasoning_parser,
        kv_cache_bytes=int(args.kv_cache_gib * 1024**3) or None,
        enforce_eager=args.enforce_eager,
    )


async def profile_rows(args, job, keep, limits, settings) -> list[dict]:
    """Prompt tokens computed with prefix caching for each profile: ours shares a video's head across
    its segments, the official prompt opens with the segment's times (what fidelity costs)."""
    profiles = {"ours": load_profile("ours")}
    if args.official and Path(args.official).exists():
        profiles["official"] = load_profile(f"official:{args.official}")
    rows = []
    for name, profile in profiles.items():
        backend = engine(args, settings, caching=True)
        await backend.start()
        try:
            started = time.perf_counter()
            nodes = (await refine_videos(backend, [job], 1, limits=limits, profile=profile, only=keep))["bench"].nodes
            prompt = sum(n.prompt_tokens for n in nodes.values())
            cached = sum(n.cached_tokens for n in nodes.values())
            rows.append(
                {
                    "path": f"prompt profile {name}",
                    "nodes": len(nodes),
                    "rounds": 1,
                    "wall_s": time.perf_counter() - started,
                    "prompt_tokens": prompt,
                    "prompt_tokens_computed": prompt - cached,
                }
            )
        finally:
            await backend.close()
    for row in rows:
        row["computed_ratio_vs_ours"] = row["prompt_tokens_computed"] / rows[0]["prompt_tokens_computed"]
    return rows


async def main_async(args) -> list[dict]:
    job, keep = synthetic_job(args.nodes)
    limits = PromptLimits(subtree_token_budget=args.subtree_budget)
    settings = GenerationSettings(annotation_schema(args.max_string_chars), args.max_output_tokens, "high")
    if args.only_profiles:
        return await profile_rows(args, job, keep, limits, settings)
    rows = []
    for caching in (True, False):
        backend = engine(args, settings, caching)
        await backend.start()
        try:
            if caching:
                for together in (True, False):
                    wall, nodes = await run(backend, job, keep, 1, together, limits)
                    out = sum(n.output_tokens for n in nodes.values())
                    rows.append(
                        {
                            "path": "64 together" if together else "one at a time",
                            "nodes": len(nodes),
                            "rounds": 1,
                            "wall_s": wall,
                            "requests_per_s": len(nodes) / wall,
                            "output_tokens_per_s": out / wall,
                        }
                    )
                rows[-2]["speedup"] = rows[-2]["requests_per_s"] / rows[-1]["requests_per_s"]
            wall, nodes = await run(backend, job, keep, args.rounds, True, limits)
            prompt = sum(n.prompt_tokens for n in nodes.values())
            cached = sum(n.cached_tokens for n in nodes.values())
            rows.append(
                {
                    "path": f"prefix caching {'on' if caching else 'off'}",
                    "nodes": len(nodes),
                    "rounds": args.rounds,
                    "wall_s": wall,
                    "prompt_tokens": prompt,
                    "prompt_tokens_computed": prompt - cached,
                }
            )
        finally:
            await backend.close()
    rows[-2]["computed_ratio_vs_off"] = rows[-2]["prompt_tokens_computed"] / rows[-1]["prompt_tokens_computed"]
    return rows + await profile_rows(args, job, keep, limits, settings)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="GPT-OSS dir or hub id (default: a tiny random one)")
    p.add_argument("--nodes", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--max-output-tokens", type=int, default=400)
    p.add_argument("--max-string-chars", type=int, default=40)
    p.add_argument("--max-model-len", type=int, default=8192)
    p.add_argument("--subtree-budget", type=int, default=1500)
    p.add_argument("--reasoning-parser", default="")
    p.add_argument("--kv-cache-gib", type=float, default=2.0, help="CPU KV cache (0 on a GPU: the engine decides)")
    p.add_argument("--enforce-eager", action="store_true", default=True)
    p.add_argument(
        "--official",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "official_repo"),
        help="a checkout of facebookresearch/Action100M for the official profile's row (skipped if absent)",
    )
    p.add_argument("--only-profiles", action="store_true", help="only the two prompt profiles' rows")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # keep stdout for the table
    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None:
            from action100m.devtools.tiny_models import build_tiny_models

            args.model = str(build_tiny_models(Path(tmp), only=["gpt_oss"])["gpt_oss"])
        rows = asyncio.run(main_async(args))
    emit(
        rows,
        args.json,
        [
            "throughput rows: 1 round per node; caching rows: all rounds, all nodes together",
            "prompt_tokens_computed = prompt tokens minus those served from the prefix cache",
            "profile rows: a fresh engine each, first round of every node; ratio against ours",
        ],
    )


if __name__ == "__main__":
    main()
