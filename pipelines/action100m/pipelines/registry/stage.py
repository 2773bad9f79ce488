"""What a registry entry says about a stage: its artifacts, its gRPC call, and how its service
runs on one machine (its Python environment, models, GPU memory and how it shares a GPU)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from google.protobuf.message import Message

from ..keys import artifact_key
from ..memory.needs import Need
from ..state import VideoEntry

Settings = Mapping[str, str]  # a service's A100M_* settings (its environment)
ItemBuilder = Callable[[VideoEntry, Mapping[str, str], str], Any]
"""(video, its upstream artifact URIs by stage name, its output URI) -> the stage's request item."""


def no_models(settings: Settings) -> list[str]:
    return []


def in_main_env(settings: Settings) -> bool:
    return False


def torch_gpu_settings(gpus: Sequence[int], share: str) -> dict[str, str]:
    """A torch service on these GPUs, capped at `share` of each one's memory."""
    return {"CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus)), "A100M_GPU_MEMORY_FRACTION": share}


def no_advice(need: Need) -> str:
    return ""


@dataclass(frozen=True)
class StageMode:
    """Which videos a stage runs on, chosen per run. A stage with a mode is optional: `a100m run`
    and `a100m pipeline submit` get a flag named after the stage (`--transcribe missing`), the DAG
    takes the choice in its `modes` parameter, and planning marks each video it runs on."""

    choices: tuple[str, ...]
    default: str
    help: str  # the flag's help
    # (the run's choice, the video's metadata as planned) -> whether the stage runs on that video
    runs_on: Callable[[str, Mapping[str, Any] | None], bool]
    source: str  # how the card names the metadata fields it makes ("speech-recognition")

    def check(self, stage: str, choice: str) -> str:
        if choice not in self.choices:
            raise ValueError(f"{stage} must be one of {', '.join(self.choices)}, got {choice!r}")
        return choice


# An artifact's body and URI, and a video's metadata -> the metadata with what the artifact adds
MetadataFromArtifact = Callable[[bytes, str, dict[str, Any] | None], dict[str, Any] | None]


@dataclass(frozen=True, kw_only=True)
class Stage:
    # the pipeline's view
    name: str  # the pipeline's name for it, also its key in the DAG's `addresses` and `options` ("embed")
    service: str  # the service that runs it ("embedder"): its package, chart entry and image
    kind: str  # the artifacts' folder under the artifact prefix ("embeddings")
    extension: str  # of its artifacts
    stub: Callable[[Any], Any]
    method: str  # the streaming batch call
    request: type[Any]
    options: type[Message]
    make_item: ItemBuilder
    reads: tuple[str, ...] = ()  # upstream stages whose artifacts (and so fingerprints) it reads
    # None: it runs on every video. With a mode it runs on the videos the plan marks for it (see
    # StageMode); it may run on none of a shard (then it is not called there), and the stages
    # reading it take its artifacts for the videos it ran on
    mode: StageMode | None = None
    not_for: str = ""  # which videos its mode leaves out, for the log ("they have a transcript")
    # how its artifact enters the release row's metadata (its release_fields under "metadata.")
    adds_metadata: MetadataFromArtifact | None = None
    counters: tuple[str, ...] = ()  # fields of its per-video result summed into the run's statistics
    reads_metadata: bool = False  # the video's metadata is one of its inputs (so part of its keys)
    release_fields: tuple[str, ...] = ()  # the fields of the release's nodes it makes
    # its artifact depends on the input alone (not the uid): videos that name the same file (URI
    # and content signature) share one artifact, computed once
    shared_by_input: bool = False
    port: int = 50051
    # its service on one machine
    models: Callable[[Settings], list[str]] = no_models  # the models it loads with these settings
    memory_need: Callable[[Settings], Need] | None = None  # None: it runs on the CPU
    in_vllm_env: Callable[[Settings], bool] = in_main_env  # runs in the vLLM environment (.venv-vllm)
    gpu_splits: tuple[int, ...] = (1,)  # GPU counts it can be split over (tensor parallel)
    gpu_settings: Callable[[Sequence[int], str], dict[str, str]] = torch_gpu_settings
    sizes_from_free_memory: bool = False  # sizes itself from the memory free at its start: starts first
    too_big_advice: Callable[[Need], str] = no_advice  # what to change when it does not fit a GPU

    def runs_on(self, video: VideoEntry) -> bool:
        return self.mode is None or self.name in video.optional_stages

    @property
    def optional(self) -> bool:
        return self.mode is not None

    @property
    def on_gpu(self) -> bool:
        return self.memory_need is not None

    def need(self, settings: Settings) -> Need:
        """What the service takes on the GPU with these settings (nothing for a CPU service)."""
        if self.memory_need is None:
            return Need(["(CPU)"], {}, on_gpu=False, service=self.service)
        return replace(self.memory_need(settings), service=self.service)

    def artifact(self, prefix: str, fingerprints: Mapping[str, str], video: VideoEntry) -> str:
        """Where this stage publishes a video's artifact under its fingerprint (`fingerprints`: stage
        -> fingerprint in this run, its own and those of the stages it reads; see `keys`). What an
        optional stage it reads made for this video (the transcriber's transcript) is part of the
        video's input: its artifact's URI, or nothing where that stage did not run on it."""
        from . import BY_NAME  # the registry's entries (this module is loaded before them)

        optional = [BY_NAME[name] for name in self.reads if BY_NAME[name].optional and name in fingerprints]
        upstream = [spec.artifact(prefix, fingerprints, video) for spec in optional if spec.runs_on(video)]
        video_input = video.input_id(with_metadata=self.reads_metadata, upstream=upstream)
        uid = "" if self.shared_by_input else video.video_uid
        return artifact_key(prefix, self.kind, fingerprints[self.name], uid, self.extension, video_input)

    def default_address(self, release: str = "action100m", namespace: str | None = None) -> str:
        """The headless Service the chart makes for this stage's service when installed as `release`
        (clients balance over its pods with round robin); the names follow `_helpers.tpl`."""
        host = f"{chart_fullname(release)}-{self.service}-headless"
        if namespace:
            host = f"{host}.{namespace}.svc"
        return f"dns:///{host}:{self.port}"


def chart_fullname(release: str) -> str:
    """`action100m.fullname` of the chart: the release name if it holds "action100m", else both."""
    name = release if "action100m" in release else f"{release}-action100m"
    return name[:40].rstrip("-")
