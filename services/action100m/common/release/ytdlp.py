"""The metadata yt-dlp leaves beside a video it downloaded (`clip.info.json`), as the release's fields.

yt-dlp's info dictionary names the release's fields the same way (the release's metadata came from
the same YouTube fields): `title`, `description`, `view_count`, `like_count`, `duration` (seconds)
and `upload_date` (`YYYYMMDD`). Only those are taken; the rest (formats, thumbnails, caption URLs)
is ignored. yt-dlp's subtitle files (`clip.en.vtt`) are found by `subtitles.sidecar_name`.
"""

from __future__ import annotations

import math
from typing import Any

from .container import upload_date
from .metadata import MetadataError, json_object, normalize_metadata

INFO_JSON = ".info.json"
FROM_INFO_JSON = ("title", "description", "view_count", "like_count", "duration", "upload_date")


def info_json_name(video_name: str) -> str:
    """`clip.mp4` -> `clip.info.json` (yt-dlp's name for it: the video's stem, then `.info.json`)."""
    stem = video_name.rsplit(".", 1)[0] if "." in video_name else video_name
    return f"{stem}{INFO_JSON}"


def info_metadata(data: bytes, name: str) -> dict[str, Any]:
    """The release's fields that the info file has (absent and null ones left out), in the release's
    types; MetadataError naming the file for a file that is not yt-dlp's JSON object or a value that
    does not fit (a duration yt-dlp gives with a fraction is rounded to whole seconds, as the
    release writes durations)."""
    info = json_object(data, name, "not a yt-dlp info file")
    found = {field: info[field] for field in FROM_INFO_JSON if info.get(field) is not None}
    duration = found.get("duration")
    if isinstance(duration, float) and math.isfinite(duration) and duration >= 0:
        found["duration"] = round(duration)
    if "upload_date" in found:
        date = upload_date(str(found["upload_date"]))
        if date is None:
            raise MetadataError(f"{name}: upload_date {found['upload_date']!r} is not a real day (YYYYMMDD)")
        found["upload_date"] = date
    try:
        normalized = normalize_metadata(found)
    except MetadataError as error:
        raise MetadataError(f"{name}: {error}") from None
    return {field: normalized[field] for field in found}
