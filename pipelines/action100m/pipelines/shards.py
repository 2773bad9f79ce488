"""Planning a run: which videos, with which metadata, in which shards.

Input is a manifest (JSONL or parquet rows: `video_uid`, `uri`, and optional metadata fields) or a
prefix of videos (`s3://bucket/videos/`), whose metadata comes from a sidecar JSON next to each
video (`clip.mp4` -> `clip.json`) when there is one. Metadata fields absent from the input stay null.
"""

from __future__ import annotations

import io
import json
import posixpath
from typing import Any

from action100m.common.store import ArtifactStore

from .fingerprint import artifact_key, fingerprint

METADATA_FIELDS = ("title", "description", "view_count", "like_count", "duration", "upload_date", "transcript")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v", ".mpg", ".mpeg")


class ManifestError(ValueError):
    """A manifest that cannot be planned; the message names the source and the row."""


def _metadata(row: dict[str, Any]) -> dict[str, Any] | None:
    source = row.get("metadata") if isinstance(row.get("metadata"), dict) else row
    meta = {key: source.get(key) for key in METADATA_FIELDS}
    return meta if any(v is not None for v in meta.values()) else None


def read_manifest(store: ArtifactStore, uri: str) -> list[dict[str, Any]]:
    data = store.get_bytes(uri)
    if uri.endswith(".parquet"):
        import pyarrow.parquet as pq

        rows = pq.read_table(io.BytesIO(data)).to_pylist()
    else:
        rows = []
        for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as err:
                raise ManifestError(f"{uri}: line {number} is not JSON ({err})") from None
    videos = []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict) or not row.get("video_uid") or not row.get("uri"):
            raise ManifestError(f"{uri}: row {number} needs 'video_uid' and 'uri'")
        videos.append({"video_uid": str(row["video_uid"]), "uri": str(row["uri"]), "metadata": _metadata(row)})
    return videos


def list_prefix(store: ArtifactStore, prefix: str) -> list[dict[str, Any]]:
    objects = store.list(prefix)
    present = set(objects)
    videos = []
    for uri in objects:
        stem, ext = posixpath.splitext(uri)
        if ext.lower() not in VIDEO_EXTENSIONS:
            continue
        metadata = None
        if f"{stem}.json" in present:
            try:
                metadata = _metadata(json.loads(store.get_bytes(f"{stem}.json")))
            except ValueError as err:
                raise ManifestError(f"{stem}.json: sidecar metadata is not JSON ({err})") from None
        videos.append({"video_uid": posixpath.basename(stem), "uri": uri, "metadata": metadata})
    return videos


def plan_shards(store: ArtifactStore, videos: str, artifact_prefix: str, shard_size: int) -> list[str]:
    """Shard states (JSON strings) for the run; metadata is published as artifacts for the refiner."""
    if shard_size < 1:
        raise ManifestError(f"shard_size must be >= 1, got {shard_size}")
    is_manifest = videos.endswith((".jsonl", ".json", ".parquet"))
    entries = read_manifest(store, videos) if is_manifest else list_prefix(store, videos)
    if not entries:
        raise ManifestError(f"{videos}: no videos found")
    seen: set[str] = set()
    for entry in entries:
        if entry["video_uid"] in seen:
            raise ManifestError(f"{videos}: video_uid {entry['video_uid']} appears twice")
        seen.add(entry["video_uid"])
        if entry["metadata"] is not None:
            fp = fingerprint("metadata", metadata=entry["metadata"])
            entry["metadata_uri"] = artifact_key(artifact_prefix, "metadata", fp, entry["video_uid"])
            if not store.exists(entry["metadata_uri"]):
                store.put_bytes(entry["metadata_uri"], json.dumps(entry["metadata"]).encode(), "application/json")
        else:
            entry["metadata_uri"] = ""
        del entry["metadata"]
    shards = []
    for index in range(0, len(entries), shard_size):
        shards.append(
            json.dumps(
                {
                    "shard": index // shard_size,
                    "prefix": artifact_prefix,
                    "videos": entries[index : index + shard_size],
                    "fingerprints": {},
                    "failed": {},
                    "stage_seconds": {},
                    "calls": {},
                    "stats": {},
                }
            )
        )
    return shards
