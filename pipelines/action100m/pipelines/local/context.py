"""What `a100m run` settles before any service starts, as one value passed down: the inputs and their
manifest, where artifacts and the dataset go, the roots every process may touch, the one artifact
store of this process, the services' settings and the stage options of the preset.

The environment is read once, here (`RunSettings.env`, the CLI's process environment): roots
already set in it are kept and extended, never overwritten, and nothing is written back into it.
The services get their settings with their process (`service_env`), the DAG's tasks with theirs
(`step_env`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from action100m.common.store import ArtifactStore
from action100m.common.text import printable
from action100m.common.uris import UriError, parse_uri, split_roots, to_uri

from ..arguments import PipelineArguments
from ..card import CardFacts
from ..executor import options_dict
from ..plan import Plan, is_manifest, plan_entries, uids_for
from ..registry import ANNOTATIONS, STAGES
from ..sidecars import VIDEO_EXTENSIONS
from ..start_from import (
    StartFrom,
    imported_configs,
    listed_videos,
    make_plan,
    source_digest,
    source_uids,
    video_files,
)
from ..state import StageConfig
from .presets import (
    preset_env,
    preset_options,
    tiny_models_ready,
    tiny_preset_notes,
)
from .settings import RunSettings


@dataclass(frozen=True)
class RunContext:
    """A run as settled before any service starts."""

    settings: RunSettings
    out_dir: Path
    artifact_prefix: str
    output_prefix: str
    allowed_roots: tuple[str, ...]  # read and written: artifacts, the dataset
    read_only_roots: tuple[str, ...]  # only read: the videos and the manifest
    store: ArtifactStore  # the one store of this process, over those roots
    manifest: str  # the run's manifest URI (with --from: the videos' folder, "" when none is read)
    videos: list[dict[str, Any]]  # its rows, checked
    preset_env: dict[str, str]  # the services' settings of the preset
    options: dict[str, Message]  # stage name -> the Options the run asks for
    start: StartFrom | None = None  # a run from datasets (`--from`): their files and the stages that run
    source_digest: str = ""  # with `start`: a digest of the datasets' content

    def plan(self, run_id: str) -> Plan:
        """Plans the run (the DAG's first step finds this plan rather than planning again)."""
        return make_plan(
            self.store,
            self.manifest,
            self.artifact_prefix,
            self.settings.shard_size,
            run_id,
            self.start.to_dict() if self.start else {},
            self.settings.modes,
        )

    def requested_stages(self) -> list[str]:
        """The stages the user asked for: every one, or those named with --from (`registry.stages_to_run`
        says which of them must run)."""
        return list(self.start.stages) if self.start else [spec.name for spec in STAGES]

    def pipeline_arguments(self, addresses: Mapping[str, str], run_id: str, claimed: bool = False) -> PipelineArguments:
        """The DAG's parameters for this run on the services at `addresses`; `claimed`: the run holds
        its dataset folder (export.claim_output) and publishes only while it does."""
        return PipelineArguments(
            videos=self.manifest,
            artifact_prefix=self.artifact_prefix,
            output_prefix=self.output_prefix,
            addresses=dict(addresses),
            options=self.options_fields(),
            shard_size=self.settings.shard_size,
            run=run_id,
            card=self.card_facts().to_dict(),
            start_from=self.start.to_dict() if self.start else {},
            modes=dict(self.settings.modes),
            claimed=claimed,
        )

    def imported(self) -> dict[str, StageConfig]:
        """The configs of the stages a run from datasets does not run (imported or skipped)."""
        return imported_configs(self.start, self.source_digest) if self.start else {}

    def inputs_digest(self) -> str:
        """What the run reads, as a digest: the manifest's bytes, or the datasets' and the stages run."""
        if self.start:
            return f"{self.source_digest}:{','.join(self.start.stages)}"
        return hashlib.sha256(self.store.get_bytes(self.manifest)).hexdigest()

    @property
    def s3_endpoint(self) -> str:
        return self.settings.env.get("A100M_S3_ENDPOINT", "")

    def options_fields(self) -> dict[str, dict[str, Any]]:
        """The run's stage options as the DAG takes them (stage -> the fields each Options message sets)."""
        return {name: options_dict(options) for name, options in self.options.items()}

    def card_facts(self) -> CardFacts:
        """What the dataset card says beyond the report: the license, and that tiny models wrote noise."""
        notice = ""
        if self.settings.preset == "tiny":
            notice = " ".join([*tiny_preset_notes(), "It shows the pipeline and the format, not content."])
        return CardFacts(license=self.settings.license, notice=notice)

    def roots_env(self) -> dict[str, str]:
        """Where every process of the run may read and write, as the A100M_* settings say it."""
        env = {
            "A100M_ALLOWED_ROOTS": ",".join(self.allowed_roots),
            "A100M_READ_ONLY_ROOTS": ",".join(self.read_only_roots),
        }
        if self.s3_endpoint:
            env["A100M_S3_ENDPOINT"] = self.s3_endpoint
        return env

    def overridden(self) -> dict[str, str]:
        """The preset's settings the user set otherwise in the environment: the user's value wins."""
        env = self.settings.env
        return {name: env[name] for name, value in self.preset_env.items() if name in env and env[name] != value}

    def service_env(self) -> dict[str, str]:
        """The settings every service of the run starts with: the preset's, the user's own where they
        set one of those, and the roots."""
        return {**self.preset_env, **self.overridden(), **self.roots_env()}

    def step_env(self) -> dict[str, str]:
        """The settings of the DAG's tasks (local processes): the roots and the store's endpoint."""
        return self.roots_env()


def _roots(setting: str, env: Mapping[str, str], more: Sequence[str]) -> tuple[str, ...]:
    """The roots already in the environment (kept), then these."""
    return tuple(dict.fromkeys([*split_roots(env.get(setting, "")), *more]))


@dataclass(frozen=True)
class OutputPlaces:
    """Where a run writes: its folder, the artifacts, the dataset, and the roots it may write."""

    out_dir: Path
    artifact_prefix: str
    output_prefix: str
    allowed_roots: tuple[str, ...]

    @classmethod
    def of(cls, out: str, settings: RunSettings) -> OutputPlaces:
        out_dir = Path(out).resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        artifact_prefix = settings.store_root.rstrip("/") if settings.store_root else to_uri(out_dir / "artifacts")
        output_prefix = to_uri(out_dir / "dataset")
        allowed = _roots("A100M_ALLOWED_ROOTS", settings.env, [artifact_prefix, output_prefix])
        return cls(out_dir, artifact_prefix, output_prefix, allowed)

    def context(self, settings: RunSettings, **settled: Any) -> RunContext:
        """The run's context with these places and the preset's settings and options."""
        models_dir = Path(settings.models_dir) if settings.models_dir else self.out_dir / "models"
        if settings.preset == "tiny" and not tiny_models_ready(models_dir):
            print(f"building the tiny random models into {models_dir} (once; about a minute) ...", flush=True)
        return RunContext(
            settings=settings,
            out_dir=self.out_dir,
            artifact_prefix=self.artifact_prefix,
            output_prefix=self.output_prefix,
            allowed_roots=self.allowed_roots,
            preset_env=preset_env(settings.preset, models_dir),
            options=preset_options(settings.preset),
            **settled,
        )


def settle(inputs: Sequence[str], out: str, settings: RunSettings) -> RunContext:
    """Reads the inputs (a manifest, or video files written into one) and settles the run.
    Raises ManifestError, UriError or OSError for inputs that cannot be planned at all."""
    if settings.start_from:
        if inputs:
            raise ValueError("give videos or --from datasets, not both")
        return settle_from_dataset(out, settings)
    places = OutputPlaces.of(out, settings)
    inputs = video_inputs(inputs, settings.recursive)
    unreadable = [i for i in inputs if "://" not in i and not (Path(i).is_file() and os.access(i, os.R_OK))]
    if unreadable:
        listed = "\n".join(f"  {printable(i)}" for i in unreadable)
        raise OSError(
            f"{len(unreadable)} of the inputs do not exist or cannot be read (nothing was started):\n{listed}"
        )
    given_manifest = len(inputs) == 1 and is_manifest(inputs[0])
    manifest = to_uri(inputs[0]) if given_manifest else input_manifest(places.artifact_prefix, inputs)
    read_only = list(
        _roots("A100M_READ_ONLY_ROOTS", settings.env, input_roots(inputs, manifest if given_manifest else ""))
    )
    store = ArtifactStore.for_roots(places.allowed_roots, read_only, settings.env)
    if not given_manifest:
        write_manifest(store, inputs, manifest)
    videos = plan_entries(store, manifest)  # a manifest that cannot be planned stops the run in a second
    video_roots = [r for r in read_roots(videos, settings.allowed_roots, has_s3(settings)) if r not in read_only]
    store.allow_reading(video_roots, settings.env)
    return places.context(
        settings, read_only_roots=(*read_only, *video_roots), store=store, manifest=manifest, videos=videos
    )


def video_inputs(inputs: Sequence[str], recursive: bool = False) -> list[str]:
    """The inputs with each folder replaced by its video files (by extension, sorted; with
    `recursive`, its subfolders' too). A folder with none raises OSError naming it."""
    found: list[str] = []
    for item in inputs:
        folder = Path(item)
        if "://" in item or not folder.is_dir():
            found.append(item)
            continue
        walk = folder.rglob("*") if recursive else folder.iterdir()
        videos = sorted(str(p) for p in walk if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        if not videos:
            deeper = "" if recursive else " (--recursive looks in its subfolders too)"
            raise OSError(f"{item}: no video files ({', '.join(VIDEO_EXTENSIONS)}) in this folder{deeper}")
        found += videos
    return found


def manifest_rows(inputs: Sequence[str]) -> bytes:
    """A manifest for a list of videos (uids from the file names, see `plan.uids_for`)."""
    uris = [to_uri(item) for item in inputs]
    rows = [{"video_uid": uid, "uri": uri} for uid, uri in zip(uids_for(uris), uris, strict=True)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def input_manifest(artifact_prefix: str, inputs: Sequence[str]) -> str:
    """Where the manifest of these video files goes: named by its content, so runs with other inputs
    never read each other's (`--store` may be shared by several output folders)."""
    digest = hashlib.sha256(manifest_rows(inputs)).hexdigest()[:16]
    return f"{artifact_prefix}/inputs/{digest}.jsonl"


def write_manifest(store: ArtifactStore, inputs: Sequence[str], manifest: str) -> None:
    store.put_bytes(manifest, manifest_rows(inputs))


def input_roots(inputs: Sequence[str], manifest: str) -> list[str]:
    """The folders of the video files given on the command line, and of the manifest."""
    roots = [to_uri(Path(i).resolve().parent) for i in inputs if "://" not in i]
    if manifest.startswith("file://"):
        roots.append(manifest.rsplit("/", 1)[0])
    return list(dict.fromkeys(roots))


def read_roots(videos: Sequence[dict[str, Any]], allowed: str | None, s3: bool = True) -> list[str]:
    """Where the manifest's videos may be read from: `--allowed-roots` when given, else the folders
    of every video it names (the user named them). A URI that does not parse, or an s3:// one when
    the run has no S3 store (`s3` False), adds nothing: planning fails that video, with the reason."""
    if allowed is not None:
        return [to_uri(root) for root in split_roots(allowed)]
    roots = []
    for video in videos:
        try:
            uri = parse_uri(str(video["uri"]))
        except UriError:
            continue
        if uri.scheme == "s3" and s3:
            roots.append(f"s3://{uri.bucket}")
        elif uri.scheme == "file":
            roots.append(to_uri(Path(uri.key).parent))
    return list(dict.fromkeys(roots))


def has_s3(settings: RunSettings) -> bool:
    """Whether this run can reach an S3 store: `--store s3://...`, or an endpoint or keys in the environment."""
    env = settings.env
    named = ("A100M_S3_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_WEB_IDENTITY_TOKEN_FILE")
    return bool((settings.store_root or "").startswith("s3://") or any(env.get(n) for n in named))


def dataset_uris(locations: Sequence[str]) -> list[str]:
    """The release files of each --from location: a file, a dataset or run folder (see
    `release.files.dataset_files`), or an s3:// file."""
    from action100m.common.release.files import dataset_files

    uris: list[str] = []
    for location in locations:
        if location.startswith("hf://"):
            uris += [to_uri(path) for path in hub_files(location)]
            continue
        if "://" in location:
            uris.append(location)
            continue
        if not os.access(location, os.R_OK):
            raise OSError(f"{location}: does not exist or cannot be read")
        uris += [to_uri(path.resolve()) for path in dataset_files(location)]
    return uris


HUB_PATH = re.compile(r"^datasets/([^/@]+/[^/@]+)(?:@([^/]+))?/(.+)$")


def hub_files(location: str) -> list[Path]:
    """The release files of a Hub dataset path (`hf://datasets/ORG/NAME[@REV]/data/*.parquet`, or a
    folder of it), downloaded into the Hugging Face cache (resumable; read from the cache offline)."""
    from huggingface_hub import HfFileSystem, hf_hub_download

    fs = HfFileSystem()
    path = location.removeprefix("hf://")
    try:
        found = fs.glob(path) if any(c in path for c in "*?[") else [path]
        files: list[str] = []
        for item in found:
            if fs.isdir(item):  # type: ignore[no-untyped-call]
                files += sorted(f for f in fs.find(item) if f.endswith((".parquet", ".json")))
            else:
                files.append(item)
        if not files:
            raise ValueError(f"{location}: no parquet or JSON file there")
        local = []
        for file in files:
            match = HUB_PATH.match(file)
            if not match:
                raise ValueError(f"{location}: expected hf://datasets/ORG/NAME[@REVISION]/PATH")
            repo, revision, inside = match.groups()
            local.append(Path(hf_hub_download(repo, inside, repo_type="dataset", revision=revision)))
        return local
    except ValueError:
        raise
    except Exception as error:  # the Hub client's HTTP, connection and offline errors alike
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"{location}: cannot read it from the Hub ({first}); download it where the network allows "
            "(huggingface-cli download --repo-type dataset ...) and give the folder"
        ) from None


def settle_from_dataset(out: str, settings: RunSettings) -> RunContext:
    """A run that starts from datasets (`--from`): their rows are read (a file that is not release rows
    stops the run here), and with caption, each row's video looked for in `--videos`."""
    places = OutputPlaces.of(out, settings)
    start = StartFrom(dataset_uris(settings.start_from), settings.stages or [ANNOTATIONS.name])
    inside = [uri for uri in start.datasets if uri.startswith(places.output_prefix.rstrip("/") + "/")]
    if inside:  # publication would replace the files the run reads (and refuse at the end, after all the work)
        raise ValueError(
            f"--from {inside[0].removeprefix('file://')} is this run's own output (--out {out}): "
            "give another --out (the dataset there is replaced when the run publishes)"
        )
    videos_uri = ""
    if start.needs_videos:
        if not settings.videos_dir:
            raise ValueError("--stages caption,refine captions the videos: say where they are (--videos DIR)")
        videos_uri = (
            to_uri(Path(settings.videos_dir).resolve()) if "://" not in settings.videos_dir else settings.videos_dir
        )
    sources = [uri.rsplit("/", 1)[0] for uri in start.datasets] + ([videos_uri] if videos_uri else [])
    read_only = _roots("A100M_READ_ONLY_ROOTS", settings.env, sources)
    store = ArtifactStore.for_roots(places.allowed_roots, read_only, settings.env)
    videos = listed_videos(source_uids(store, start), start, video_files(store, videos_uri) if videos_uri else {})
    missing = [printable(v["video_uid"]) for v in videos if not v["uri"]]
    if missing and len(missing) == len(videos):
        raise ValueError(
            f"none of the {len(videos)} videos is in {settings.videos_dir} (files named by video_uid, e.g. "
            f"{missing[0]}.mp4): nothing was started"
        )
    return places.context(
        settings,
        read_only_roots=read_only,
        store=store,
        manifest=videos_uri,
        videos=videos,
        start=start,
        source_digest=source_digest(store, start),
    )
