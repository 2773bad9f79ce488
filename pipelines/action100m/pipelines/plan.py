"""Planning a run: which videos, with which metadata, in which shards.

The plan is an artifact: `{artifact_prefix}/runs/{run}/plan.json` and one file per shard, so the
DAG passes only the plan's URI and shard indices between steps, whatever the number of videos.

Input is a manifest (JSON lines, a JSON array, parquet or CSV rows: `video_uid`, `uri` (a URI, or a path:
absolute, or relative to the manifest's folder), optional metadata fields, `transcript_uri` and
`info_json_uri`) or a prefix of videos (`s3://bucket/videos/`). What is found beside each video
(`clip.json`, yt-dlp's `clip.info.json`, subtitle files) and the container's own tags fill the
fields the manifest lacks (`sidecars.merged_metadata`); fields nobody gives stay null.
"""

from __future__ import annotations

import io
import json
import posixpath
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from action100m.common.errors import StageInputError, classify
from action100m.common.release.metadata import FIELDS, MetadataError, normalize_metadata
from action100m.common.stage import MAX_UID_CHARS
from action100m.common.store import ArtifactNotFound, ArtifactStore
from action100m.common.uris import UriError, parse_uri, resolve_location

from .keys import check_uid, metadata_key
from .registry import OPTIONAL, checked_modes
from .sidecars import VIDEO_EXTENSIONS, Folder, LocalSidecars, merged_metadata
from .state import Failure, ShardState, StageConfig, VideoEntry

# A manifest: JSON lines, a JSON array of rows, parquet or CSV (a header row naming the columns).
MANIFEST_EXTENSIONS = (".jsonl", ".json", ".parquet", ".csv")


MANIFEST_MAX_BYTES = 2 << 30  # the most a run reads of a manifest (a runaway file is refused, not read)


def is_manifest(location: str) -> bool:
    return location.lower().endswith(MANIFEST_EXTENSIONS)


class ManifestError(ValueError):
    """A manifest that cannot be planned at all; the message names the source and the line."""


def _metadata(row: dict[str, Any]) -> dict[str, Any] | None:
    nested = row.get("metadata")
    source: dict[str, Any] = nested if isinstance(nested, dict) else row
    meta = {key: source.get(key) for key in FIELDS}
    return meta if any(v is not None for v in meta.values()) else None


def uids_for(uris: Sequence[str]) -> list[str]:
    """video_uids for videos known only by their files: the decoded file name without its extension
    (`my%20clip%20%C3%BC.mp4` -> `my clip ü`); files that share it get their paths relative to
    their common folder (`A/clip`, `B/clip`), and with the extension where even those meet
    (`clip.mp4`, `clip.webm`)."""
    paths = [parse_uri(uri).key for uri in uris]
    uids = [posixpath.splitext(posixpath.basename(path))[0] for path in paths]
    for rule in ("relative", "extension"):
        groups: dict[str, list[int]] = {}
        for index, uid in enumerate(uids):
            groups.setdefault(uid, []).append(index)
        for members in (m for m in groups.values() if len(m) > 1):
            folder = posixpath.commonpath([posixpath.dirname(paths[i]) for i in members])
            for i in members:
                if rule == "relative":
                    uids[i] = posixpath.splitext(posixpath.relpath(paths[i], folder))[0]
                else:
                    uids[i] += posixpath.splitext(paths[i])[1]
    return uids


def read_manifest(store: ArtifactStore, uri: str) -> list[dict[str, Any]]:
    """The manifest's rows as `{video_uid, uri, metadata, line}`; a row that cannot be read stops
    planning with its file and line (ManifestError), a bad metadata value only fails its video."""
    rows = _manifest_rows(uri, store.get_bytes(uri, MANIFEST_MAX_BYTES))
    videos = []
    for number, row in enumerate(rows, start=1):
        if row is None:
            continue
        if not isinstance(row, dict) or row.get("video_uid") in (None, "") or not row.get("uri"):
            raise ManifestError(f"{uri}: line {number} needs 'video_uid' and 'uri'")
        if not isinstance(row["video_uid"], str | int) or not isinstance(row["uri"], str):
            raise ManifestError(f"{uri}: line {number}: 'video_uid' must be text and 'uri' a URI")
        video_uid = str(row["video_uid"])
        if len(video_uid) > MAX_UID_CHARS:
            raise ManifestError(f"{uri}: line {number}: video_uid is longer than {MAX_UID_CHARS} characters")
        entry = {"video_uid": video_uid, "uri": _located(row["uri"], uri), "metadata": _metadata(row), "line": number}
        named = {role: _located(row.get(role) or "", uri) for role in ("transcript_uri", "info_json_uri")}
        videos.append({**entry, "stream": row.get("stream"), **named})
    return videos


def _located(location: Any, manifest: str) -> Any:
    """A manifest's `uri` or `transcript_uri` as a URI: a path, absolute or relative to the
    manifest's folder, is taken as people mean it; what cannot be resolved is kept for planning to
    fail that video with the reason."""
    if not isinstance(location, str):
        return location
    try:
        return resolve_location(location, manifest.rsplit("/", 1)[0])
    except UriError:
        return location


def _manifest_rows(uri: str, data: bytes) -> list[Any]:
    """The rows of a manifest file by its kind (None for a blank JSONL line); ManifestError with the line."""
    if uri.lower().endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return list(pq.read_table(io.BytesIO(data)).to_pylist())
        except pa.ArrowException as err:
            raise ManifestError(f"{uri}: not a readable parquet file ({err})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ManifestError(f"{uri}: line {line} is not UTF-8 text (byte {err.start})") from None
    if uri.lower().endswith(".csv"):
        import csv

        return [{k: v for k, v in row.items() if v not in (None, "")} for row in csv.DictReader(io.StringIO(text))]
    if uri.lower().endswith(".json"):
        try:
            rows = json.loads(text)
        except ValueError as err:
            raise ManifestError(f"{uri}: not JSON ({err})") from None
        if not isinstance(rows, list):
            raise ManifestError(f"{uri}: expected a JSON array of rows, each with 'video_uid' and 'uri'")
        return rows
    rows = []
    for number, line_text in enumerate(text.splitlines(), start=1):
        if not line_text.strip():
            rows.append(None)
            continue
        try:
            rows.append(json.loads(line_text))
        except ValueError as err:
            raise ManifestError(f"{uri}: line {number} is not JSON ({err})") from None
    return rows


def list_prefix(store: ArtifactStore, prefix: str) -> list[dict[str, Any]]:
    """The videos under a prefix (uids from `uids_for`), each with the files beside it that
    planning reads (`sidecars.Folder.beside`)."""
    objects = store.list(prefix)
    uris = [uri for uri in objects if posixpath.splitext(uri)[1].lower() in VIDEO_EXTENSIONS]
    names_by_folder: dict[str, list[str]] = {}
    for uri in objects:
        folder, name = uri.rsplit("/", 1)
        names_by_folder.setdefault(folder, []).append(name)
    folders = {uri: Folder(uri, names) for uri, names in names_by_folder.items()}
    videos = []
    for uri, uid in zip(uris, uids_for(uris), strict=True):
        folder, name = uri.rsplit("/", 1)
        videos.append({"video_uid": uid, "uri": uri, "metadata": None, **folders[folder].beside(name)})
    return videos


@dataclass(frozen=True)
class Plan:
    """Where a run's plan lives in the store, and its shard indices (what the ParallelFor iterates)."""

    run: str
    uri: str  # {artifact_prefix}/runs/{run}/plan.json
    videos: int
    shards: int
    # stage -> its config (StageConfig's fields) when it does not run: imported from a dataset,
    # skipped, or reused (already published)
    imported: dict[str, dict[str, Any]] = field(default_factory=dict)
    made_for: str = ""  # a digest of what it was planned from (see `start_from.make_plan`)

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

    def shard_state(self, store: ArtifactStore, index: int, prefix: str, after: Sequence[str]) -> ShardState:
        """Shard `index` after the stages `after` ran on it: their states in the store, merged (the
        first state of the shard when `after` is empty)."""
        if not after:
            return self.shard(store, index, prefix)
        states = [store.get_bytes(Plan.state_uri(prefix, self.run, index, name)).decode() for name in after]
        return ShardState.merged([ShardState.from_json(text) for text in states])

    @staticmethod
    def state_uri(artifact_prefix: str, run: str, shard: int, stage: str) -> str:
        """Where a DAG step leaves a shard's state after `stage` (the steps pass these URIs, not the JSON)."""
        return f"{Plan.uri_for(artifact_prefix, run).rsplit('/', 1)[0]}/states/{shard:05d}/{stage}.json"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def add_configs(self, store: ArtifactStore, configs: Mapping[str, StageConfig]) -> Plan:
        """The plan with these stages' configs added to those it carries (stages that do not run),
        written over its plan.json."""
        plan = Plan(**{**asdict(self), "imported": {**self.imported, **{n: asdict(c) for n, c in configs.items()}}})
        store.put_bytes(plan.uri, plan.to_json().encode(), "application/json")
        return plan

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
        state = ShardState(run=self.run, shard=index, shards=self.shards, prefix=prefix, videos=videos)
        state.stages.update({name: StageConfig(**config) for name, config in self.imported.items()})
        for video in videos:
            if video.error:
                state.failed[video.video_uid] = Failure("plan", video.error_code, video.error)
        return state


def _stream(value: Any) -> str:
    """A manifest's `stream` (the container's stream to read as the video) as the plan keeps it."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise MetadataError(f"stream must be a stream number (0, 1, ...), got {value!r}")
    return str(int(value))


def plan_entries(store: ArtifactStore, videos: str, workers: int = 32) -> list[dict[str, Any]]:
    """The videos of a manifest or a prefix, each uid once (ManifestError otherwise)."""
    entries = read_manifest(store, videos) if is_manifest(videos) else list_prefix(store, videos)
    if not entries:
        raise ManifestError(f"{videos}: no videos found")
    first_line: dict[str, int] = {}
    for entry in entries:
        uid, line = entry["video_uid"], entry.get("line")
        if uid in first_line:
            where = f"on lines {first_line[uid]} and {line}" if line else "twice"
            raise ManifestError(f"{videos}: video_uid {uid!r} appears {where}")
        first_line[uid] = line or 0
    return entries


def optional_stages(modes: Mapping[str, str], metadata: Mapping[str, Any] | None) -> tuple[list[str], list[str]]:
    """The optional stages that run on a video with this metadata, by the run's modes, and the
    metadata fields they make ("transcript=speech-recognition") for the card."""
    running = [
        spec.name for spec in OPTIONAL if spec.mode is not None and spec.mode.runs_on(modes[spec.name], metadata)
    ]
    made = [
        f"{name.removeprefix('metadata.')}={spec.mode.source}"
        for spec in OPTIONAL
        if spec.name in running and spec.mode is not None
        for name in spec.release_fields
        if name.startswith("metadata.")
    ]
    return running, made


def plan_run(
    store: ArtifactStore,
    videos: str,
    artifact_prefix: str,
    shard_size: int,
    run: str = "",
    workers: int = 32,
    modes: Mapping[str, str] | None = None,
    made_for: str = "",
) -> Plan:
    """Reads the manifest or lists the prefix, publishes each video's metadata for the refiner, and
    writes the plan (one file per shard) under `{artifact_prefix}/runs/{run}/`; `modes` (optional
    stage -> choice, the defaults where absent) say which videos each optional stage runs on."""
    if shard_size < 1:
        raise ManifestError(f"shard_size must be >= 1, got {shard_size}")
    try:
        chosen = checked_modes(modes)  # a bad mode stops planning before any video is read
    except ValueError as error:
        raise ManifestError(str(error)) from None
    run = run or uuid.uuid4().hex[:12]
    entries = plan_entries(store, videos, workers)
    sidecars = LocalSidecars()

    def plan_video(entry: dict[str, Any]) -> VideoEntry:
        """The video's entry; a video that cannot be planned is kept with the reason, and fails alone."""
        uid, uri = entry["video_uid"], entry["uri"]
        try:
            check_uid(uid)
            stream = _stream(entry.get("stream"))
            signature = store.signature(uri)
            metadata, from_files = merged_metadata(store, entry, sidecars)
            running, made = optional_stages(chosen, metadata)
            made_fields = {pair.split("=")[0] for pair in made}  # a stage's output replaces the file's
            sources = ",".join([*(p for p in from_files if p.split("=")[0] not in made_fields), *made])
            metadata_uri = ""
            if metadata is not None:
                metadata = normalize_metadata(metadata)
                metadata_uri = metadata_key(artifact_prefix, uid, metadata)
                if not store.exists(metadata_uri):
                    store.put_bytes(metadata_uri, json.dumps(metadata).encode(), "application/json")
            return VideoEntry(
                uid,
                uri,
                metadata_uri,
                signature,
                stream=stream,
                metadata_sources=sources,
                optional_stages=tuple(running),
            )
        except (
            ArtifactNotFound,
            UriError,
            MetadataError,
            StageInputError,
        ) as error:  # others (S3 down...) stop planning
            code, reason = classify(error)
            return VideoEntry(uid, uri, error_code=code.name, error=reason)

    with ThreadPoolExecutor(workers) as pool:
        planned = list(pool.map(plan_video, entries))
    return write_plan(store, planned, artifact_prefix, shard_size, run, workers=workers, made_for=made_for)


def write_plan(
    store: ArtifactStore,
    planned: Sequence[VideoEntry],
    artifact_prefix: str,
    shard_size: int,
    run: str,
    imported: Mapping[str, StageConfig] | None = None,
    workers: int = 32,
    made_for: str = "",
) -> Plan:
    """Writes the plan of these videos (one file per shard, then plan.json, which readers wait for)."""
    shards = [planned[i : i + shard_size] for i in range(0, len(planned), shard_size)]
    configs = {name: asdict(config) for name, config in (imported or {}).items()}
    plan = Plan(run, Plan.uri_for(artifact_prefix, run), len(planned), len(shards), configs, made_for)

    def write_shard(index: int) -> None:
        body = json.dumps([asdict(v) for v in shards[index]], separators=(",", ":")).encode()
        store.put_bytes(plan.shard_uri(index), body, "application/json")

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(write_shard, range(len(shards))))
    store.put_bytes(plan.uri, plan.to_json().encode(), "application/json")
    return plan
