"""Transcripts users already have, as subtitle files: WebVTT (`.vtt`) and SRT (`.srt`), read with
webvtt-py and turned into the release's transcript (`[{"time": "3.45", "text": ...}, ...]`: one entry
per cue, its start in seconds as the release writes them, its lines joined, markup removed).

A file the parser would read past (a cue timing line it does not recognise is otherwise taken as
text, or dropped) is refused with its name and line: planning fails that video, not the run.
"""

from __future__ import annotations

import io
import posixpath
import re

from .metadata import MetadataError, clock_seconds, seconds_text

SUBTITLE_EXTENSIONS = (".vtt", ".srt")
# A line that means to be a cue timing (an arrow between two things), and one that is.
TIMING_LIKE = re.compile(r"\S\s*-{1,2}>\s*\S")
TIMING = re.compile(r"^\s*((?:\d+:)?\d{1,2}:\d{1,2}[.,]\d{1,3})\s+-->\s+((?:\d+:)?\d{1,2}:\d{1,2}[.,]\d{1,3})(\s.*)?$")


class SubtitleError(MetadataError):
    """A subtitle file that cannot be read as a transcript; the message names the file and the line."""


LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]+)?")


def sidecar_name(video_name: str, names: set[str]) -> str | None:
    """The subtitle file that belongs to a video, among the file `names` of its folder: `clip.vtt`,
    `clip.srt`, else the first by name of `clip.<lang>.vtt|srt` (`clip.en.vtt`, `clip.pt-BR.srt`)."""
    stem = posixpath.splitext(video_name)[0]
    for ext in SUBTITLE_EXTENSIONS:
        if f"{stem}{ext}" in names:
            return f"{stem}{ext}"
    tagged = sorted(
        name
        for name in names
        if name.startswith(f"{stem}.")
        and name.lower().endswith(SUBTITLE_EXTENSIONS)
        and LANGUAGE_TAG.fullmatch(posixpath.splitext(name[len(stem) + 1 :])[0])
    )
    return tagged[0] if tagged else None


def read_transcript(data: bytes, name: str) -> list[dict[str, str]]:
    """The release's transcript from a subtitle file's bytes (`name` ends in .vtt or .srt)."""
    import webvtt
    from webvtt.errors import MalformedCaptionError, MalformedFileError

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise SubtitleError(f"{name}: line {line}: not UTF-8 text") from None
    kind = "srt" if name.lower().endswith(".srt") else "vtt"
    _check_timings(text, name)
    try:
        cues = webvtt.from_buffer(io.BytesIO(text.encode()), format=kind, strict=True)
    except (MalformedFileError, MalformedCaptionError) as err:
        raise SubtitleError(f"{name}: line {_line_of(text, str(err))}: {_first_line(str(err))}") from None
    entries = []
    for cue in cues.captions:
        start = clock_seconds(cue.start)
        if start is None:  # the timing check above lets only clock times through
            raise SubtitleError(f"{name}: a cue starts at {cue.start!r}, not a clock time")
        words = " ".join(line.strip() for line in cue.text.splitlines() if line.strip())
        entries.append({"time": seconds_text(start), "text": words})
    return entries


def _check_timings(text: str, name: str) -> None:
    """Every line that means to be a cue timing is one (the parser would take it as text)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if TIMING_LIKE.search(line) and not TIMING.match(line):
            raise SubtitleError(f"{name}: line {number}: not a cue timing (START --> END): {line.strip()[:80]!r}")


def _line_of(text: str, message: str) -> int:
    """The line of the file where the block an error quotes begins (1 when it quotes none)."""
    quoted = re.search(r"\['([^']*)'", message)
    if quoted:
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip() == quoted.group(1).strip():
                return number
    return 1


def _first_line(message: str) -> str:
    return message.splitlines()[0][:120] if message else "not a subtitle file"
