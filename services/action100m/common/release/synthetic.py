"""Release rows of any size for scale tests and benchmarks (the viewer's 10,000-node tree)."""

from __future__ import annotations

from typing import Any


def balanced_tree_row(video_uid: str, nodes: int, seconds: float = 3600.0) -> dict[str, Any]:
    """A release row whose tree has exactly `nodes` nodes: the video split in two, breadth first,
    every node with a caption and an action (ids `n0`, `n1`, ... in breadth-first order)."""
    rows: list[dict[str, Any]] = []
    queue: list[tuple[str | None, int, float, float]] = [(None, 0, 0.0, seconds)]
    while queue and len(rows) < nodes:
        parent, level, start, end = queue.pop(0)
        node_id = f"n{len(rows)}"
        rows.append(
            {
                "node_id": node_id,
                "parent_id": parent,
                "level": level,
                "start": round(start, 2),
                "end": round(end, 2),
                "plm_caption": f"caption of {node_id}",
                "plm_action": f"act {node_id}",
                "llama3_caption": None,
                "gpt": None,
            }
        )
        middle = round((start + end) / 2, 2)
        queue += [(node_id, level + 1, start, middle), (node_id, level + 1, middle, end)]
    return {"video_uid": video_uid, "metadata": {"title": f"{nodes} nodes", "duration": int(seconds)}, "nodes": rows}
