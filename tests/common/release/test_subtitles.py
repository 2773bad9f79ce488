"""Subtitle files (WebVTT, SRT) read as the release's transcript, and which file belongs to a video."""

from __future__ import annotations

import pytest

from action100m.common.release.subtitles import SubtitleError, read_transcript, sidecar_name


def test_webvtt_cues_become_entries_with_exact_times_and_plain_text_keeping_their_line_breaks():
    vtt = (
        "WEBVTT\n\nNOTE made by hand\n\n00:01.000 --> 00:03.500\nhello <i>there</i>\n\n"
        "intro\n01:00:04.125 --> 01:00:06.000 align:start\n<v Roger>second\nline two\n"
    )
    assert read_transcript(vtt.encode(), "clip.vtt") == [
        {"time": "1.0", "text": "hello there"},
        {"time": "3604.125", "text": "second\nline two"},
    ]


def test_srt_cues_become_entries_too():
    srt = "\ufeff1\n00:00:01,040 --> 00:00:03,500\nuno\n\n2\n00:00:04,000 --> 00:00:06,000\n<b>dos</b>\ntres\n"
    assert read_transcript(srt.encode(), "clip.srt") == [
        {"time": "1.04", "text": "uno"},
        {"time": "4.0", "text": "dos\ntres"},
    ]


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("a.srt", "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 -> 00:00:04,000\nx\n", "a.srt: line 6:"),
        ("b.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:0x.000\nx\n", "b.vtt: line 3: not a cue timing"),
        ("c.vtt", "just some text\n", "c.vtt: line 1:"),
    ],
)
def test_a_file_the_parser_would_misread_is_refused_with_its_line(name, text, message):
    with pytest.raises(SubtitleError, match=message.replace(".", r"\.")):
        read_transcript(text.encode(), name)


def test_bytes_that_are_not_utf8_are_refused_with_the_line():
    with pytest.raises(SubtitleError, match=r"d\.vtt: line 3: not UTF-8"):
        read_transcript(b"WEBVTT\n\n\xff\xfe\n", "d.vtt")


def test_the_subtitle_file_of_a_video_is_found_by_its_name():
    assert sidecar_name("clip.mp4", {"clip.vtt", "clip.srt", "clip.en.vtt"}) == "clip.vtt"
    assert sidecar_name("clip.mp4", {"clip.srt", "clip.en.vtt"}) == "clip.srt"
    assert sidecar_name("clip.mp4", {"clip.fr.srt", "clip.en.vtt", "clip2.vtt"}) == "clip.en.vtt"
    assert sidecar_name("clip.mp4", {"clip.pt-BR.srt"}) == "clip.pt-BR.srt"
    assert sidecar_name("clip.mp4", {"clip.notes.final.vtt", "clip2.vtt", "other.vtt"}) is None


def test_windows_line_ends_a_byte_order_mark_and_cue_settings_change_nothing():
    vtt = "\ufeffWEBVTT\r\n\r\n00:00:01.000 --> 00:00:02.000 line:90%\r\nfirst\r\nsecond\r\n\r\n00:00:03.500 --> 00:00:04.000\r\nthird\r\n"
    srt = "\ufeff1\r\n00:00:01,000 --> 00:00:02,000\r\nfirst\r\nsecond\r\n\r\n2\r\n00:00:03,500 --> 00:00:04,000\r\nthird\r\n"
    expected = [{"time": "1.0", "text": "first\nsecond"}, {"time": "3.5", "text": "third"}]
    assert read_transcript(vtt.encode(), "a.vtt") == read_transcript(srt.encode(), "a.srt") == expected


def test_an_arrow_in_a_cues_text_is_text_as_the_formats_say():
    """The timing is the first of a block's first two lines (after a cue identifier or SRT's counter);
    what follows is text, `-->` included. Before: "line 4: not a cue timing" failed the video."""
    vtt = "WEBVTT\n\nintro\n00:00:01.000 --> 00:00:02.000\nturn left --> then right\n\n00:00:03.000 --> 00:00:04.000\nok\n"
    srt = "1\n00:00:01,000 --> 00:00:02,000\nturn left --> then right\n\n2\n00:00:03,000 --> 00:00:04,000\nok\n"
    expected = [{"time": "1.0", "text": "turn left --> then right"}, {"time": "3.0", "text": "ok"}]
    assert read_transcript(vtt.encode(), "a.vtt") == read_transcript(srt.encode(), "a.srt") == expected


def test_webvtt_escapes_are_read_as_the_characters_they_stand_for():
    vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nsalt &amp; pepper, 3 &lt; 4\n"
    assert read_transcript(vtt.encode(), "a.vtt") == [{"time": "1.0", "text": "salt & pepper, 3 < 4"}]


def test_a_subtitle_file_belongs_to_the_video_of_the_longest_stem_it_matches():
    """`talk.en.vtt` beside `talk.mp4` and `talk.en.mp4` is the second's subtitles, never both's."""
    videos = {"talk.mp4", "talk.en.mp4"}
    names = {"talk.en.vtt", "talk.fr.srt"}
    assert sidecar_name("talk.en.mp4", names, videos) == "talk.en.vtt"
    assert sidecar_name("talk.mp4", names, videos) == "talk.fr.srt"
    assert sidecar_name("talk.mp4", {"talk.en.vtt"}, videos) is None
    assert sidecar_name("talk.mp4", {"talk.en.vtt"}, {"talk.mp4"}) == "talk.en.vtt"  # no other claimant


def vtt_of(entries, end_seconds=2.0):
    """A WebVTT file with one cue per entry, each lasting until the next (as captions are made)."""
    import html

    def clock(seconds: float) -> str:
        whole = int(seconds)
        return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}.{round((seconds - whole) * 1000):03d}"

    starts = [float(e["time"]) for e in entries]
    ends = [*starts[1:], starts[-1] + end_seconds]
    cues = [
        f"{clock(a)} --> {clock(b)}\n{html.escape(e['text'], quote=False)}\n"
        for a, b, e in zip(starts, ends, entries, strict=True)
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def test_the_released_transcript_rendered_as_webvtt_reads_back_as_the_same_entries(released_sample):
    import json

    (metadata,) = json.loads(released_sample.read_text())["metadata"]
    transcript = metadata["transcript"]
    assert read_transcript(vtt_of(transcript).encode(), "hySSAAw4t24.en.vtt") == transcript
    with_a_break = [*transcript[:3], {"time": "999.5", "text": "two lines\nin one caption"}]
    assert read_transcript(vtt_of(with_a_break).encode(), "x.vtt")[-1]["text"] == "two lines\nin one caption"


# YouTube's automatic captions as yt-dlp saves them (`--write-auto-subs`): each line is shown as it
# is spoken (word timings), then alone in a 10 ms cue, then as the first line of the next cue.
ROLLING = """WEBVTT
Kind: captions
Language: en

00:00:00.000 --> 00:00:02.310 align:start position:0%
·
hey<00:00:00.480><c> guys</c><00:00:00.840><c> welcome</c><00:00:01.200><c> back</c>

00:00:02.310 --> 00:00:02.320 align:start position:0%
hey guys welcome back
·

00:00:02.320 --> 00:00:05.190 align:start position:0%
hey guys welcome back
today<00:00:02.800><c> we</c><00:00:03.120><c> fix</c><00:00:03.500><c> a</c><00:00:03.700><c> chain</c>

00:00:05.190 --> 00:00:05.200 align:start position:0%
today we fix a chain
·

00:00:05.200 --> 00:00:08.010 align:start position:0%
today we fix a chain
first<00:00:05.600><c> loosen</c><00:00:06.000><c> the</c><00:00:06.300><c> wheel</c>

00:00:08.010 --> 00:00:08.020 align:start position:0%
first loosen the wheel
·

00:00:08.020 --> 00:00:10.000 align:start position:0%
first loosen the wheel
[Music]
""".replace("·", " ")  # YouTube writes a line of one space


def test_rolling_automatic_captions_give_each_line_once_when_it_first_appears():
    assert read_transcript(ROLLING.encode(), "bike.en.vtt") == [
        {"time": "0.0", "text": "hey guys welcome back"},
        {"time": "2.32", "text": "today we fix a chain"},
        {"time": "5.2", "text": "first loosen the wheel"},
        {"time": "8.02", "text": "[Music]"},
    ]


def test_entries_are_in_strictly_increasing_time_and_none_is_only_whitespace():
    srt = (
        "1\n00:00:05,000 --> 00:00:06,000\nlater\n\n2\n00:00:01,000 --> 00:00:02,000\nfirst\n\n"
        "3\n00:00:01,000 --> 00:00:03,000\nsame time\n\n4\n00:00:07,000 --> 00:00:08,000\n   \n"
    )
    assert read_transcript(srt.encode(), "a.srt") == [
        {"time": "1.0", "text": "first\nsame time"},
        {"time": "5.0", "text": "later"},
    ]
