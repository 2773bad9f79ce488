"""The record of an output folder's last finished run (`run.json`): a rerun whose settings and
inputs match it, with everything still published, has nothing to do and starts no service.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..plan import LocalSidecars, Plan
from ..registry import FINAL
from ..state import RunReport
from .context import RunContext


@dataclass(frozen=True)
class RunRecord:
    """What the last finished run of an output folder was: enough to see that a rerun has nothing to do."""

    key: str  # hash of the inputs (with their content signatures), the preset's settings, options, shard size
    fingerprints: dict[str, str]
    videos: list[str]
    artifacts: list[str]  # each finished video's final artifact
    manifest: str = ""  # the run's manifest (the viewer finds the videos through it)
    read_roots: list[str] = field(default_factory=list)  # where the run could read videos (the viewer serves no others)

    @staticmethod
    def path(out_dir: Path) -> Path:
        return out_dir / "run.json"

    def save(self, out_dir: Path) -> None:
        self.path(out_dir).write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, out_dir: Path) -> RunRecord | None:
        try:
            return cls(**json.loads(cls.path(out_dir).read_text()))
        except (OSError, ValueError, TypeError):
            return None


def run_key(run: RunContext) -> str:
    """What decides that a rerun has nothing to do; the videos' content signatures are part of it, so
    a video edited in place is never taken as done."""
    from action100m.common.version import __version__

    def signature(uri: str) -> str:
        try:
            return run.store.signature(uri)
        except Exception as error:  # planning will fail this video and say why
            return f"unreadable: {type(error).__name__}"

    blob = json.dumps(
        {
            "manifest": run.inputs_digest(),
            "inputs": [signature(str(video["uri"])) for video in run.videos],
            # a subtitle file added or edited beside a video changes its transcript: not "nothing to do"
            "subtitles": [signature(uri) if uri else "" for uri in subtitle_files(run)],
            "env": run.service_env(),
            "options": run.options_fields(),
            "shard_size": run.settings.shard_size,
            "version": __version__,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def subtitle_files(run: RunContext) -> list[str]:
    """The subtitle file each video's transcript would come from ("" for none)."""
    sidecars = LocalSidecars()
    return [sidecars.subtitles_of(video) for video in run.videos]


def nothing_to_do(run: RunContext, key: str) -> bool:
    """Whether the last run of this folder had the same key, and every video's final artifact and the
    dataset it exported are still there."""
    record = RunRecord.load(run.out_dir)
    if record is None or record.key != key:
        return False
    try:
        report = RunReport.from_json(run.store.get_bytes(f"{run.output_prefix}/report.json").decode())
    except Exception:
        return False
    if report.failed or not all(run.store.exists(uri) for uri in report.files):
        return False
    if set(report.done) != {str(video["video_uid"]) for video in run.videos}:
        return False  # the dataset is another run's
    return all(run.store.exists(uri) for uri in record.artifacts)


def record_run(run: RunContext, key: str, plan_uri: str, fingerprints: Mapping[str, str], report: RunReport) -> None:
    """Writes the folder's record of this finished run."""
    plan = Plan.load(run.store, plan_uri)
    done = set(report.done)
    final = [
        FINAL.artifact(run.artifact_prefix, fingerprints[FINAL.name], video)
        for index in range(plan.shards)
        for video in plan.shard(run.store, index, run.artifact_prefix).videos
        if video.video_uid in done
    ]
    videos = report.done + list(report.failed)
    RunRecord(key, dict(fingerprints), videos, final, run.manifest, list(run.read_only_roots)).save(run.out_dir)
