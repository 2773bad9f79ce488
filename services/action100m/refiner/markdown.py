"""A tree of captioned segments as Markdown (docs/method.md, "Stage 3").

Depth first. The top node is a `##` heading `{start}s → {end}s (duration: {d}s)`; depths 1 and 2 get
`###` / `####` headings `Segment 1.2 — {times}`; deeper nodes a bold line. Under each heading the
node's video caption, and for a leaf its middle-frame caption as a block quote introduced by its
time. A `---` rule separates siblings above depth 3.
"""

from __future__ import annotations

from dataclasses import dataclass

from action100m.common.artifacts import NodeCaptions, SegmentTree, TreeNode

MAX_CAPTION_CHARS = 4000  # captions come from small models: a runaway one is cut, not sent whole


def span_text(node: TreeNode) -> str:
    return f"{node.start:.2f}s → {node.end:.2f}s (duration: {node.end - node.start:.1f}s)"


def _clip(text: str | None) -> str:
    text = (text or "").strip()
    return text if len(text) <= MAX_CAPTION_CHARS else text[:MAX_CAPTION_CHARS].rstrip() + " […]"


@dataclass
class TreeView:
    """Navigation over a tree with its captions."""

    tree: SegmentTree
    captions: dict[str, NodeCaptions]

    def __post_init__(self) -> None:
        self.children = {k: sorted(v, key=lambda n: n.start) for k, v in self.tree.children_of().items()}
        self.by_id = {n.node_id: n for n in self.tree.nodes}

    def is_leaf(self, node: TreeNode) -> bool:
        return node.node_id not in self.children

    def depth_below(self, node: TreeNode) -> int:
        kids = self.children.get(node.node_id, [])
        return 0 if not kids else 1 + max(self.depth_below(k) for k in kids)

    def render(self, top: TreeNode, max_depth: int) -> str:
        """`top` and its descendants down to `max_depth` levels below it."""
        lines: list[str] = []
        self._render(top, 0, "", max_depth, lines)
        return "\n".join(lines).strip() + "\n"

    def _render(self, node: TreeNode, depth: int, label: str, max_depth: int, lines: list[str]) -> None:
        if depth == 0:
            lines.append(f"## {span_text(node)}")
        elif depth <= 2:
            lines.append(f"{'#' * (depth + 2)} Segment {label} — {span_text(node)}")
        else:
            lines.append(f"**Segment {label} — {span_text(node)}**")
        captions = self.captions.get(node.node_id, NodeCaptions())
        lines.append("")
        lines.append(_clip(captions.plm_caption) or "(no caption)")
        if self.is_leaf(node) and captions.llama3_caption:
            middle = (node.start + node.end) / 2
            lines.append("")
            lines.append(f"> Frame at {middle:.2f}s:")
            lines.extend(f"> {line}" if line else ">" for line in _clip(captions.llama3_caption).splitlines())
        lines.append("")
        if depth >= max_depth:
            return
        kids = self.children.get(node.node_id, [])
        for i, kid in enumerate(kids, start=1):
            if i > 1 and depth + 1 < 3:
                lines.extend(["---", ""])
            self._render(kid, depth + 1, f"{label}.{i}" if label else str(i), max_depth, lines)
