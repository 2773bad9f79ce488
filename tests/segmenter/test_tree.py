"""The tree rules on hand-made dendrograms: pruning, the time grid, level, order, ids."""

from __future__ import annotations

import numpy as np
import pytest

from action100m.common.artifacts import Embeddings, SegmentTree
from action100m.common.release import check_video
from action100m.segmenter.clustering import ward_dendrogram
from action100m.segmenter.segment import segment_video
from action100m.segmenter.tree import boundary_times, build_tree, cluster_spans, node_id

# 8 sampled frames: ((0 1)(2 3)) ((4 5)(6 7)) as scikit-learn writes merges (cluster 8 + i).
BALANCED = np.array([[0, 1], [2, 3], [8, 9], [4, 5], [6, 7], [11, 12], [10, 13]])


def times_at(fps: float, n: int, stride: int = 4) -> np.ndarray:
    return np.arange(n) * stride / fps


def spans(nodes):
    return [(n.level, n.start, n.end) for n in nodes]


def test_balanced_tree_keeps_children_lasting_half_a_second():
    # 8 sampled frames at 25 fps / stride 4 = 0.16 s each; the video lasts 1.28 s.
    nodes = build_tree("v", BALANCED, times_at(25, 8), duration=1.28)
    # Root [0, 1.28] splits at frame 4: (4 - 0.5) * 0.16 = 0.56, both halves >= 0.5 s: kept.
    # Their children would be 0.24-0.32 s long: pruned, so the halves are leaves.
    assert spans(nodes) == [(0, 0.0, 1.28), (1, 0.0, 0.56), (1, 0.56, 1.28)]


def test_one_short_child_makes_its_parent_a_leaf_and_drops_the_subtree():
    # The top merge splits frame 0 off a balanced rest; frames last 0.8 s, so frame 0's span is
    # [0, 0.4] (the boundary sits midway to frame 1): too short, and the whole subtree goes.
    children = np.array([[1, 2], [3, 4], [8, 9], [5, 6], [7, 11], [10, 12], [0, 13]])
    nodes = build_tree("v", children, times_at(5, 8), duration=6.4)
    assert spans(nodes) == [(0, 0.0, 6.4)]


def test_pruning_both_ways_at_threshold():
    children = np.array([[0, 1], [2, 3], [4, 5]])  # 4 frames: ((0 1) (2 3))
    kept = build_tree("v", children, np.array([0.0, 0.25, 0.5, 0.75]), duration=1.0)
    # Root splits at (0.25 + 0.5) / 2 = 0.375: child 0.375 s < 0.5 -> the root is a leaf.
    assert spans(kept) == [(0, 0.0, 1.0)]
    wide = build_tree("v", children, np.array([0.0, 0.5, 1.0, 1.5]), duration=2.0)
    # Split at 0.75: 0.75 s and 1.25 s, both kept. Below them, one each way: [0, 0.75] would split
    # into 0.25 + 0.5 s (pruned, a leaf); [0.75, 2.0] into 0.5 + 0.75 s (kept).
    assert spans(wide) == [(0, 0.0, 2.0), (1, 0.0, 0.75), (1, 0.75, 2.0), (2, 0.75, 1.25), (2, 1.25, 2.0)]
    lower = build_tree("v", children, np.array([0.0, 0.5, 1.0, 1.5]), duration=2.0, min_seconds=0.25)
    assert len(lower) == 7


@pytest.mark.parametrize("fps", [24000 / 1001, 25.0, 30.0])
def test_boundaries_sit_midway_between_sampled_frames_on_a_0_01_grid(fps):
    n = 400
    times = times_at(fps, n)
    bounds = boundary_times(times, duration=n * 4 / fps)
    for k in (1, 7, 123, 399):
        assert bounds[k] == pytest.approx((k - 0.5) * 4 / fps)
    rng = np.random.default_rng(1)
    features = np.repeat(rng.normal(size=(8, 16)), 50, axis=0) + rng.normal(scale=0.01, size=(n, 16))
    nodes = build_tree("v", ward_dendrogram(features), times, duration=n * 4 / fps)
    grid = {round((k - 0.5) * 4 / fps, 2) for k in range(1, n)} | {0.0, round(n * 4 / fps, 2)}
    for node in nodes:
        assert node.start in grid and node.end in grid
        assert node.start == round(node.start, 2)
    # The 8 constant blocks of 50 frames are found exactly: boundaries at frames 50, 100, ...
    block_edges = {round((k - 0.5) * 4 / fps, 2) for k in range(50, 400, 50)}
    assert block_edges <= {n.start for n in nodes}


def test_level_is_depth_and_nodes_are_in_level_start_order():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 8))
    nodes = build_tree("vid", ward_dendrogram(features), times_at(30, 300), duration=40.0)
    by_id = {n.node_id: n for n in nodes}
    for node in nodes:
        assert node.level == (0 if node.parent_id is None else by_id[node.parent_id].level + 1)
    assert [(n.level, n.start) for n in nodes] == sorted((n.level, n.start) for n in nodes)
    tree = SegmentTree("vid", 40.0, nodes)
    assert check_video(tree.to_release_row()) == []


def test_node_ids_are_deterministic_uuid5():
    a = build_tree("video-1", BALANCED, times_at(25, 8), duration=1.28)
    b = build_tree("video-1", BALANCED, times_at(25, 8), duration=1.28)
    c = build_tree("video-2", BALANCED, times_at(25, 8), duration=1.28)
    assert [n.node_id for n in a] == [n.node_id for n in b]
    assert not set(n.node_id for n in a) & set(n.node_id for n in c)
    assert a[0].node_id == node_id("video-1", 0.0, 1.28) and a[0].node_id[14] == "5"


def test_merges_of_non_adjacent_spans_are_refused():
    with pytest.raises(ValueError, match="non-adjacent"):
        cluster_spans(np.array([[0, 2], [1, 3], [4, 5]]), 4)


@pytest.mark.parametrize("frames,fps", [(1, 30.0), (3, 30.0)])
def test_one_frame_or_a_third_of_a_second_gives_a_root_only_tree(frames, fps):
    embeddings = Embeddings(
        np.ones((frames, 4), np.float16), times_at(fps, frames), fps, frames * 4 / fps if frames > 1 else 1 / fps, 4
    )
    tree = segment_video("short", embeddings)
    assert len(tree.nodes) == 1 and tree.nodes[0].start == 0.0
    assert check_video(tree.to_release_row()) == []
