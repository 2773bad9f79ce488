"""Node ids exactly as the release makes them.

Measured on the release (4,480 nodes of 10 videos, roots included): a node's id is the UUIDv5, in
the URL namespace, of `"{video_uid}|{start:.6f}|{end:.6f}"` with start and end the 0.01-rounded
seconds. Trees we make use it, so their ids and parent ids mix with the release's.
"""

from __future__ import annotations

import uuid

NODE_ID_RECIPE = "uuid5(NAMESPACE_URL, '{video_uid}|{start:.6f}|{end:.6f}'), start and end rounded to 0.01 s"


def release_node_id(video_uid: str, start: float, end: float) -> str:
    """The release's id of the node of `video_uid` spanning [start, end] seconds."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{video_uid}|{round(float(start), 2):.6f}|{round(float(end), 2):.6f}"))
