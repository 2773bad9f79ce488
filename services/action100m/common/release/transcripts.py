"""The conventions of the release's transcripts, which every source of a transcript follows (subtitle
files, speech recognition): entries in strictly increasing time (no two share a start), none of
only whitespace. Entries that start at the same time are one entry (their texts joined), so nothing
said is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal


def tidy_transcript(entries: Iterable[dict[str, str]], joiner: str = " ") -> list[dict[str, str]]:
    """The entries in time order (stable), whitespace-only ones dropped, those sharing a time merged
    with `joiner` between their texts."""
    kept = sorted((e for e in entries if e["text"].strip()), key=lambda e: Decimal(e["time"]))
    tidy: list[dict[str, str]] = []
    for entry in kept:
        if tidy and Decimal(tidy[-1]["time"]) == Decimal(entry["time"]):
            tidy[-1] = {"time": tidy[-1]["time"], "text": f"{tidy[-1]['text']}{joiner}{entry['text']}"}
        else:
            tidy.append({"time": entry["time"], "text": entry["text"]})
    return tidy
