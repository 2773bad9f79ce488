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


HOSTILE_UIDS = [
    "C:\\videos\\clip",  # backslashes
    "nul\x00byte",
    "a/../b",
    "a/./b",
    "/../etc/passwd",
    "a//b",
    "a/b",
    "/abs",
    "abs",
    "%5C",
    "%2F%2E%2E",
    "new\nline",
    "tab\there",
    "\u202eright-to-left",
    "emoji 🎬",
    "".join(chr(c) for c in range(1, 32)),
    " ",
]


def test_every_uid_the_plan_accepts_round_trips_through_its_key(tmp_path):
    """Each uid gets a key that parses (no refused segment, no separator it did not have), names a
    file of its own, and is read back whole from a real store."""
    from action100m.common.store import ArtifactStore

    root = f"file://{tmp_path}"
    store = ArtifactStore([root])
    keys = {uid: artifact_key(root, "trees", "fp", uid, "json", "in") for uid in HOSTILE_UIDS}
    assert len(set(keys.values())) == len(HOSTILE_UIDS)
    for uid, key in keys.items():
        parsed = parse_uri(key)
        assert parsed.path.parent == tmp_path / "trees" / "fp", uid  # never a folder of its own
        assert parsed.path.name == f"{uid_key(uid)}.in.json", uid  # the name, exactly
        store.put_bytes(key, uid.encode("utf-8", "surrogatepass"))
    for uid, key in keys.items():
        assert store.get_bytes(key) == uid.encode("utf-8", "surrogatepass")
    assert len(list((tmp_path / "trees" / "fp").iterdir())) == len(HOSTILE_UIDS)


def test_a_uid_that_is_not_text_is_refused_when_planned():
    from action100m.pipelines.keys import check_uid

    check_uid("fine ü")
    with pytest.raises(ValueError, match="is not valid Unicode text"):  # StageInputError: INVALID_ARGUMENT
        check_uid("lone \ud800 surrogate")
