"""Starting a run from a dataset instead of videos: the release's rows (or one of our outputs) carry
the tree and the captions, so the stages before those named run nowhere; their artifacts are
imported from the rows.

`a100m run --from DATASET --stages refine` re-annotates a dataset with another LLM, prompt or
number of rounds (no video needed); `--stages caption,refine` re-captions it on the same tree (the
videos from `--videos DIR`, matched by uid). The imported artifacts are keyed by the dataset's
content (a digest of its files), so a rerun finds them and has nothing to do; every node id, time
and upstream field reaches the output unchanged.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from action100m.common.artifacts import Captions, NodeCaptions, SegmentTree, TreeNode
from action100m.common.errors import StageInputError, classify
from action100m.common.release.files import NotReleaseFile, check_release_rows, rows_from_bytes
from action100m.common.release.metadata import MetadataError, normalize_metadata
from action100m.common.release.rules import check_video
from action100m.common.store import ArtifactNotFound, ArtifactStore
from action100m.common.uris import UriError

from .keys import check_uid, fingerprint, metadata_key
from .plan import ManifestError, Plan, plan_run, write_plan
from .registry import ANNOTATIONS, CAPTIONS, STAGES, TREE, stage
from .sidecars import VIDEO_EXTENSIONS
from .state import SKIPPED, StageConfig, VideoEntry

# The stages a dataset's rows can stand in for: the tree, and the captions.
IMPORTABLE = (TREE.name, CAPTIONS.name)
# What may run on a dataset (the stages after those imported, in order).
RUNNABLE = ((ANNOTATIONS.name,), (CAPTIONS.name, ANNOTATIONS.name))


@dataclass(frozen=True)
class StartFrom:
    """A run that starts from datasets (their release files' URIs) and runs only `stages`."""

    datasets: list[str]
    stages: list[str] = field(default_factory=lambda: [ANNOTATIONS.name])

    def __post_init__(self) -> None:
        if not self.datasets:
            raise ValueError("--from needs at least one dataset file")
        if tuple(self.stages) not in RUNNABLE:
            choices = " or ".join(",".join(r) for r in RUNNABLE)
            raise ValueError(f"from a dataset, --stages must be {choices} (got {','.join(self.stages) or 'none'})")

    @property
    def skipped(self) -> list[str]:
        """The stages that do not run, in stage order."""
        return [spec.name for spec in STAGES if spec.name not in self.stages]

    @property
    def needs_videos(self) -> bool:
        return CAPTIONS.name in self.stages

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> StartFrom | None:
        """The DAG parameter's form; None for a run from videos (an empty dict)."""
        if not data:
            return None
        stages = data.get("stages", [ANNOTATIONS.name])
        return cls([str(d) for d in data.get("datasets", [])], [str(s) for s in stages])


def source_digest(store: ArtifactStore, start: StartFrom) -> str:
    """The datasets' identity: each file's URI and content signature (size and mtime, or the S3
    ETag), as the videos' own; an edited or replaced file is another source."""
    parts = [f"{uri}\t{store.signature(uri)}" for uri in start.datasets]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def source_rows(store: ArtifactStore, datasets: Sequence[str]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """The datasets' rows in batches (a parquet row group, or a JSON file), one batch in memory at a
    time, each with its file: a dataset of 100,000 videos is never read whole."""
    for uri in datasets:
        data = store.get_bytes(uri)
        name = posixpath.basename(uri)
        try:
            if name.endswith(".parquet"):
                file = pq.ParquetFile(io.BytesIO(data))
                for group in range(file.num_row_groups):
                    yield uri, check_release_rows(file.read_row_group(group).to_pylist(), name)
            else:
                yield uri, rows_from_bytes(data, name)
        except (NotReleaseFile, ValueError, pa.ArrowException) as error:
            raise ManifestError(str(error)) from None


def source_uids(store: ArtifactStore, start: StartFrom) -> list[tuple[str, str]]:
    """Every (file, video_uid) of the datasets, parquet's read from the `video_uid` column alone;
    ManifestError for a file that is not release rows or a uid two rows share."""
    found: list[tuple[str, str]] = []
    for uri in start.datasets:
        if uri.endswith(".parquet"):
            try:
                table = pq.read_table(io.BytesIO(store.get_bytes(uri)), columns=["video_uid"])
            except (pa.ArrowException, KeyError) as error:
                raise ManifestError(f"{posixpath.basename(uri)}: not a release file ({error})") from None
            found += [(uri, str(uid)) for uid in table.column("video_uid").to_pylist()]
        else:
            found += [(uri, str(row["video_uid"])) for _, rows in source_rows(store, [uri]) for row in rows]
    seen: dict[str, str] = {}
    for uri, uid in found:
        if uid in seen:
            raise ManifestError(f"video_uid {uid!r} is in {seen[uid]} and {uri}: one row per video")
        seen[uid] = uri
    if not found:
        raise ManifestError(f"{', '.join(start.datasets)}: no rows")
    return found


def imported_configs(start: StartFrom, digest: str) -> dict[str, StageConfig]:
    """The configs of the stages that do not run: imported ones keyed by the datasets' digest
    (downstream fingerprints hold it), the others skipped (nothing reads them)."""
    source = ", ".join(start.datasets)
    configs: dict[str, StageConfig] = {}
    for name in start.skipped:
        if name not in IMPORTABLE:
            configs[name] = StageConfig("", [], {}, source=f"{SKIPPED}{source} has its tree and metadata")
            continue
        upstream = [configs[r].fingerprint for r in stage(name).reads if configs[r].fingerprint]
        fp = fingerprint(name, imported=digest, upstream=upstream)
        configs[name] = StageConfig(fp, [f"imported from {source}"], {}, source=source)
    return configs


def video_files(store: ArtifactStore, videos: str) -> dict[str, str]:
    """The video files under a folder or prefix, by uid (their file name without the extension)."""
    found: dict[str, str] = {}
    for uri in store.list(videos):
        stem, ext = posixpath.splitext(posixpath.basename(uri))
        if ext.lower() in VIDEO_EXTENSIONS:
            found.setdefault(stem, uri)
    return found


def make_plan(
    store: ArtifactStore,
    videos: str,
    artifact_prefix: str,
    shard_size: int,
    run: str,
    start_from: Mapping[str, Any] | None = None,
    modes: Mapping[str, str] | None = None,
) -> Plan:
    """The run's plan, from videos (a manifest or prefix, `plan.plan_run`) or from datasets
    (`start_from`, `plan_from_dataset`). A plan this run already wrote from the same arguments is
    read, not made again: the one-machine run plans before any service starts (to know what must
    run), then the DAG's plan step finds it."""
    made_for = fingerprint(
        "plan", videos=videos, shard_size=shard_size, start_from=dict(start_from or {}), modes=dict(modes or {})
    )
    uri = Plan.uri_for(artifact_prefix, run) if run else ""
    if uri and store.exists(uri):
        existing = Plan.load(store, uri)
        if existing.made_for == made_for:
            return existing
    start = StartFrom.from_dict(dict(start_from or {}))
    if start is not None:
        return plan_from_dataset(store, start, artifact_prefix, shard_size, run, videos, made_for=made_for)
    return plan_run(store, videos, artifact_prefix, shard_size, run, modes=modes, made_for=made_for)


def source_uri(dataset: str, uid: str) -> str:
    """What stands for a video that no stage reads: its row in the dataset."""
    return f"{dataset}#{quote(uid, safe='')}"


def plan_from_dataset(
    store: ArtifactStore,
    start: StartFrom,
    artifact_prefix: str,
    shard_size: int,
    run: str,
    videos: str = "",
    workers: int = 32,
    made_for: str = "",
) -> Plan:
    """Imports the rows' trees (and captions, when caption does not run) and metadata as artifacts,
    and writes the plan with the imported stages' configs. A row that cannot be imported, or whose
    video is not in `videos` when caption runs, fails that video at plan."""
    if shard_size < 1:
        raise ManifestError(f"shard_size must be >= 1, got {shard_size}")
    if start.needs_videos and not videos:
        raise ManifestError("caption runs on the videos: name their folder (--videos DIR)")
    source_uids(store, start)  # every file readable, every uid once, before anything is imported
    digest = source_digest(store, start)
    configs = imported_configs(start, digest)
    files = video_files(store, videos) if start.needs_videos else {}

    def import_row(item: tuple[str, dict[str, Any]]) -> VideoEntry:
        dataset, row = item
        uid = str(row["video_uid"])
        uri = files.get(uid, "") if start.needs_videos else source_uri(dataset, uid)
        try:
            check_uid(uid)
            check_tree(row, start)
            if not uri:
                raise ArtifactNotFound(f"no video file for {uid!r} in {videos} (looked for {uid}.mp4, .webm, ...)")
            signature = store.signature(uri) if start.needs_videos else digest
            metadata = normalize_metadata(row["metadata"]) if row.get("metadata") else None
            metadata_uri = metadata_key(artifact_prefix, uid, metadata) if metadata else ""
            if metadata and not store.exists(metadata_uri):
                store.put_bytes(metadata_uri, json.dumps(metadata).encode(), "application/json")
            video = VideoEntry(uid, uri, metadata_uri, signature)
            _import_artifacts(store, artifact_prefix, configs, video, row, metadata)
            return video
        except (ArtifactNotFound, UriError, MetadataError, StageInputError, KeyError, TypeError, ValueError) as error:
            code, reason = classify(error)
            return VideoEntry(uid, uri or source_uri(dataset, uid), error_code=code.name, error=f"{dataset}: {reason}")

    planned: list[VideoEntry] = []
    with ThreadPoolExecutor(workers) as pool:
        for dataset, rows in source_rows(store, start.datasets):
            planned += pool.map(import_row, [(dataset, row) for row in rows])
    return write_plan(store, planned, artifact_prefix, shard_size, run, configs, workers, made_for)


def check_tree(row: dict[str, Any], start: StartFrom) -> None:
    """A row whose tree breaks a rule of the release (duplicate ids, a dangling parent, a cycle, a
    NaN span, two roots, children that do not tile their parent...) is not imported: StageInputError
    naming the rule. The rules on fields this run makes again (gpt; llama3_caption when caption runs)
    do not apply."""
    remade = {"gpt"} | ({"llama3_caption"} if start.needs_videos else set())
    broken = [violation for violation in check_video(row) if violation.rule not in remade]
    if broken:
        first = broken[0]
        node = f" (node {first.node_id})" if first.node_id is not None else ""
        more = f"; and {len(broken) - 1} more" if len(broken) > 1 else ""
        raise StageInputError(f"its tree breaks the release's rule [{first.rule}]{node}: {first.message}{more}")


def _import_artifacts(
    store: ArtifactStore,
    prefix: str,
    configs: dict[str, StageConfig],
    video: VideoEntry,
    row: dict[str, Any],
    metadata: dict[str, Any] | None,
) -> None:
    """The row's tree, and its captions when caption is imported, published as those stages publish them."""
    nodes = row["nodes"]
    if not nodes:
        raise StageInputError(f"video {video.video_uid!r} has no nodes")
    tree_nodes = [
        TreeNode(
            node_id=str(n["node_id"]),
            parent_id=None if n.get("parent_id") is None else str(n["parent_id"]),
            level=int(n["level"]),
            start=float(n["start"]),
            end=float(n["end"]),
        )
        for n in nodes
    ]
    duration = (metadata or {}).get("duration") or max(n.end for n in tree_nodes)
    fingerprints = {name: config.fingerprint for name, config in configs.items()}
    artifacts: list[tuple[str, bytes]] = [
        (
            TREE.artifact(prefix, fingerprints, video),
            SegmentTree(video.video_uid, float(duration), tree_nodes).to_json(),
        )
    ]
    if CAPTIONS.name in configs and configs[CAPTIONS.name].fingerprint:
        captions = {
            str(n["node_id"]): NodeCaptions(n.get("plm_caption"), n.get("plm_action"), n.get("llama3_caption"))
            for n in nodes
        }
        artifacts.append(
            (
                CAPTIONS.artifact(prefix, fingerprints, video),
                Captions(video.video_uid, captions, {"imported": configs[CAPTIONS.name].source}).to_json(),
            )
        )
    for uri, body in artifacts:
        if not store.exists(uri):
            store.put_bytes(uri, body, "application/json")


def listed_videos(uids: list[tuple[str, str]], start: StartFrom, files: dict[str, str]) -> list[dict[str, Any]]:
    """The videos a run from these datasets plans (`video_uid`, `uri`: "" for a video caption needs
    and `files` lacks): the local run's totals and checks before any service starts."""
    return [
        {"video_uid": uid, "uri": files.get(uid, "") if start.needs_videos else source_uri(dataset, uid)}
        for dataset, uid in uids
    ]
