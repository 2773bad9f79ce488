"""Planning a run: which videos, with which metadata, in which shards.

The plan is an artifact: `{artifact_prefix}/runs/{run}/plan.json` and one file per shard, so the
DAG passes only the plan's URI and shard indices between steps, whatever the number of videos.

Input is a manifest (JSONL or parquet rows: `video_uid`, `uri`, and optional metadata fields) or a
prefix of videos (`s3://bucket/videos/`), whose metadata comes from a sidecar JSON next to each
video (`clip.mp4` -> `clip.json`) when there is one. Metadata fields absent from the input stay null.
"""

from __future__ import annotations

import io
import json
import posixpath
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from action100m.common.store import ArtifactStore

from .keys import metadata_key
from .state import ShardState, VideoEntry

METADATA_FIELDS = ("title", "description", "view_count", "like_count", "duration", "upload_date", "transcript")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v", ".mpg", ".mpeg")


class ManifestError(ValueError):
    """A manifest that cannot be planned; the message names the source and the row."""


def _metadata(row: dict[str, Any]) -> dict[str, Any] | None:
    nested = row.get("metadata")
    source: dict[str, Any] = nested if isinstance(nested, dict) else row
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


def list_prefix(store: ArtifactStore, prefix: str, workers: int = 32) -> list[dict[str, Any]]:
    """The videos under a prefix; a sidecar `clip.json` next to `clip.mp4` is its metadata (read concurrently)."""
    objects = store.list(prefix)
    present = set(objects)
    videos = []
    for uri in objects:
        stem, ext = posixpath.splitext(uri)
        if ext.lower() in VIDEO_EXTENSIONS:
            sidecar = f"{stem}.json" if f"{stem}.json" in present else ""
            videos.append({"video_uid": posixpath.basename(stem), "uri": uri, "sidecar": sidecar})

    def read_sidecar(video: dict[str, Any]) -> dict[str, Any] | None:
        if not video["sidecar"]:
            return None
        try:
            return _metadata(json.loads(store.get_bytes(video["sidecar"])))
        except ValueError as err:
            raise ManifestError(f"{video['sidecar']}: sidecar metadata is not JSON ({err})") from None

    with ThreadPoolExecutor(workers) as pool:
        for video, metadata in zip(videos, pool.map(read_sidecar, videos), strict=True):
            del video["sidecar"]
            video["metadata"] = metadata  # type: ignore[assignment]
    return videos


@dataclass(frozen=True)
class Plan:
    """Where a run's plan lives in the store, and its shard indices (what the ParallelFor iterates)."""

    run: str
    uri: str  # {artifact_prefix}/runs/{run}/plan.json
    videos: int
    shards: int

    @staticmethod
    def uri_for(artifact_prefix: str, run: str) -> str:
        return f"{artifact_prefix.rstrip('/')}/runs/{run}/plan.json"

    @property
    def folder(self) -> str:
        return self.uri.rsplit("/", 1)[0]

    def shard_uri(self, index: int) -> str:
        return f"{self.folder}/shards/{index:05d}.json"

    def report_uri(self, index: int) -> str:
        return f"{self.folder}/reports/{index:05d}.json"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> Plan:
        return cls(**json.loads(text))

    @classmethod
    def load(cls, store: ArtifactStore, uri: str) -> Plan:
        return cls.from_json(store.get_bytes(uri))

    def shard(self, store: ArtifactStore, index: int, prefix: str) -> ShardState:
        """The first state of shard `index`: its videos, nothing done yet."""
        if not 0 <= index < self.shards:
            raise ValueError(f"{self.uri}: shard {index} is outside 0..{self.shards - 1}")
        videos = [VideoEntry.from_dict(v) for v in json.loads(store.get_bytes(self.shard_uri(index)))]
        return ShardState(run=self.run, shard=index, shards=self.shards, prefix=prefix, videos=videos)


def plan_run(
    store: ArtifactStore, videos: str, artifact_prefix: str, shard_size: int, run: str = "", workers: int = 32
) -> Plan:
    """Reads the manifest or lists the prefix, publishes each video's metadata for the refiner, and
    writes the plan (one file per shard) under `{artifact_prefix}/runs/{run}/`."""
    if shard_size < 1:
        raise ManifestError(f"shard_size must be >= 1, got {shard_size}")
    run = run or uuid.uuid4().hex[:12]
    is_manifest = videos.endswith((".jsonl", ".json", ".parquet"))
    entries = read_manifest(store, videos) if is_manifest else list_prefix(store, videos, workers)
    if not entries:
        raise ManifestError(f"{videos}: no videos found")
    seen: set[str] = set()
    for entry in entries:
        if entry["video_uid"] in seen:
            raise ManifestError(f"{videos}: video_uid {entry['video_uid']} appears twice")
        seen.add(entry["video_uid"])

    def publish_metadata(entry: dict[str, Any]) -> VideoEntry:
        metadata = entry["metadata"]
        if metadata is None:
            return VideoEntry(entry["video_uid"], entry["uri"])
        uri = metadata_key(artifact_prefix, entry["video_uid"], metadata)
        if not store.exists(uri):
            store.put_bytes(uri, json.dumps(metadata).encode(), "application/json")
        return VideoEntry(entry["video_uid"], entry["uri"], uri)

    with ThreadPoolExecutor(workers) as pool:
        planned = list(pool.map(publish_metadata, entries))
        shards = [planned[i : i + shard_size] for i in range(0, len(planned), shard_size)]
        plan = Plan(run, Plan.uri_for(artifact_prefix, run), len(planned), len(shards))

        def write_shard(index: int) -> None:
            body = json.dumps([asdict(v) for v in shards[index]], separators=(",", ":")).encode()
            store.put_bytes(plan.shard_uri(index), body, "application/json")

        list(pool.map(write_shard, range(len(shards))))
    store.put_bytes(plan.uri, plan.to_json().encode(), "application/json")
    return plan
