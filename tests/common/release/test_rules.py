"""The tree rules on a release file (synthetic, and the real released sample where present), and on
copies broken in each way the validator checks."""

from __future__ import annotations

import copy

import pytest

from action100m.common.release import check_video, read_rows


@pytest.fixture(scope="module")
def sample_row(release_file):
    (row,) = read_rows(release_file)
    return row


def test_a_release_file_obeys_every_rule(sample_row):
    expected = {"hySSAAw4t24": 917}.get(sample_row["video_uid"])  # the released sample's node count
    assert len(sample_row["nodes"]) == expected if expected else len(sample_row["nodes"]) > 100
    assert check_video(sample_row) == []


def _leaf_and_parent(nodes):
    parents = {n["parent_id"] for n in nodes}
    leaf = next(n for n in nodes if n["node_id"] not in parents and n["parent_id"] is not None)
    parent = next(n for n in nodes if n["node_id"] == leaf["parent_id"])
    return leaf, parent


def _break_duplicate_id(nodes):
    nodes[5]["node_id"] = nodes[4]["node_id"]


def _break_second_root(nodes):
    nodes[3]["parent_id"] = None


def _break_dangling_parent(nodes):
    nodes[7]["parent_id"] = "00000000-0000-5000-8000-000000000000"


def _break_cycle(nodes):
    a, b = nodes[5], nodes[6]
    a["parent_id"], b["parent_id"] = b["node_id"], a["node_id"]


def _break_level(nodes):
    nodes[1]["level"] = 2


def _break_tiling(nodes):
    nodes[1]["end"] = nodes[1]["end"] - 1.0  # a gap between the root's two children


def _break_binary(nodes):
    leaf, _ = _leaf_and_parent(nodes)
    sibling = next(n for n in nodes if n["parent_id"] == leaf["parent_id"] and n is not leaf)
    nodes.remove(sibling)  # the parent keeps one child


def _break_short_leaf(nodes):
    leaf, _ = _leaf_and_parent(nodes)
    siblings = [n for n in nodes if n["parent_id"] == leaf["parent_id"]]
    a, b = sorted(siblings, key=lambda n: n["start"])
    cut = a["start"] + 0.2
    a["end"], b["start"] = cut, cut  # still tiles, but `a` lasts 0.2 s


def _break_order(nodes):
    nodes[1], nodes[2] = nodes[2], nodes[1]


def _break_llama_on_inner_node(nodes):
    nodes[0]["llama3_caption"] = "a caption that belongs to a leaf"


def _break_gpt_on_leaf(nodes):
    leaf, _parent = _leaf_and_parent(nodes)
    leaf["gpt"] = copy.deepcopy(nodes[0]["gpt"])


def _break_gpt_on_short_node(nodes):
    short = next(n for n in nodes if n["gpt"] is None and any(c["parent_id"] == n["node_id"] for c in nodes))
    short["gpt"] = copy.deepcopy(nodes[0]["gpt"])


def _break_reversed_span(nodes):
    leaf, _ = _leaf_and_parent(nodes)
    leaf["start"], leaf["end"] = leaf["end"], leaf["start"]


BREAKAGES = {
    "ids": _break_duplicate_id,
    "root": _break_second_root,
    "parent": _break_dangling_parent,
    "parent-cycle": _break_cycle,
    "level": _break_level,
    "tiling": _break_tiling,
    "binary": _break_binary,
    "min_leaf": _break_short_leaf,
    "order": _break_order,
    "llama3_caption": _break_llama_on_inner_node,
    "gpt": _break_gpt_on_leaf,
    "gpt-short": _break_gpt_on_short_node,
    "span": _break_reversed_span,
}


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_each_broken_copy_is_caught_with_its_rule(sample_row, name):
    row = copy.deepcopy(sample_row)
    BREAKAGES[name](row["nodes"])
    violations = check_video(row)
    rule = name.split("-")[0]
    assert any(v.rule == rule for v in violations), [str(v) for v in violations]
    first = next(v for v in violations if v.rule == rule)
    assert first.video_uid == sample_row["video_uid"]
    assert str(first).startswith(f"video={sample_row['video_uid']}")


def test_a_root_only_tree_may_be_shorter_than_half_a_second():
    row = {
        "video_uid": "tiny",
        "nodes": [
            {
                "node_id": "r",
                "parent_id": None,
                "level": 0,
                "start": 0.0,
                "end": 0.3,
                "llama3_caption": "x",
                "gpt": None,
            }
        ],
    }
    assert check_video(row) == []


def test_a_video_without_nodes_is_reported():
    assert [v.rule for v in check_video({"video_uid": "x", "nodes": []})] == ["nodes"]
