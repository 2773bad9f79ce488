"""The pipeline's data model: a video of the plan, a failure, per-stage statistics, a shard's state,
and the run report. Each class owns its JSON form, and statistics merge themselves.

A `ShardState` travels between the steps of one shard (a few KB: its videos, fingerprints,
failures and statistics); the plan and the reports live in the artifact store, so what passes
through KFP parameters stays small whatever the size of the run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from .choices import text_choices
from .keys import input_id


@dataclass(frozen=True)
class VideoEntry:
    """A video of the plan: its id, where it is, its content signature when planned (size and mtime
    or ETag), its metadata artifact ("" when it has none), the stream the manifest names as the
    video ("" for the main one), and why planning refused it ("" if not)."""

    video_uid: str
    uri: str
    metadata_uri: str = ""
    signature: str = ""
    error_code: str = ""
    error: str = ""
    stream: str = ""
    metadata_sources: str = ""  # fields not from the manifest: "duration=container,transcript=subtitles"
    # the optional stages that run on it (by the run's mode for each: registry.StageMode)
    optional_stages: tuple[str, ...] = ()

    def input_id(self, with_metadata: bool, upstream: Sequence[str] = ()) -> str:
        metadata = self.metadata_uri if with_metadata else ""
        return input_id(self.uri, self.signature, metadata, self.stream, upstream)

    def stream_index(self) -> int | None:
        return int(self.stream) if self.stream else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoEntry:
        fields = {name: str(data.get(name) or "") for name in cls.__dataclass_fields__ if name != "optional_stages"}
        return cls(**fields, optional_stages=tuple(map(str, data.get("optional_stages") or ())))


class PublishesArtifacts(Protocol):
    """A stage of the registry, as far as the state needs one (the state does not import the registry)."""

    @property
    def name(self) -> str: ...

    def artifact(self, prefix: str, fingerprints: Mapping[str, str], video: VideoEntry) -> str: ...


@dataclass(frozen=True)
class Failure:
    """Why a video has no row: the stage that failed it, a gRPC status code name and the reason."""

    stage: str
    code: str
    reason: str


OUTCOMES = ("done", "cached", "joined", "failed")


@dataclass
class StageStats:
    """What one stage did: videos by outcome, service calls and retries, time, summed result counters."""

    done: int = 0
    cached: int = 0  # found published, nothing computed (by the step or the service)
    joined: int = 0  # computed by another call in flight on the same service process
    failed: int = 0
    calls: int = 0
    retries: int = 0
    seconds: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str, counters: dict[str, int] | None = None) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        for name, value in (counters or {}).items():
            self.counters[name] = self.counters.get(name, 0) + value

    def merge(self, other: StageStats) -> None:
        for name in (*OUTCOMES, "calls", "retries"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds
        for name, value in other.counters.items():
            self.counters[name] = self.counters.get(name, 0) + value

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageStats:
        return cls(**{**data, "counters": dict(data.get("counters", {}))})


@dataclass
class ExportStats:
    rows: int = 0
    nodes: int = 0
    segments_annotated: int = 0
    seconds: float = 0.0

    def merge(self, other: ExportStats) -> None:
        self.rows += other.rows
        self.nodes += other.nodes
        self.segments_annotated += other.segments_annotated
        self.seconds += other.seconds


SKIPPED = "skipped: "  # how a StageConfig's source begins when its stage did not run (nothing reads it)


@dataclass
class StageConfig:
    """What made a stage's artifacts: its service's models, the options in force, its fingerprint."""

    fingerprint: str
    models: list[str]
    options: dict[str, Any]
    version: str = ""
    source: str = ""  # when the stage did not run: the dataset its artifacts were imported from, or why skipped
    # its service was not needed: every video's artifact was already published under this config,
    # as an earlier run found it (registry.stages_to_run)
    reused: bool = False
    # the settings its service said change the output (Info's output_settings: decoding, prompt ...)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        """Where its fields came from, in words: this run, a dataset, or the source's own rows when
        the stage did not run (`skipped: ...`)."""
        if not self.source:
            return "this run"
        if self.source.startswith(SKIPPED):
            return f"the source's rows (the stage did not run: {self.source.removeprefix(SKIPPED)})"
        return f"imported from {self.source}"

    @property
    def settled(self) -> bool:
        """Nothing runs for this stage in this run: imported, skipped or reused."""
        return bool(self.source) or self.reused


@dataclass
class ShardState:
    """One shard as it moves through the stages."""

    run: str  # the run's id (folder of its plan, staging and reports)
    shard: int
    shards: int
    prefix: str  # the artifact prefix
    videos: list[VideoEntry]
    stages: dict[str, StageConfig] = field(default_factory=dict)
    failed: dict[str, Failure] = field(default_factory=dict)
    # stage -> videos it computed in this run: the stages reading it recompute them too
    recomputed: dict[str, list[str]] = field(default_factory=dict)
    stats: dict[str, StageStats] = field(default_factory=dict)
    export: ExportStats | None = None

    def artifact(self, spec: PublishesArtifacts, video: VideoEntry) -> str:
        """Where the stage `spec` publishes this video's artifact in this run."""
        return spec.artifact(self.prefix, self.fingerprints(), video)

    def fingerprints(self) -> dict[str, str]:
        return {name: config.fingerprint for name, config in self.stages.items()}

    def active(self) -> list[VideoEntry]:
        """The videos no stage has failed so far."""
        return [v for v in self.videos if v.video_uid not in self.failed]

    def stats_of(self, stage_name: str) -> StageStats:
        return self.stats.setdefault(stage_name, StageStats())

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def merged(cls, states: list[ShardState]) -> ShardState:
        """One shard's states from branches that ran side by side (the transcriber beside the
        embedder): each stage's config, statistics and recomputed videos are its own branch's (the
        same in every state that holds them), failures from every branch."""
        first, *others = states
        merged = cls.from_json(first.to_json())
        for other in others:
            if (other.run, other.shard) != (merged.run, merged.shard):
                raise ValueError(f"cannot merge shard {other.shard} of run {other.run} into shard {merged.shard}")
            for name, config in other.stages.items():
                merged.stages.setdefault(name, config)
            for name, stats in other.stats.items():
                merged.stats.setdefault(name, stats)
            for name, uids in other.recomputed.items():
                merged.recomputed.setdefault(name, uids)
            for uid, failure in other.failed.items():
                merged.failed.setdefault(uid, failure)
        return merged

    @classmethod
    def from_json(cls, text: str) -> ShardState:
        data = json.loads(text)
        return cls(
            run=data["run"],
            shard=int(data["shard"]),
            shards=int(data["shards"]),
            prefix=data["prefix"],
            videos=[VideoEntry.from_dict(v) for v in data["videos"]],
            stages={k: StageConfig(**v) for k, v in data.get("stages", {}).items()},
            failed={k: Failure(**v) for k, v in data.get("failed", {}).items()},
            recomputed={k: list(v) for k, v in data.get("recomputed", {}).items()},
            stats={k: StageStats.from_dict(v) for k, v in data.get("stats", {}).items()},
            export=ExportStats(**data["export"]) if data.get("export") else None,
        )


@dataclass
class RunReport:
    """The run over all shards: written as report.json beside the dataset, and summarised in its card."""

    run: str
    videos: int = 0
    done: list[str] = field(default_factory=list)
    failed: dict[str, Failure] = field(default_factory=dict)
    stages: dict[str, StageConfig] = field(default_factory=dict)
    stats: dict[str, StageStats] = field(default_factory=dict)
    export: ExportStats = field(default_factory=ExportStats)
    files: list[str] = field(default_factory=list)
    version: str = ""
    # field -> source -> videos, for the fields planning took from elsewhere than the manifest
    metadata_sources: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, shard: ShardState) -> None:
        self.videos += len(shard.videos)
        for video in shard.videos:
            for pair in filter(None, video.metadata_sources.split(",")):
                name, source = pair.split("=", 1)
                counts = self.metadata_sources.setdefault(name, {})
                counts[source] = counts.get(source, 0) + 1
        self.failed.update(shard.failed)
        self.done.extend(v.video_uid for v in shard.videos if v.video_uid not in shard.failed)
        for name, config in shard.stages.items():
            self.stages.setdefault(name, config)
        for name, stats in shard.stats.items():
            self.stats.setdefault(name, StageStats()).merge(stats)
        if shard.export is not None:
            self.export.merge(shard.export)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "choices": text_choices(self.stages)}, indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> RunReport:
        data = json.loads(text)
        return cls(
            run=data["run"],
            videos=int(data["videos"]),
            done=list(data["done"]),
            failed={k: Failure(**v) for k, v in data["failed"].items()},
            stages={k: StageConfig(**v) for k, v in data["stages"].items()},
            stats={k: StageStats.from_dict(v) for k, v in data["stats"].items()},
            export=ExportStats(**data["export"]),
            files=list(data["files"]),
            version=data.get("version", ""),
            metadata_sources={k: dict(v) for k, v in data.get("metadata_sources", {}).items()},
        )
