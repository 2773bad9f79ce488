"""Config fingerprints and the artifact keys built on them.

A stage's fingerprint hashes everything that changes its output: the service's models, its
effective options and the fingerprints of the stages it reads. Keys are
`{prefix}/{kind}/{fingerprint}/{video_uid}.{ext}`, so a rerun finds finished work, and a changed
parameter gives new keys for that stage and those downstream only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def fingerprint(stage: str, **parts: Any) -> str:
    blob = json.dumps({"stage": stage, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def artifact_key(prefix: str, kind: str, fp: str, video_uid: str, extension: str) -> str:
    safe = video_uid.replace("/", "_")
    return f"{prefix.rstrip('/')}/{kind}/{fp}/{safe}.{extension}"


def metadata_key(prefix: str, video_uid: str, metadata: dict[str, Any]) -> str:
    """Where a video's metadata is published for the refiner (keyed by its content)."""
    return artifact_key(prefix, "metadata", fingerprint("metadata", metadata=metadata), video_uid, "json")
