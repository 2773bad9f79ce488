"""`a100m run`: the main job on one machine, from the inputs to the dataset.

It checks the inputs and the machine, decides the schedule (all services at once, or stage by
stage when the GPUs cannot hold every model: `memory_plan`), starts the services it needs on
loopback (`local.local_services`; `--services` names ones already running), runs the pipeline
(the DAG through kfp.local, or `stagewise`) with progress, and prints a summary.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from action100m.common.store import ArtifactStore
from action100m.common.uris import UriError, to_uri
from action100m.pipelines.memory.facts import UnknownModel

from .local import (
    RunRecord,
    ServiceFailed,
    _extend_env_roots,
    _final_artifacts,
    current_stage,
    current_stages,
    local_services,
    nothing_to_do,
    pipeline_failure,
    preflight,
    preset_env,
    preset_options,
    read_roots,
    refiner_python,
    run_key,
    run_pipeline,
    summary,
    write_manifest,
)
from .memory.plan import MemoryPlan, TargetGpus, format_plan, plan_memory, target_gpus
from .plan import ManifestError, Plan
from .preflight import environment, hardware_problems
from .progress import ProgressWatcher
from .stages import FINAL, STAGES, Stage
from .stagewise import ServiceStarter, run_stagewise
from .state import RunReport, StageConfig
from .supervisor import Supervisor, interrupt_on_signals, stop_children

SCHEDULES = ("auto", "together", "stagewise")


@dataclass
class RunSettings:
    """`a100m run`'s options beyond the inputs and the output folder."""

    preset: str = "tiny"
    store_root: str | None = None
    shard_size: int = 16
    parallelism: int = 2
    models_dir: str | None = None
    vllm_python: str | None = None
    allowed_roots: str | None = None
    schedule: str = "auto"
    gpus: str | None = None  # "0,1": the GPUs this run may use (default: every visible one)
    gpu_memory_gib: float | None = None  # each GPU's memory (default: measured)
    services: dict[str, str] = field(default_factory=dict)  # stage -> host:port already running


def parse_services(text: str | None) -> dict[str, str]:
    """`embed=host:port,caption=host:port` -> {stage: address}; stages by stage or service name."""
    names = {spec.name: spec.name for spec in STAGES} | {spec.service: spec.name for spec in STAGES}
    services: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, _, address = part.partition("=")
        if name not in names or ":" not in address:
            raise ValueError(
                f"--services {part!r}: expected STAGE=HOST:PORT with STAGE one of {', '.join(s.name for s in STAGES)}"
            )
        services[names[name]] = address
    return services


@dataclass
class RunSchedule:
    """How this run starts its services: all at once or one stage at a time, each service's extra
    env (GPUs, memory share), whether the refiner goes first, and the memory plan behind it."""

    kind: str  # together | stagewise
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    refiner_first: bool = False
    plan: MemoryPlan | None = None


def decide_schedule(settings: RunSettings, env: Mapping[str, str], target: TargetGpus) -> RunSchedule:
    """The schedule for this machine: from the memory plan when there are GPUs (or --gpus says so),
    else the one asked for (on a CPU every service runs at once unless --schedule stagewise)."""
    gpus, gpu_bytes = target.gpus, target.gpu_bytes
    if settings.gpus and not gpu_bytes:
        raise ValueError("--gpus: no CUDA GPU is visible here to measure; say each GPU's memory (--gpu-memory-gib)")
    elsewhere = [spec.service for spec in STAGES if spec.name in settings.services]
    if not gpus or not gpu_bytes or len(elsewhere) == len(STAGES):
        return RunSchedule("stagewise" if settings.schedule == "stagewise" else "together")
    plan = plan_memory(environment(env), gpus, gpu_bytes, settings.schedule, elsewhere)
    if plan.schedule.kind == "none":
        raise PlanError(format_plan(plan))
    service_env = {p.service: p.env for p in plan.schedule.placements}
    return RunSchedule(plan.schedule.kind, service_env, refiner_first=plan.refiner_shares_a_gpu(), plan=plan)


class PlanError(RuntimeError):
    """The models do not fit the GPUs in any schedule; the message is the plan."""


def run_main(inputs: list[str], out: str, settings: RunSettings | None = None) -> int:
    """Everything on this machine; prints progress, the output path and a summary.
    Returns 0 when every video is done, 1 when some failed or the run stopped, 2 for bad input."""
    settings = settings or RunSettings()
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    artifact_prefix = settings.store_root.rstrip("/") if settings.store_root else to_uri(out_dir / "artifacts")
    output_prefix = to_uri(out_dir / "dataset")
    os.environ["A100M_ALLOWED_ROOTS"] = _extend_env_roots("A100M_ALLOWED_ROOTS", [artifact_prefix, output_prefix])
    try:
        store = ArtifactStore.from_env()
        manifest = write_manifest(store, inputs, artifact_prefix)
        os.environ["A100M_READ_ONLY_ROOTS"] = _extend_env_roots(
            "A100M_READ_ONLY_ROOTS", read_roots(inputs, [], manifest, "")
        )
        store = ArtifactStore.from_env()
        videos = preflight(store, manifest)
    except (ManifestError, UriError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    readable = read_roots(inputs, videos, manifest, settings.allowed_roots)
    os.environ["A100M_READ_ONLY_ROOTS"] = _extend_env_roots("A100M_READ_ONLY_ROOTS", readable)
    store = ArtifactStore.from_env()
    env = {
        **preset_env(settings.preset, Path(settings.models_dir) if settings.models_dir else out_dir / "models"),
        "A100M_ALLOWED_ROOTS": os.environ["A100M_ALLOWED_ROOTS"],
        "A100M_READ_ONLY_ROOTS": os.environ["A100M_READ_ONLY_ROOTS"],
    }
    options = preset_options(settings.preset)
    key = run_key(store, manifest, videos, env, options, settings.shard_size)
    if nothing_to_do(store, out_dir, key, output_prefix):
        print(
            f"nothing to do: all {len(videos)} videos are published under {output_prefix}/data/ with these "
            "settings; no service started (change an option, or delete the output, to recompute)"
        )
        return 0
    local = [spec.service for spec in STAGES if spec.name not in settings.services]
    try:
        target = target_gpus(settings.gpus, settings.gpu_memory_gib)
        problems = hardware_problems(environment(env), local, settings.preset != "tiny", target.visible)
        schedule = decide_schedule(settings, env, target)
    except (PlanError, UnknownModel, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if problems:
        print("\n".join(f"error: {problem}" for problem in problems), file=sys.stderr)
        return 2
    if schedule.plan is not None:
        print(format_plan(schedule.plan), flush=True)
    return _run(
        PreparedRun(
            store, manifest, videos, out_dir, artifact_prefix, output_prefix, env, options, key, settings, schedule
        )
    )


@dataclass(frozen=True)
class PreparedRun:
    """What `run_main` settled before any service starts."""

    store: ArtifactStore
    manifest: str  # the run's manifest URI (inputs/manifest.jsonl)
    videos: list[dict[str, object]]  # its rows, checked
    out_dir: Path
    artifact_prefix: str
    output_prefix: str
    env: dict[str, str]  # the services' environment (preset, roots)
    options: dict[str, str]  # the pipeline's stage options
    key: str  # what the run's result depends on: a rerun with the same key has nothing to do
    settings: RunSettings
    schedule: RunSchedule


def _run(prepared: PreparedRun) -> int:
    store, settings, schedule, out_dir = prepared.store, prepared.settings, prepared.schedule, prepared.out_dir
    artifact_prefix, output_prefix = prepared.artifact_prefix, prepared.output_prefix
    started = time.monotonic()
    run = uuid.uuid4().hex[:12]
    supervisors: list[Supervisor] = []
    task_log_path = out_dir / "logs" / "pipeline.log"
    plan_uri = Plan.uri_for(artifact_prefix, run)
    interrupt_on_signals()

    @contextlib.contextmanager
    def services(only: list[str] | None = None) -> Iterator[dict[str, str]]:
        supervisor = Supervisor(out=sys.stdout)  # the terminal, also while task output goes to the log
        supervisors.append(supervisor)
        with local_services(
            prepared.env,
            out_dir / "logs",
            vllm_python=refiner_python(settings.vllm_python),
            supervisor=supervisor,
            only=only,
            service_env=schedule.service_env,
            external=settings.services,
            refiner_first=schedule.refiner_first,
        ) as running:
            yield running.addresses

    def failure() -> str:
        return next((s.failure for s in supervisors if s.failure), "")

    print(f"starting the services ({settings.preset} preset, {schedule.kind}) ...", flush=True)
    try:
        task_log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(task_log_path, "w") as task_log:
            if schedule.kind == "stagewise":
                fingerprints = _stagewise(prepared, run, services)
            else:
                with services() as addresses:
                    print(f"services ready after {time.monotonic() - started:.0f}s; running the pipeline", flush=True)
                    configs = current_stages(addresses, prepared.options)
                    fingerprints = {name: config.fingerprint for name, config in configs.items()}
                    print(f"  kfp.local task logs: {task_log_path}", flush=True)
                    with (
                        ProgressWatcher(store, artifact_prefix, plan_uri, fingerprints, total=len(prepared.videos)),
                        contextlib.redirect_stdout(task_log),
                        contextlib.redirect_stderr(task_log),
                    ):
                        try:
                            run_pipeline(
                                addresses,
                                prepared.manifest,
                                artifact_prefix,
                                output_prefix,
                                os.environ["A100M_ALLOWED_ROOTS"].split(","),
                                out_dir / "kfp",
                                settings.shard_size,
                                settings.parallelism,
                                os.environ.get("A100M_S3_ENDPOINT", ""),
                                options=prepared.options,
                                run=run,
                                read_only_roots=os.environ["A100M_READ_ONLY_ROOTS"].split(","),
                            )
                        except KeyboardInterrupt:
                            raise
                        except Exception:
                            if failure():  # a task failed because a service was stopped
                                raise KeyboardInterrupt from None
                            raise PipelineFailed(pipeline_failure(task_log_path)) from None
    except KeyboardInterrupt:
        stopped = stop_children()
        tasks = f" and {len(stopped)} task process(es)" if stopped else ""
        why = f"{failure()}\n" if failure() else "interrupted: "
        print(
            f"{why}stopped every service{tasks}; finished work is kept: rerun the same command to resume",
            file=sys.stderr,
        )
        return 1 if failure() else 130
    except PipelineFailed as error:
        print(f"error: the pipeline failed: {error}\n  (the whole log: {task_log_path})", file=sys.stderr)
        return 1
    except ServiceFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    report = RunReport.from_json(store.get_bytes(f"{output_prefix}/report.json").decode())
    final = _final_artifacts(store, artifact_prefix, run, fingerprints[FINAL.name], set(report.done))
    RunRecord(prepared.key, fingerprints, report.done + list(report.failed), final).save(out_dir)
    print(summary(report, output_prefix))
    print(f"wall time: {time.monotonic() - started:.0f}s")
    return 0 if report.done and not report.failed else 1


class PipelineFailed(RuntimeError):
    """A step failed for a reason of its own (the message: its last error line)."""


def _stagewise(prepared: PreparedRun, run: str, services: ServiceStarter) -> dict[str, str]:
    """The stage-by-stage run with progress per stage; returns the stages' fingerprints."""
    store, artifact_prefix = prepared.store, prepared.artifact_prefix
    plan_uri = Plan.uri_for(artifact_prefix, run)
    fingerprints: dict[str, str] = {}

    def config(address: str, spec: Stage, upstream: dict[str, StageConfig]) -> StageConfig:
        found = current_stage(address, spec, prepared.options, upstream)
        fingerprints[spec.name] = found.fingerprint
        return found

    @contextlib.contextmanager
    def watch(spec: Stage, found: StageConfig) -> Iterator[None]:
        print(f"stage {spec.name}: the {spec.service} alone", flush=True)
        with ProgressWatcher(store, artifact_prefix, plan_uri, dict(fingerprints), total=len(prepared.videos)):
            yield

    run_stagewise(
        store,
        prepared.manifest,
        artifact_prefix,
        prepared.output_prefix,
        services,
        config,
        prepared.settings.shard_size,
        prepared.settings.parallelism,
        prepared.options,
        run,
        during_stage=watch,
    )
    return fingerprints
