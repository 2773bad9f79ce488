"""A video's metadata checked against the release schema before any work is spent on it.

Planning calls `normalize_metadata` on every video, so a bad value fails that video at once with a
message naming the field, instead of failing the refine stage or the export hours later.

Coercions, all lossless (anything else is refused):
- `view_count`, `like_count`, `duration`: an int, a whole float (`12.0`) or a decimal string
  (`"123"`) -> int; `12.7`, `"12.7"`, `true`, negative numbers are refused (never truncated);
- `title`, `description`, `upload_date`: a string; a number is written as text (`20190212` ->
  `"20190212"`);
- `transcript`: a list of `{"time", "text"}` entries; `time` is seconds, a number or numeric string
  (kept as the release writes it: a string, `3.45` -> `"3.45"`), or a clock time `HH:MM:SS(.mmm)`
  or `MM:SS(.mmm)` (`,` also taken as the decimal mark, as in SRT), converted exactly
  (`00:01:02.500` -> `"62.5"`); finite and >= 0; `text` a string.
Missing fields and nulls stay null.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

TEXT_FIELDS = ("title", "description", "upload_date")
COUNT_FIELDS = ("view_count", "like_count", "duration")
FIELDS = ("title", "description", "view_count", "like_count", "duration", "upload_date", "transcript")


class MetadataError(ValueError):
    """Metadata that does not fit the release schema; the message names the field and the value."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise MetadataError(f"metadata.{name}: expected a whole number, got {_show(value)}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise MetadataError(f"metadata.{name}: expected a whole number, got {_show(value)}")
    if number < 0:
        raise MetadataError(f"metadata.{name}: expected a number >= 0, got {number}")
    return number


def _text(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise MetadataError(f"metadata.{name}: expected text, got {type(value).__name__} {_show(value)}")


CLOCK = re.compile(r"^\s*(?:(\d+):)?([0-5]?\d):([0-5]?\d(?:[.,]\d+)?)\s*$")


def seconds_text(seconds: Decimal) -> str:
    """Seconds as the release writes them: the shortest exact decimal with at least one decimal
    place (`62.5`, `3.45`, `1.0`)."""
    text = format(seconds.normalize(), "f")
    return text if "." in text else f"{text}.0"


def clock_seconds(clock: str) -> Decimal | None:
    """`HH:MM:SS(.mmm)` or `MM:SS(.mmm)` as exact seconds; None when it is not a clock time."""
    match = CLOCK.match(clock)
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + Decimal(seconds.replace(",", "."))


def _seconds(where: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MetadataError(f"{where}: expected seconds (a number), got {_show(value)}")
    if isinstance(value, str) and (clock := clock_seconds(value)) is not None:
        return seconds_text(clock)
    try:
        seconds = float(value)
    except ValueError:
        raise MetadataError(
            f"{where}: expected seconds (a number) or a clock time (HH:MM:SS.mmm), got {_show(value)}"
        ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise MetadataError(f"{where}: expected finite seconds >= 0, got {_show(value)}")
    return value if isinstance(value, str) else repr(value)


def _transcript(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise MetadataError(f"metadata.transcript: expected a list of {{time, text}} entries, got {_show(value)}")
    entries = []
    for index, entry in enumerate(value):
        where = f"metadata.transcript[{index}]"
        if not isinstance(entry, dict):
            raise MetadataError(f"{where}: expected {{time, text}}, got {_show(entry)}")
        text = entry.get("text")
        if text is not None and not isinstance(text, str):
            raise MetadataError(f"{where}.text: expected text, got {_show(text)}")
        entries.append({"time": _seconds(f"{where}.time", entry.get("time")), "text": text or ""})
    return entries


def json_object(data: bytes, name: str, expected: str) -> dict[str, Any]:
    """The JSON object a metadata file holds; MetadataError `NAME: EXPECTED: not JSON (...)`, or
    `...: expected a JSON object, got list`, for one that is not one."""
    try:
        found = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as error:
        raise MetadataError(f"{name}: {expected}: not JSON ({error})") from None
    if not isinstance(found, dict):
        raise MetadataError(f"{name}: {expected}: expected a JSON object, got {type(found).__name__}")
    return found


def normalize_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata with every field in its release type (see the module's coercions), or MetadataError."""
    if not isinstance(metadata, dict):
        raise MetadataError(f"metadata: expected an object, got {_show(metadata)}")
    normalized: dict[str, Any] = {}
    for name in FIELDS:
        value = metadata.get(name)
        if value is None:
            normalized[name] = None
        elif name in COUNT_FIELDS:
            normalized[name] = _count(name, value)
        elif name in TEXT_FIELDS:
            normalized[name] = _text(name, value)
        else:
            normalized[name] = _transcript(value)
    return normalized
