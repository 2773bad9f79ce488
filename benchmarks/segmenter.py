"""Segmentation time for 1k-50k frames of 1408-d features, and its share of the embedder's GPU time.

The baseline is the embedder's GPU time for the same video length, estimated from the FLOPs of
V-JEPA 2 ViT-g/384 per window at an assumed utilisation of an H100 (printed, change with flags).
Cost grows slightly faster than linearly with frames (Ward with chain connectivity).

    python benchmarks/segmenter.py [--json] [--frames 1000 5000 20000 50000]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from report import emit, parser

from action100m.segmenter.clustering import ward_dendrogram
from action100m.segmenter.tree import build_tree

VITG = {"hidden": 1408, "layers": 40, "mlp": 6144, "tokens": 32 * (384 // 16) ** 2}


def vitg_flops_per_window() -> float:
    d, n = VITG["hidden"], VITG["tokens"]
    per_token_layer = 2 * (4 * d * d + 2 * d * VITG["mlp"])  # projections and MLP
    attention_layer = 4 * n * n * d  # scores and weighted sum
    return VITG["layers"] * (n * per_token_layer + attention_layer)


def synthetic_features(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Scenes of random length with drifting features, like a real video's embeddings."""
    rng = np.random.default_rng(seed)
    features = np.empty((n, dim), np.float32)
    i = 0
    while i < n:
        length = int(rng.integers(20, 400))
        centre = rng.normal(size=dim).astype(np.float32)
        drift = np.cumsum(rng.normal(scale=0.05, size=(min(length, n - i), dim)), axis=0)
        features[i : i + length] = centre + drift
        i += length
    return features.astype(np.float16)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, nargs="+", default=[1000, 5000, 20000, 50000])
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of the imagined videos")
    p.add_argument("--peak-tflops", type=float, default=989.0, help="GPU bf16 dense peak (H100 SXM: 989)")
    p.add_argument("--mfu", type=float, default=0.5, help="assumed model FLOPs utilisation of the encoder")
    args = p.parse_args()
    seconds_per_window = vitg_flops_per_window() / (args.peak_tflops * 1e12 * args.mfu)
    rows = []
    for n in args.frames:
        features = synthetic_features(n, 1408)
        times = np.arange(n) * 4 / args.fps
        t0 = time.perf_counter()
        children = ward_dendrogram(features)
        t1 = time.perf_counter()
        nodes = build_tree("bench", children, times, duration=n * 4 / args.fps)
        t2 = time.perf_counter()
        gpu_seconds = (n / 8) * seconds_per_window
        rows.append(
            {
                "frames": n,
                "video_minutes": round(n * 4 / args.fps / 60, 1),
                "cluster_s": t1 - t0,
                "tree_s": t2 - t1,
                "segment_s": t2 - t0,
                "nodes": len(nodes),
                "embedder_gpu_s_est": gpu_seconds,
                "share_of_embedder": (t2 - t0) / gpu_seconds,
            }
        )
    notes = [
        f"baseline: ViT-g/384 at {vitg_flops_per_window() / 1e12:.0f} TFLOP per window, "
        f"{args.peak_tflops:.0f} TFLOPS x {args.mfu:.0%} = {seconds_per_window:.3f} s/window, a window per 8 frames"
    ]
    emit(rows, args.json, notes)


if __name__ == "__main__":
    main()
