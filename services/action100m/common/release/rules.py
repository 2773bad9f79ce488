"""The tree rules every released video obeys (docs/method.md, "The tree rules"), checked node by node.

Times are float32 in the release, so comparisons allow a small tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from action100m.common import paper

TIME_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Violation:
    video_uid: str | None
    node_id: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"video={self.video_uid}"
        if self.node_id is not None:
            where += f" node={self.node_id}"
        return f"{where} [{self.rule}] {self.message}"


def _duration(node: Mapping[str, Any]) -> float:
    return float(node["end"]) - float(node["start"])


def check_video(
    row: Mapping[str, Any],
    min_leaf_seconds: float = paper.MIN_LEAF_SECONDS,
    min_gpt_seconds: float = paper.MIN_ANNOTATED_SECONDS,
) -> list[Violation]:
    """All violations of the tree rules in one video row (empty when the row is valid)."""
    check = _Checks(row.get("video_uid"))
    if not check.uid:
        check.bad(None, "video_uid", "video_uid is missing")
    nodes = row.get("nodes") or []
    if not nodes:
        check.bad(None, "nodes", "the video has no nodes")
        return check.found
    by_id = check.ids_and_spans(nodes)
    children = check.structure(nodes, by_id)
    timed = all(n.get("start") is not None and n.get("end") is not None for n in nodes)
    for node in nodes:
        check.node(node, children.get(node.get("node_id"), []), len(nodes), timed, min_leaf_seconds, min_gpt_seconds)
    if timed and all(n.get("level") is not None for n in nodes):
        check.order(nodes)
    return check.found


Node = Mapping[str, Any]


class _Checks:
    """The rules of `check_video`, each adding what it finds to `found`."""

    def __init__(self, uid: Any) -> None:
        self.uid = uid
        self.found: list[Violation] = []

    def bad(self, node: Node | None, rule: str, message: str) -> None:
        self.found.append(Violation(self.uid, node.get("node_id") if node else None, rule, message))

    def ids_and_spans(self, nodes: list[Node]) -> dict[str, Node]:
        """Unique node ids and non-empty spans; the nodes by id."""
        by_id: dict[str, Node] = {}
        for node in nodes:
            node_id = node.get("node_id")
            if not node_id:
                self.bad(node, "ids", "node_id is missing")
            elif node_id in by_id:
                self.bad(node, "ids", "node_id is not unique")
            else:
                by_id[node_id] = node
            if node.get("start") is None or node.get("end") is None:
                self.bad(node, "span", "start or end is missing")
            elif not _duration(node) > 0:
                self.bad(node, "span", f"empty or reversed span [{node['start']:.2f}, {node['end']:.2f}]")
        return by_id

    def structure(self, nodes: list[Node], by_id: dict[str, Node]) -> dict[str, list[Node]]:
        """One root at level 0 starting at 0, parents that exist, every node reachable; the children by parent."""
        roots = [n for n in nodes if n.get("parent_id") is None]
        if len(roots) != 1:
            self.bad(None, "root", f"expected exactly one root (parent_id null), found {len(roots)}")
        children: dict[str, list[Node]] = {}
        for node in nodes:
            parent_id = node.get("parent_id")
            if parent_id is None:
                continue
            if parent_id not in by_id:
                self.bad(node, "parent", f"parent_id {parent_id} is not a node of this video")
                continue
            children.setdefault(parent_id, []).append(node)
        if len(roots) == 1 and not self.found:
            root_id = str(roots[0].get("node_id"))
            reached, frontier = {root_id}, [root_id]
            while frontier:
                kids_of = [str(k.get("node_id")) for k in children.get(frontier.pop(), [])]
                frontier.extend(k for k in kids_of if k not in reached)
                reached.update(kids_of)
            for node in nodes:
                if node.get("node_id") not in reached:
                    self.bad(node, "parent", "not reachable from the root (a cycle of parent_ids)")
        for root in roots[:1]:
            if root.get("level") != 0:
                self.bad(root, "level", f"the root has level {root.get('level')}, expected 0")
            if root.get("start") is not None and abs(float(root["start"])) > TIME_TOLERANCE:
                self.bad(root, "span", f"the root starts at {root['start']:.2f}s, expected 0")
        return children

    def node(
        self, node: Node, kids: list[Node], count: int, timed: bool, min_leaf_seconds: float, min_gpt_seconds: float
    ) -> None:
        """A node's own rules: binary, levels, children tiling it, leaf length, where captions and gpt go."""
        if len(kids) not in (0, 2):
            self.bad(node, "binary", f"has {len(kids)} children; a node has 0 or 2")
        for kid in kids:
            if node.get("level") is not None and kid.get("level") != node["level"] + 1:
                self.bad(kid, "level", f"level {kid.get('level')} under a parent of level {node['level']}")
        if kids and timed:
            self.tiling(node, kids)
        is_leaf = not kids
        if is_leaf and count > 1 and timed and _duration(node) < min_leaf_seconds - TIME_TOLERANCE:
            self.bad(node, "min_leaf", f"leaf lasts {_duration(node):.3f}s < {min_leaf_seconds}s")
        if not is_leaf and node.get("llama3_caption") is not None:
            self.bad(node, "llama3_caption", "llama3_caption on a non-leaf node (it belongs to leaves only)")
        if node.get("gpt") is not None and timed:
            if is_leaf:
                self.bad(node, "gpt", "gpt annotation on a leaf (it belongs to non-leaf nodes only)")
            elif _duration(node) < min_gpt_seconds - TIME_TOLERANCE:
                self.bad(node, "gpt", f"gpt annotation on a {_duration(node):.2f}s node (< {min_gpt_seconds}s)")

    def tiling(self, node: Node, kids: list[Node]) -> None:
        ordered = sorted(kids, key=lambda k: float(k["start"]))
        edges = [float(node["start"])] + [x for k in ordered for x in (float(k["start"]), float(k["end"]))]
        edges.append(float(node["end"]))
        if any(abs(a - b) > TIME_TOLERANCE for a, b in zip(edges[0::2], edges[1::2], strict=False)):
            spans = ", ".join(f"[{float(k['start']):.2f}, {float(k['end']):.2f}]" for k in ordered)
            self.bad(
                node, "tiling", f"children {spans} do not tile [{float(node['start']):.2f}, {float(node['end']):.2f}]"
            )

    def order(self, nodes: list[Node]) -> None:
        """Rows in (level, start) order, as the release writes them."""
        keys = [(int(n["level"]), float(n["start"])) for n in nodes]
        for i in range(1, len(keys)):
            if keys[i] < keys[i - 1]:
                self.bad(nodes[i], "order", f"out of (level, start) order after node {nodes[i - 1].get('node_id')}")
                break
