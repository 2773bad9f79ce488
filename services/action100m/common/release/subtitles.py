"""Transcripts users already have, as subtitle files: WebVTT (`.vtt`) and SRT (`.srt`), read with
webvtt-py and turned into the release's transcript (`[{"time": "3.45", "text": ...}, ...]`: one entry
per cue, its start in seconds as the release writes them, markup removed, its lines kept as lines:
the release keeps a caption's own line breaks, `\n` inside the entry). Entries follow the
release's conventions (`transcripts.tidy_transcript`: strictly increasing times, no empty entry).

Automatic captions as yt-dlp saves them (YouTube's "rolling" cues) show each line three times: as
it is spoken (with word timings), alone in a 10 ms cue, and as the first line of the next cue. A file
whose cues mostly begin with the previous cue's last line is read as rolling: one entry per line, at
the time it first appears.

A file the parser would read past (a cue timing line it does not recognise is otherwise taken as
text, or dropped) is refused with its name and line: planning fails that video, not the run.
"""

from __future__ import annotations

import html
import io
import itertools
import posixpath
import re
from collections.abc import Set

from .metadata import MetadataError, clock_seconds, seconds_text
from .transcripts import tidy_transcript

SUBTITLE_EXTENSIONS = (".vtt", ".srt")
# A line that means to be a cue timing (an arrow between two things), and one that is.
TIMING_LIKE = re.compile(r"\S\s*-{1,2}>\s*\S")
TIMING = re.compile(r"^\s*((?:\d+:)?\d{1,2}:\d{1,2}[.,]\d{1,3})\s+-->\s+((?:\d+:)?\d{1,2}:\d{1,2}[.,]\d{1,3})(\s.*)?$")


class SubtitleError(MetadataError):
    """A subtitle file that cannot be read as a transcript; the message names the file and the line."""


LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]+)?")


def _matches(stem: str, name: str) -> bool:
    """Whether subtitle file `name` is `stem.vtt|srt` or `stem.<lang>.vtt|srt`."""
    if not name.lower().endswith(SUBTITLE_EXTENSIONS) or not name.startswith(f"{stem}."):
        return False
    rest = posixpath.splitext(name[len(stem) + 1 :])[0]
    return rest == "" or bool(LANGUAGE_TAG.fullmatch(rest))


def sidecar_name(video_name: str, names: set[str], videos: Set[str] = frozenset()) -> str | None:
    """The subtitle file that belongs to a video, among the file `names` of its folder: `clip.vtt`,
    `clip.srt`, else the first by name of `clip.<lang>.vtt|srt` (`clip.en.vtt`, `clip.pt-BR.srt`). A
    file belongs to the video of the longest stem it matches, never to two: with `talk.mp4` and
    `talk.en.mp4` both in `videos`, `talk.en.vtt` is the second's."""
    stem = posixpath.splitext(video_name)[0]
    stems = {posixpath.splitext(v)[0] for v in videos} | {stem}

    def mine(name: str) -> bool:
        return max((s for s in stems if _matches(s, name)), key=len, default=None) == stem

    for ext in SUBTITLE_EXTENSIONS:
        if f"{stem}{ext}" in names and mine(f"{stem}{ext}"):
            return f"{stem}{ext}"
    tagged = sorted(name for name in names if _matches(stem, name) and mine(name))
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
    text = _checked_blocks(text, name, escape_arrows=kind == "vtt")
    try:
        cues = webvtt.from_buffer(io.BytesIO(text.encode()), format=kind, strict=True)
    except (MalformedFileError, MalformedCaptionError) as err:
        raise SubtitleError(f"{name}: line {_line_of(text, str(err))}: {_first_line(str(err))}") from None
    timed = []
    for cue in cues.captions:
        start = clock_seconds(cue.start)
        if start is None:  # the timing check above lets only clock times through
            raise SubtitleError(f"{name}: a cue starts at {cue.start!r}, not a clock time")
        lines = cue.text.splitlines()
        kept = [line.strip() for line in (map(html.unescape, lines) if kind == "vtt" else lines) if line.strip()]
        timed.append((seconds_text(start), kept))
    if is_rolling([lines for _, lines in timed]):
        return tidy_transcript(first_appearances(timed), joiner=" ")
    return tidy_transcript(({"time": time, "text": "\n".join(lines)} for time, lines in timed), joiner="\n")


def _carried(previous: list[str], lines: list[str]) -> int:
    """How many of `lines` open the cue by repeating the end of the previous cue."""
    return max((k for k in range(1, min(len(previous), len(lines)) + 1) if previous[-k:] == lines[:k]), default=0)


def is_rolling(cues: list[list[str]]) -> bool:
    """Whether most cues (with lines, after the first) open with the last line(s) of the cue before."""
    pairs = [(a, b) for a, b in itertools.pairwise(cues) if a and b]
    return len(pairs) >= 2 and sum(_carried(a, b) > 0 for a, b in pairs) * 2 > len(pairs)


def first_appearances(timed: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    """Rolling cues as one entry per line, at the start of the cue where it first appears."""
    entries = []
    previous: list[str] = []
    for time, lines in timed:
        entries += [{"time": time, "text": line} for line in lines[_carried(previous, lines) :]]
        previous = lines or previous
    return entries


def _checked_blocks(text: str, name: str, escape_arrows: bool) -> str:
    """The file, checked block by block: the cue timing is the first of a block's first two lines
    that looks like one (the other is a cue identifier, or SRT's counter), and must be one (the parser
    would take a broken one as text); the lines after it are the cue's text, `-->` included. With
    `escape_arrows` (WebVTT, whose parser refuses `-->` in a cue's text) an arrow there is written
    as WebVTT's escape, read back as an arrow."""
    lines = text.splitlines()
    start = 0
    for end in [*(i for i, line in enumerate(lines) if not line.strip()), len(lines)]:
        block = range(start, end)
        start = end + 1
        head = [i for i in list(block)[:2] if TIMING_LIKE.search(lines[i])]
        if not head:
            continue
        if not TIMING.match(lines[head[0]]):
            raise SubtitleError(
                f"{name}: line {head[0] + 1}: not a cue timing (START --> END): {lines[head[0]].strip()[:80]!r}"
            )
        if escape_arrows:
            for i in range(head[0] + 1, end):
                lines[i] = lines[i].replace("-->", "--&gt;")
    return "\n".join(lines) + "\n"


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
