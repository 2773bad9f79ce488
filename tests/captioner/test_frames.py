"""The frames chosen for each node, checked exactly on a video whose frames carry their index."""

from __future__ import annotations

import math

import pytest

from action100m.captioner.frames import FrameKey, frame_plan, stream_node_frames
from action100m.common.artifacts import SegmentTree, TreeNode
from action100m.common.video import VideoReader
from action100m.devtools.synthetic_video import read_frame_stamp, write_video

FPS = 25


def expected_indices(start: float, end: float, count: int = 32) -> list[int]:
    """Frame i covers [i/fps, (i+1)/fps); the j-th time is the centre of the j-th of `count` equal parts."""
    return [math.floor((start + (j + 0.5) * (end - start) / count) * FPS + 1e-9) for j in range(count)]


@pytest.fixture(scope="module")
def video_and_tree(tmp_path_factory):
    path = write_video(tmp_path_factory.mktemp("cap") / "v.mp4", frames=100, fps=FPS, scene_starts=(0, 50))
    nodes = [
        TreeNode("root", None, 0, 0.0, 4.0),
        TreeNode("a", "root", 1, 0.0, 3.5),
        TreeNode("last", "root", 1, 3.5, 4.0),  # a 0.5 s node at the very end of the video
        TreeNode("a1", "a", 2, 0.0, 1.3),
        TreeNode("a2", "a", 2, 1.3, 3.5),
    ]
    return path, SegmentTree("v", 4.0, nodes, FPS, 4)


def test_plan_asks_32_frames_per_node_and_the_middle_frame_per_leaf(video_and_tree):
    _, tree = video_and_tree
    plan = frame_plan(tree, 32)
    assert {k for k in plan if k.kind == "image"} == {FrameKey(n, "image") for n in ("last", "a1", "a2")}
    assert all(len(plan[FrameKey(n.node_id, "video")]) == 32 for n in tree.nodes)
    assert plan[FrameKey("last", "image")].tolist() == [3.75]


def test_frames_are_exactly_the_expected_ones_from_one_pass(video_and_tree):
    path, tree = video_and_tree
    reader = VideoReader(path)
    got = dict(stream_node_frames(reader, tree, 32, 64))
    assert reader.stats.passes == 1 and reader.stats.frames_decoded == 100
    for node in tree.nodes:
        frames = got[FrameKey(node.node_id, "video")]
        assert frames.shape == (32, 64, 64, 3)
        assert [read_frame_stamp(f) for f in frames] == expected_indices(node.start, node.end), node.node_id
    last = [read_frame_stamp(f) for f in got[FrameKey("last", "video")]]
    assert last[0] == 87 and last[-1] == 99 and len(set(last)) == 13  # 0.5 s = 12.5 frames: repeats
    assert read_frame_stamp(got[FrameKey("last", "image")][0]) == 93  # t = 3.75 s
    assert got[FrameKey("a1", "image")].shape[1:3] == (120, 160)  # leaves' middle frames at full size
