"""Metadata a video file carries itself, for videos whose manifest has none: the container's `title`
and `description` (or `comment`) tags, its duration (whole seconds, as the release writes it) and
its creation date (`upload_date`, `YYYYMMDD`, from `creation_time` or `date`). Read with PyAV from
the container's header only (no frame is decoded), from a local path or an http(s) URL (a presigned
S3 URL: FFmpeg fetches the header with range requests).
"""

from __future__ import annotations

import re
from typing import Any

FROM_CONTAINER = ("title", "description", "duration", "upload_date")
DATE = re.compile(r"^\s*(\d{4})-?(\d{2})-?(\d{2})")


def upload_date(value: str) -> str | None:
    """`2019-02-12T10:00:00Z`, `2019-02-12` or `20190212` -> `20190212` (None for anything else)."""
    match = DATE.match(value)
    return "".join(match.groups()) if match else None


NETWORK_TIMEOUT_US = "15000000"  # a URL that stops answering gives up after 15 s, not forever


def container_metadata(path: str) -> dict[str, Any]:
    """What the file says of the release's metadata fields (only those it has); {} when it cannot be opened."""
    try:
        import av

        remote = path.startswith(("http://", "https://"))
        with av.open(path, options={"rw_timeout": NETWORK_TIMEOUT_US} if remote else None) as container:
            tags = {str(k).lower(): str(v) for k, v in (container.metadata or {}).items() if str(v).strip()}
            seconds = container.duration / 1_000_000 if container.duration else None
    except Exception:  # not readable as a video: the stages that decode it say why, planning goes on
        return {}
    found: dict[str, Any] = {}
    if tags.get("title"):
        found["title"] = tags["title"].strip()
    description = tags.get("description") or tags.get("comment") or tags.get("synopsis")
    if description:
        found["description"] = description.strip()
    if seconds is not None and seconds > 0:
        found["duration"] = round(seconds)
    date = next((d for d in (upload_date(tags.get(k, "")) for k in ("creation_time", "date")) if d), None)
    if date:
        found["upload_date"] = date
    return found
