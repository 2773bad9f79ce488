"""From a dendrogram over sampled frames to the released tree of segments (docs/method.md, "Stage 1" and "The tree rules").

- Root = [0, decoded duration]; a boundary between sampled frames k-1 and k sits midway between
  their times ((k - 0.5) * stride / fps at a constant rate); times rounded to 0.01 s.
- Walking down from the root, a node keeps its two children only if both last >= 0.5 s; otherwise
  it becomes a leaf and its subtree is dropped. So the tree is strictly binary.
- level = depth, nodes sorted by (level, start), node ids made as the release makes them
  (`common.release.ids`).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from action100m.common import paper
from action100m.common.artifacts import TreeNode
from action100m.common.release.ids import release_node_id as node_id


def boundary_times(frame_times: np.ndarray, duration: float) -> np.ndarray:
    """B[k] for k = 0..N: where the span starting at sampled frame k begins (B[0] = 0, B[N] = duration)."""
    times = np.asarray(frame_times, dtype=np.float64)
    bounds = np.empty(len(times) + 1)
    bounds[0], bounds[-1] = 0.0, duration
    bounds[1:-1] = (times[:-1] + times[1:]) / 2
    return bounds


def cluster_spans(children: np.ndarray, n_frames: int) -> np.ndarray:
    """[2N-1, 2] first and last sampled frame of every cluster; checks that merges are adjacent."""
    spans = np.empty((n_frames + len(children), 2), dtype=np.int64)
    spans[:n_frames, 0] = spans[:n_frames, 1] = np.arange(n_frames)
    for i, (a, b) in enumerate(children):
        left, right = sorted((spans[a], spans[b]), key=lambda s: s[0])
        if left[1] + 1 != right[0]:
            raise ValueError(f"merge {i} joins non-adjacent spans {tuple(left)} and {tuple(right)}")
        spans[n_frames + i] = (left[0], right[1])
    return spans


def build_tree(
    video_uid: str,
    children: np.ndarray,
    frame_times: np.ndarray,
    duration: float,
    min_seconds: float = paper.MIN_LEAF_SECONDS,
) -> list[TreeNode]:
    """The pruned tree of a dendrogram, as nodes sorted by (level, start)."""
    n = len(frame_times)
    if n < 1:
        raise ValueError("no frames to segment")
    spans = cluster_spans(children, n)
    bounds = np.round(boundary_times(frame_times, duration), 2)

    def times_of(cluster: int) -> tuple[float, float]:
        first, last = spans[cluster]
        return float(bounds[first]), float(bounds[last + 1])

    root = n + len(children) - 1
    start, end = times_of(root)
    nodes = [TreeNode(node_id(video_uid, start, end), None, 0, start, end)]
    queue = deque([(root, nodes[0])])
    while queue:
        cluster, node = queue.popleft()
        if cluster < n:
            continue  # a single sampled frame: a leaf
        pair = sorted(children[cluster - n], key=lambda c: spans[c][0])
        timed = [times_of(c) for c in pair]
        if any(e - s < min_seconds - 1e-9 for s, e in timed):
            continue  # a child would be too short: this node is a leaf, its subtree dropped
        for c, (s, e) in zip(pair, timed, strict=True):
            child = TreeNode(node_id(video_uid, s, e), node.node_id, node.level + 1, s, e)
            nodes.append(child)
            queue.append((c, child))
    nodes.sort(key=lambda x: (x.level, x.start))
    return nodes
