"""The release's transcript conventions, which every transcript source follows."""

from __future__ import annotations

from action100m.common.release.transcripts import tidy_transcript


def test_times_strictly_increase_and_what_shares_a_time_is_one_entry():
    entries = [
        {"time": "4.0", "text": "later"},
        {"time": "1.5", "text": "first"},
        {"time": "1.50", "text": "said at once"},
        {"time": "2.0", "text": " \n "},
    ]
    assert tidy_transcript(entries) == [{"time": "1.5", "text": "first said at once"}, {"time": "4.0", "text": "later"}]
    assert tidy_transcript(entries, joiner="\n")[0]["text"] == "first\nsaid at once"


def test_the_released_transcript_is_already_tidy(released_sample):
    import json

    (metadata,) = json.loads(released_sample.read_text())["metadata"]
    assert tidy_transcript(metadata["transcript"]) == metadata["transcript"]
