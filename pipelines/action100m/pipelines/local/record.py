"""The record of an output folder's last finished run (`run.json`).

A rerun whose arguments and inputs match it, with everything still published, has nothing to do and
starts no service (`run_key`, `nothing_to_do`). A rerun that has something to do takes from it each
stage's config wherever nothing that shapes that config changed (`known_configs`): with those the
registry tells, before any service starts, which stages must run (`registry.stages_to_run`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..executor import options_dict, options_of
from ..keys import fingerprint
from ..plan import Plan
from ..registry import FINAL, STAGES, stage
from ..sidecars import LocalSidecars
from ..state import RunReport, StageConfig
from .context import RunContext

# The settings of the services that a run's key and its stages' configs depend on: the project's
# own (A100M_*) and vLLM's (VLLM_*), from the services' environment.
SETTING_PREFIXES = ("A100M_", "VLLM_")


@dataclass(frozen=True)
class RunRecord:
    """What the last finished run of an output folder was."""

    key: str  # see `run_key`
    fingerprints: dict[str, str]
    videos: list[str]
    artifacts: list[str]  # each finished video's final artifact
    manifest: str = ""  # the run's manifest (the viewer finds the videos through it)
    read_roots: list[str] = field(default_factory=list)  # where the run could read videos (the viewer serves no others)
    arguments: dict[str, Any] = field(default_factory=dict)  # the arguments that shaped the dataset
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> StageConfig's fields
    config_keys: dict[str, str] = field(default_factory=dict)  # stage -> what made its config (`config_keys`)

    @staticmethod
    def path(out_dir: Path) -> Path:
        return out_dir / "run.json"

    def save(self, out_dir: Path) -> None:
        self.path(out_dir).write_text(json.dumps(asdict(self), default=str))

    @classmethod
    def load(cls, out_dir: Path) -> RunRecord | None:
        try:
            return cls(**json.loads(cls.path(out_dir).read_text()))
        except (OSError, ValueError, TypeError):
            return None


def service_settings(run: RunContext) -> dict[str, str]:
    """Every setting the services start with that can change what they make: the run's (preset,
    roots) over the environment's own A100M_* and VLLM_* settings."""
    from .preflight import environment

    return {k: v for k, v in environment(run.service_env(), run.settings.env).items() if k.startswith(SETTING_PREFIXES)}


def run_key(run: RunContext) -> str:
    """What decides that a rerun has nothing to do: every argument that shapes the dataset
    (`RunSettings.output_arguments`), the inputs with their content signatures (a video edited in
    place is never taken as done), the files beside them (subtitles, metadata), the services' settings, the
    stage options and the package's version."""
    from action100m.common.version import __version__

    def signature(uri: str) -> str:
        try:
            return run.store.signature(uri)
        except Exception as error:  # planning will fail this video and say why
            return f"unreadable: {type(error).__name__}"

    blob = json.dumps(
        {
            "arguments": run.settings.output_arguments(),
            "manifest": run.inputs_digest(),
            "inputs": [signature(str(video["uri"])) for video in run.videos],
            # a subtitle or metadata file added or edited beside a video changes its row: not "nothing to do"
            "beside": [{role: signature(uri) for role, uri in files.items()} for files in files_beside(run)],
            "settings": service_settings(run),
            "options": run.options_fields(),
            "version": __version__,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def files_beside(run: RunContext) -> list[dict[str, str]]:
    """The files each video's metadata would come from besides its manifest row, by role."""
    sidecars = LocalSidecars()
    return [sidecars.files_of(video) for video in run.videos]


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


def config_keys(run: RunContext) -> dict[str, str]:
    """Per stage, a digest of what its config depends on in this run: its service's settings and
    address, the options asked of it, the package's version and its upstream stages' keys (a stage
    imported from a dataset: its imported fingerprint)."""
    from action100m.common.version import __version__

    # where the run may read and write (its folder's own paths among them) changes no service's output
    settings = {k: v for k, v in service_settings(run).items() if k not in run.roots_env()}
    imported = run.imported()
    keys: dict[str, str] = {}
    for spec in STAGES:
        if spec.name in imported:
            keys[spec.name] = fingerprint("imported", config=asdict(imported[spec.name]))
            continue
        keys[spec.name] = fingerprint(
            "config",
            settings=settings,
            address=run.settings.services.get(spec.name, ""),
            options=options_dict(options_of(spec, run.options)),
            version=__version__,
            # an optional stage's config enters each video's key, not the config (see `Stage.artifact`)
            upstream=[keys[name] for name in spec.reads if not stage(name).optional],
        )
    return keys


def known_configs(run: RunContext) -> dict[str, StageConfig]:
    """The configs the last finished run of this folder used, for the stages whose `config_keys`
    are the same now: their services would say the same fingerprint."""
    record = RunRecord.load(run.out_dir)
    if record is None:
        return {}
    keys = config_keys(run)
    return {
        name: StageConfig(**config)
        for name, config in record.configs.items()
        if record.config_keys.get(name) == keys.get(name) and not config.get("source")
    }


def record_run(run: RunContext, key: str, plan_uri: str, configs: Mapping[str, StageConfig], report: RunReport) -> None:
    """Writes the folder's record of this finished run."""
    plan = Plan.load(run.store, plan_uri)
    done = set(report.done)
    fingerprints = {name: config.fingerprint for name, config in configs.items()}
    final = [
        FINAL.artifact(run.artifact_prefix, fingerprints, video)
        for index in range(plan.shards)
        for video in plan.shard(run.store, index, run.artifact_prefix).videos
        if video.video_uid in done
    ]
    videos = report.done + list(report.failed)
    # a config taken from an earlier run is kept as that run made it (not marked reused)
    made = {name: {**asdict(config), "reused": False} for name, config in configs.items()}
    RunRecord(
        key,
        fingerprints,
        videos,
        final,
        run.manifest,
        list(run.read_only_roots),
        arguments=json.loads(json.dumps(run.settings.output_arguments(), default=str)),
        configs=made,
        config_keys=config_keys(run),
    ).save(run.out_dir)
