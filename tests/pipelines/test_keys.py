"""Artifact keys: one per (stage config, video, input), safe in any URI whatever the uid."""

from __future__ import annotations

import re

import pytest

from action100m.common.uris import parse_uri
from action100m.pipelines.keys import READABLE_UID_CHARS, artifact_key, input_id, uid_key

TRICKY_UIDS = [
    "a/b",
    "a_b",
    "a%2Fb",
    "c d",
    "c%20d",
    "c+d",
    "x#y",
    "x?y",
    "..",
    ".",
    "ü",
    "u\u0308",
    "~",
    "%7E",
    "A",
    "a",
]


def test_distinct_uids_give_distinct_uri_safe_keys(tmp_path):
    keys = {uid: artifact_key(f"file://{tmp_path}", "trees", "fp", uid, "json", "in") for uid in TRICKY_UIDS}
    assert len(set(keys.values())) == len(TRICKY_UIDS)
    for uid, key in keys.items():
        parsed = parse_uri(key)  # no fragment, query, '..' or empty segment: every key parses
        assert parsed.key.startswith(str(tmp_path)) and parsed.name.count("/") == 0, uid
    assert uid_key("a/b") == "a%2Fb" and uid_key("a%2Fb") == "a%252Fb" and uid_key("my clip ü") == "my%20clip%20%C3%BC"


@pytest.mark.parametrize("uid", ["x" * 5000, "ü" * 1000, "a" * (READABLE_UID_CHARS - 1) + "ü" * 3])
def test_long_uids_fit_a_file_name_and_stay_distinct(uid):
    key = uid_key(uid)
    assert len(key.encode()) <= 200 and uid_key(uid + "!") != key
    head, digest = key.split("~")
    assert re.fullmatch(r"(%[0-9A-F]{2}|[A-Za-z0-9._-])+", head) and len(digest) == 32  # no escape cut in two


def test_the_input_is_part_of_the_key():
    same = input_id("file:///v/clip.mp4", "size=1;mtime_ns=1")
    assert same == input_id("file:///v/clip.mp4", "size=1;mtime_ns=1")
    assert same != input_id("file:///w/clip.mp4", "size=1;mtime_ns=1")  # another file, same name
    assert same != input_id("file:///v/clip.mp4", "size=1;mtime_ns=2")  # the same file, edited
    assert same != input_id("file:///v/clip.mp4", "size=1;mtime_ns=1", "file:///meta/clip.json")
