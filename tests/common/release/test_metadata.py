"""Metadata against the release schema: the lossless coercions, and a message naming what is wrong."""

from __future__ import annotations

import pytest

from action100m.common.release.metadata import MetadataError, normalize_metadata


def test_lossless_coercions_and_nulls():
    meta = normalize_metadata(
        {
            "title": "Bread",
            "view_count": "123",
            "like_count": 7.0,
            "duration": 60,
            "upload_date": 20190212,
            "transcript": [{"time": 3.45, "text": "hi"}, {"time": "5", "text": None}],
        }
    )
    assert meta == {
        "title": "Bread",
        "description": None,
        "view_count": 123,
        "like_count": 7,
        "duration": 60,
        "upload_date": "20190212",
        "transcript": [{"time": "3.45", "text": "hi"}, {"time": "5", "text": ""}],
    }


@pytest.mark.parametrize(
    "metadata,message",
    [
        ({"view_count": 12.7}, "metadata.view_count: expected a whole number, got 12.7"),
        ({"view_count": "12.7"}, "metadata.view_count: expected a whole number, got '12.7'"),
        ({"like_count": True}, "metadata.like_count: expected a whole number, got True"),
        ({"duration": -3}, "metadata.duration: expected a number >= 0, got -3"),
        ({"title": ["a"]}, "metadata.title: expected text, got list ['a']"),
        ({"transcript": "words"}, "metadata.transcript: expected a list of {time, text} entries, got 'words'"),
        ({"transcript": ["words"]}, "metadata.transcript[0]: expected {time, text}, got 'words'"),
        (
            {"transcript": [{"time": "1:02:03:04"}]},
            "metadata.transcript[0].time: expected seconds (a number) or a clock time (HH:MM:SS.mmm), got '1:02:03:04'",
        ),
        ({"transcript": [{"time": "nan"}]}, "metadata.transcript[0].time: expected finite seconds >= 0, got 'nan'"),
        ({"transcript": [{"time": 1, "text": 5}]}, "metadata.transcript[0].text: expected text, got 5"),
    ],
)
def test_values_that_do_not_fit_are_refused_with_the_field_named(metadata, message):
    with pytest.raises(MetadataError) as error:
        normalize_metadata(metadata)
    assert str(error.value) == message


@pytest.mark.parametrize(
    "given,release",
    [
        ("00:00:01.000", "1.0"),
        ("00:01:02.5", "62.5"),
        ("1:02", "62.0"),
        ("01:00:04,120", "3604.12"),  # SRT's decimal comma
        ("0:00:00.001", "0.001"),
        ("3.45", "3.45"),  # numeric strings are kept as written
        (7.8, "7.8"),
    ],
)
def test_clock_times_in_a_transcript_are_converted_exactly(given, release):
    (entry,) = normalize_metadata({"transcript": [{"time": given, "text": "x"}]})["transcript"]
    assert entry == {"time": release, "text": "x"}
