"""Locations as people write them in a manifest: URIs kept, paths taken absolute or relative to the
manifest's folder, locally and in a bucket."""

from __future__ import annotations

import pytest

from action100m.common.uris import UriError, parse_uri, resolve_location


@pytest.mark.parametrize(
    "location,expected",
    [
        ("clip.mp4", "file:///data/in/clip.mp4"),
        ("sub/clip.mp4", "file:///data/in/sub/clip.mp4"),
        ("../other/clip.mp4", "file:///data/other/clip.mp4"),
        ("./a/../clip.mp4", "file:///data/in/clip.mp4"),
        ("/abs/my clip.mp4", "file:///abs/my%20clip.mp4"),
        ("s3://bucket/x.mp4", "s3://bucket/x.mp4"),
        ("file:///kept/../as/is.mp4", "file:///kept/../as/is.mp4"),  # a URI: parsed strictly later
    ],
)
def test_a_local_manifest_s_paths(location, expected):
    assert resolve_location(location, "file:///data/in") == expected


def test_a_manifest_in_a_bucket_resolves_within_the_bucket():
    assert resolve_location("clip.mp4", "s3://videos/batch1") == "s3://videos/batch1/clip.mp4"
    assert resolve_location("../batch2/clip.mp4", "s3://videos/batch1") == "s3://videos/batch2/clip.mp4"
    assert resolve_location("clip.mp4", "s3://videos") == "s3://videos/clip.mp4"
    with pytest.raises(UriError, match="climbs out of the bucket"):
        resolve_location("../../elsewhere.mp4", "s3://videos/batch1")


def test_resolved_paths_parse_back_to_the_same_file():
    uri = resolve_location("my clip ü.mp4", "file:///data/in")
    assert parse_uri(uri).path.as_posix() == "/data/in/my clip ü.mp4"
