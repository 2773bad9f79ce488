"""Frames decoded and wall time of the captioner's one-pass frame gathering against per-node decoding,
and nodes captioned per second on the tiny models, for a synthetic video (5 minutes by default).

Baseline: decoding per node, i.e. opening the video for each node and decoding up to its last
frame (a reader without seeking). Its frame count is exact for every node; its wall time is
measured on --sample nodes spread over the tree and scaled to all nodes (marked "extrapolated").
One pass decodes each frame once whatever the number of nodes, so its cost grows linearly with
video length, while per-node decoding grows with nodes x length, i.e. quadratically.

    python benchmarks/captioner.py [--json] [--minutes 5] [--sample 24] [--caption]
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from report import emit, parser
from segmenter import synthetic_features

from action100m.captioner.frames import frame_plan, stream_node_frames
from action100m.common.artifacts import Embeddings
from action100m.common.video import VideoReader
from action100m.devtools.synthetic_video import write_video
from action100m.segmenter.segment import segment_video

FPS = 30


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--sample", type=int, default=24, help="nodes timed for the per-node baseline")
    p.add_argument("--size", type=int, nargs=2, default=[320, 180], metavar=("W", "H"))
    p.add_argument("--caption", action="store_true", help="also caption every node with the tiny models")
    p.add_argument("--max-new-tokens", type=int, default=8, help="tiny-model generation length when captioning")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        frames = int(args.minutes * 60 * FPS)
        path = write_video(
            Path(tmp) / "video.mp4",
            frames=frames,
            fps=FPS,
            size=tuple(args.size),
            scene_starts=tuple(range(0, frames, FPS * 15)),
        )
        sampled = -(-frames // 4)
        embeddings = Embeddings(synthetic_features(sampled, 64), np.arange(sampled) * 4 / FPS, FPS, frames / FPS, 4)
        tree = segment_video("bench", embeddings)
        plan = frame_plan(tree, 32)
        requests = sum(len(times) for times in plan.values())

        reader = VideoReader(path)
        t0 = time.perf_counter()
        for _ in stream_node_frames(reader, tree, 32, 320):
            pass
        one_pass_s = time.perf_counter() - t0
        one_pass_frames = reader.stats.frames_decoded

        per_node_frames = sum(min(frames, math.ceil(float(times.max()) * FPS + 1e-9) + 1) for times in plan.values())
        chosen = list(plan)[:: max(1, len(plan) // args.sample)][: args.sample]
        t0 = time.perf_counter()
        sample_frames = 0
        for key in chosen:
            node_reader = VideoReader(path)
            node_reader.gather({key: plan[key]}, (320, 320))
            sample_frames += node_reader.stats.frames_decoded
        per_node_s = (time.perf_counter() - t0) * len(plan) / len(chosen)

        base = {"minutes": args.minutes, "nodes": len(tree.nodes), "frame_requests": requests}
        rows = [
            {**base, "path": "one pass", "frames_decoded": one_pass_frames, "wall_s": one_pass_s},
            {
                **base,
                "path": "per node (extrapolated wall)",
                "frames_decoded": per_node_frames,
                "wall_s": per_node_s,
                "frames_ratio": per_node_frames / one_pass_frames,
                "wall_ratio": per_node_s / one_pass_s,
            },
        ]
        if args.caption:
            rows.append(caption_row(base, path, tree, tmp, args.max_new_tokens))
    emit(
        rows,
        args.json,
        [
            f"video: {frames} frames at {FPS} fps, {args.size[0]}x{args.size[1]}; "
            f"tree from the real segmenter on synthetic features ({len(tree.nodes)} nodes)"
        ],
    )


def caption_row(base: dict, path: Path, tree, tmp: str, max_new_tokens: int) -> dict:
    from action100m.captioner.backends import TransformersCaptioner
    from action100m.captioner.caption import CaptionStats, caption_videos
    from action100m.captioner.prompts import CaptionLimits
    from action100m.devtools.tiny_models import build_tiny_models

    models = build_tiny_models(Path(tmp) / "models", only=["perception_lm", "mllama"])
    backend = TransformersCaptioner(str(models["perception_lm"]), str(models["mllama"]))
    backend.load()
    limits = CaptionLimits(
        caption_max_new_tokens=max_new_tokens,
        action_max_new_tokens=max_new_tokens,
        image_max_new_tokens=max_new_tokens,
        batch_size=16,
    )
    stats = CaptionStats()
    list(caption_videos(backend, [("bench", str(path), tree)], limits, stats))
    return {
        **base,
        "path": "caption (tiny models)",
        "wall_s": stats.wall_seconds,
        "nodes_per_s": len(tree.nodes) / stats.wall_seconds,
        "decode_s": stats.decode_seconds,
        "generate_s": stats.generate_seconds,
    }


if __name__ == "__main__":
    main()
