"""Metadata a video file carries itself, for videos whose manifest has none: the container's `title`
and `description` (or `synopsis`, or a `comment` that is more than a link) tags, its duration
(whole seconds, as the release writes it) and its date (`upload_date`, `YYYYMMDD`: the `date` tag,
else `creation_time`). Read with PyAV from the container's header only (no frame is decoded), from
a local path or an http(s) URL (a presigned S3 URL: FFmpeg fetches the header with range requests).

yt-dlp's `--embed-metadata` writes the upload date as `date`, the description as `description`
and `synopsis`, and the video's page URL as `comment`; `creation_time` is when the file was muxed.
So `date` wins over `creation_time`, and a comment that is only a URL is not a description.
"""

from __future__ import annotations

import re
from typing import Any

FROM_CONTAINER = ("title", "description", "duration", "upload_date")
DATE = re.compile(r"^\s*(\d{4})-?(\d{2})-?(\d{2})")
ONLY_A_LINK = re.compile(r"^\s*[a-z][a-z0-9+.-]*://\S+\s*$", re.IGNORECASE)


# the key under which `container_metadata` names a date tag that is no real day (`00000000`, month
# 13, `99999999`): the video's upload_date stays null, and the card says why
IMPOSSIBLE_DATE = "upload_date_impossible"
FIRST_YEAR = 1900


def upload_date(value: str) -> str | None:
    """`2019-02-12T10:00:00Z`, `2019-02-12` or `20190212` -> `20190212`; None for anything else, and
    for a date that is no real day (month 13, `00000000`) or lies in the future."""
    import datetime

    match = DATE.match(value)
    if not match:
        return None
    year, month, day = map(int, match.groups())
    try:
        day_named = datetime.date(year, month, day)
    except ValueError:
        return None
    latest = datetime.date.today() + datetime.timedelta(days=1)  # a camera's clock a day ahead, not a year
    return "".join(match.groups()) if year >= FIRST_YEAR and day_named <= latest else None


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
    comment = tags.get("comment", "")
    description = tags.get("description") or tags.get("synopsis") or ("" if ONLY_A_LINK.match(comment) else comment)
    if description:
        found["description"] = description.strip()
    if seconds is not None and seconds > 0:
        found["duration"] = round(seconds)
    dates = [tags[k] for k in ("date", "creation_time") if tags.get(k)]
    date = next((d for d in map(upload_date, dates) if d), None)
    if date:
        found["upload_date"] = date
    elif any(DATE.match(value) for value in dates):
        found[IMPOSSIBLE_DATE] = next(value for value in dates if DATE.match(value)).strip()
    return found
