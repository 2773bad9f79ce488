"""One video's segmentation: check the embeddings, cluster, build the tree."""

from __future__ import annotations

import numpy as np

from action100m.common import paper
from action100m.common.artifacts import Embeddings, SegmentTree
from action100m.common.errors import StageInputError

from .clustering import ward_dendrogram
from .tree import build_tree


def check_embeddings(embeddings: Embeddings, source: str) -> None:
    """Refuses features that would make a meaningless tree, naming the problem."""
    features, times = embeddings.features, np.asarray(embeddings.times)
    if features.ndim != 2:
        raise StageInputError(f"{source}: features must be 2-D [frames, dim], got shape {features.shape}")
    if features.shape[0] == 0 or features.shape[1] == 0:
        raise StageInputError(f"{source}: features are empty (shape {features.shape})")
    if not np.issubdtype(features.dtype, np.floating):
        raise StageInputError(f"{source}: features must be floating point, got {features.dtype}")
    bad = ~np.isfinite(features)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        kinds = "NaN" if np.isnan(features).any() else "inf"
        raise StageInputError(
            f"{source}: features hold {kinds} values in {len(rows)} frame(s), first at frame {int(rows[0])}"
        )
    if times.shape != (features.shape[0],):
        raise StageInputError(f"{source}: {times.shape} frame times for {features.shape[0]} feature rows")
    if not np.isfinite(times).all() or np.any(np.diff(times) < 0):
        raise StageInputError(f"{source}: frame times must be finite and non-decreasing")
    if not np.isfinite(embeddings.duration) or embeddings.duration <= 0 or embeddings.duration < times[-1]:
        raise StageInputError(f"{source}: duration {embeddings.duration} does not cover the last frame at {times[-1]}")


def segment_video(
    video_uid: str, embeddings: Embeddings, min_seconds: float = paper.MIN_LEAF_SECONDS, source: str = "embeddings"
) -> SegmentTree:
    check_embeddings(embeddings, source)
    children = ward_dendrogram(embeddings.features)
    nodes = build_tree(video_uid, children, embeddings.times, embeddings.duration, min_seconds)
    return SegmentTree(
        video_uid=video_uid,
        duration=round(float(embeddings.duration), 2),
        nodes=nodes,
        fps=embeddings.fps,
        frame_stride=embeddings.frame_stride,
        params={"min_leaf_seconds": min_seconds, "linkage": "ward", "connectivity": "temporal-chain"},
    )
