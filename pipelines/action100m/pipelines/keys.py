"""Config fingerprints, video identities and the artifact keys built on them.

A stage's fingerprint hashes everything that changes its output: the service's models, its
effective options and the fingerprints of the stages it reads. A video's key names both the video
(its uid, see `uid_key`) and its input (`input_id`: the video's URI and content signature, plus the
metadata for the stages that read it). Keys are `{prefix}/{kind}/{fingerprint}/{uid_key}.{input_id}.{ext}`,
so a rerun finds finished work, a changed parameter gives new keys for that stage and those
downstream only, and another file under the same uid, or the same file edited, is never served
another input's results.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from action100m.common.errors import StageInputError

# Long uids keep a readable head and a digest of the whole uid: a key must fit a file name (255 bytes).
READABLE_UID_CHARS = 100


def fingerprint(stage: str, **parts: Any) -> str:
    blob = json.dumps({"stage": stage, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def uid_key(video_uid: str) -> str:
    """The file-name form of a uid: URI-safe and injective for any Unicode uid.

    Every character but ASCII letters, digits, `-`, `_` and `.` is percent-encoded (UTF-8), so
    `a/b` -> `a%2Fb`, `a_b` stays, `c d` -> `c%20d` and `c%20d` -> `c%2520d`: distinct uids give
    distinct keys. Past `READABLE_UID_CHARS` the encoded uid is cut and `~` plus a 128-bit digest
    of the whole uid is appended (`~` is always encoded otherwise, so the two forms never meet).
    """
    encoded = quote(video_uid, safe="-_.")
    if len(encoded) <= READABLE_UID_CHARS:
        return encoded
    head = encoded[:READABLE_UID_CHARS]
    partial_escape = head.rfind("%", len(head) - 2)
    if partial_escape != -1:
        head = head[:partial_escape]
    return f"{head}~{hashlib.sha256(video_uid.encode()).hexdigest()[:32]}"


def input_id(uri: str, signature: str, metadata_uri: str = "", stream: str = "", upstream: Sequence[str] = ()) -> str:
    """What a video's artifacts were computed from: its URI and content signature (size and mtime or
    ETag), the stream read as the video when the manifest names one, for the stages that read it its
    metadata artifact (itself keyed by its content), and the artifacts of the optional stages that
    ran on it and that the stage reads (`upstream`: the transcriber's transcript, keyed by its
    config and the video)."""
    parts = [uri, signature, metadata_uri, *([stream] if stream else [])]
    blob = json.dumps([*parts, *([list(upstream)] if upstream else [])])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def artifact_key(prefix: str, kind: str, fp: str, video_uid: str, extension: str, video_input: str = "") -> str:
    """The artifact's URI. Its file name is `uid_key` (percent-encoded), itself percent-encoded once
    more in the URI, so reading the URI back (which decodes it once) gives that name exactly: a `/`,
    `\\` or `..` in a uid never becomes a path separator or a refused segment."""
    if not video_uid:  # an artifact of the input alone, shared by every uid that names it
        name = f"input-{video_input}"
    else:
        name = f"{uid_key(video_uid)}.{video_input}" if video_input else uid_key(video_uid)
    return f"{prefix.rstrip('/')}/{kind}/{fp}/{quote(name, safe='-_.~')}.{extension}"


def check_uid(video_uid: str) -> None:
    """Refuses a uid no artifact can be named by (a lone surrogate, not text in any encoding):
    caught when the video is planned, so it fails alone."""
    try:
        video_uid.encode("utf-8")
    except UnicodeEncodeError as error:
        raise StageInputError(f"video_uid {video_uid!r} is not valid Unicode text ({error.reason})") from None


def metadata_key(prefix: str, video_uid: str, metadata: dict[str, Any]) -> str:
    """Where a video's metadata is published for the refiner (keyed by its content)."""
    return artifact_key(prefix, "metadata", fingerprint("metadata", metadata=metadata), video_uid, "json")
