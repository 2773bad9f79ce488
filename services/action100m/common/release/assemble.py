"""Between the stages' artifacts and release rows, both ways.

`to_row` is the export (tree + captions + annotations + metadata -> one release row); `from_row`
takes a released (or exported) row apart again, e.g. to render the refiner's prompts for it.
"""

from __future__ import annotations

from typing import Any

from ..artifacts import CAPTION_FIELDS, Annotations, Captions, NodeCaptions, SegmentTree, TreeNode


def from_row(row: dict[str, Any]) -> tuple[SegmentTree, Captions, dict[str, Any] | None]:
    nodes = [
        TreeNode(n["node_id"], n["parent_id"], int(n["level"]), float(n["start"]), float(n["end"]))
        for n in row["nodes"]
    ]
    root = next(n for n in nodes if n.parent_id is None)
    tree = SegmentTree(row["video_uid"], root.end, nodes)
    captions = Captions(
        row["video_uid"], {n["node_id"]: NodeCaptions(**{f: n.get(f) for f in CAPTION_FIELDS}) for n in row["nodes"]}
    )
    return tree, captions, row.get("metadata")


def to_row(
    tree: SegmentTree, captions: Captions | None, annotations: Annotations | None, metadata: dict[str, Any] | None
) -> dict[str, Any]:
    row = tree.to_release_row(metadata)
    for node in row["nodes"]:
        caption = captions.nodes.get(node["node_id"]) if captions else None
        if caption is not None:
            for name in CAPTION_FIELDS:
                node[name] = getattr(caption, name)
        annotation = annotations.nodes.get(node["node_id"]) if annotations else None
        if annotation is not None:
            node["gpt"] = annotation.gpt
    return row
