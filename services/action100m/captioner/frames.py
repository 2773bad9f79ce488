"""Which frames each node needs, all taken in one decoding pass of the video.

Perception-LM sees 32 evenly spaced frames of the node's span (centres of 32 equal parts, so a
0.5 s node repeats frames and no node takes the frame at its end, which belongs to the next);
Llama-3.2-Vision sees the middle frame of each leaf, t = (start + end) / 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from action100m.common.artifacts import SegmentTree
from action100m.common.video import VideoReader, evenly_spaced_times


@dataclass(frozen=True)
class FrameKey:
    node_id: str
    kind: str  # "video" (Perception-LM) or "image" (Llama-3.2-Vision)


def frame_plan(tree: SegmentTree, video_frames: int) -> dict[FrameKey, np.ndarray]:
    """The times every node needs: `video_frames` per node, plus the middle frame of every leaf."""
    plan = {FrameKey(n.node_id, "video"): evenly_spaced_times(n.start, n.end, video_frames) for n in tree.nodes}
    for leaf in tree.leaves():
        plan[FrameKey(leaf.node_id, "image")] = np.array([(leaf.start + leaf.end) / 2])
    return plan


def stream_node_frames(
    reader: VideoReader,
    tree: SegmentTree,
    video_frames: int,
    video_size: int,
    image_size: tuple[int, int] | None = None,
) -> Iterator[tuple[FrameKey, np.ndarray]]:
    """(key, frames) for every node as the single decoding pass completes it."""
    plan = frame_plan(tree, video_frames)
    sizes = {key: (video_size, video_size) if key.kind == "video" else image_size for key in plan}
    return reader.stream(plan, sizes)
