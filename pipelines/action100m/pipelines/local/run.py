"""`run_main`: the one-machine run from the inputs to the dataset.

It settles the run (`context`), says "nothing to do" when the last run of the folder already made
this dataset (`record`), plans it here (every video that cannot run is said at once, and a run with
none left stops), asks the registry which stages must run (`registry.stages_to_run`: the others'
artifacts are all published), checks the machine and decides the schedule for those stages
(`preflight`, `schedule`), starts only their services on loopback (`services`; `--services` names
ones already running), runs the pipeline (the DAG through kfp.local, or `stagewise`) with progress,
and prints a summary.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from action100m.common.grpc_server import ServerSettings
from action100m.common.text import printable
from action100m.common.uris import UriError

from ..executor import current_config, options_of
from ..export import PublicationRefused, claim_output
from ..memory.facts import UnknownModel
from ..memory.plan import format_plan, target_gpus
from ..plan import ManifestError, Plan
from ..registry import ANNOTATIONS, STAGES, Stage, stage, stages_to_run
from ..state import RunReport, StageConfig, VideoEntry
from .context import RunContext, settle
from .kfp_driver import PipelineFailed, PipelineJob, run_in_child
from .lock import FolderBusy, output_lock
from .preflight import environment, hardware_problems
from .presets import REAL_TRANSCRIBER_NOTE, whisper_tiny_en
from .progress import ProgressWatcher, Terminal
from .record import known_configs, nothing_to_do, record_run, run_key
from .schedule import PlanError, RunSchedule, decide_schedule
from .services import ServiceFailed, local_services, missing_python, vllm_python
from .settings import RunSettings
from .stagewise import plan_configs, run_stagewise
from .supervisor import Supervisor, interrupt_on_signals, stop_children

MAX_LISTED = 20  # failures listed on the terminal; report.json has them all


class NothingToRun(ValueError):
    """No video of the run can run (each failed at plan)."""


def run_main(inputs: list[str], out: str, settings: RunSettings | None = None) -> int:
    """Everything on this machine; prints progress, the output path and a summary.
    Returns 0 when every video is done, 1 when some failed or the run stopped, 2 for bad input
    (and for an output folder another run is using)."""
    folder = Path(out).resolve()
    made_here = not folder.exists()
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(output_lock(folder))
        except FolderBusy as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except OSError as error:  # the folder cannot be made or written: a read-only disk, no permission
            print(f"error: --out {out}: cannot write there ({error.strerror or error})", file=sys.stderr)
            return 2
        code = _run_main(inputs, out, settings or RunSettings())
    if code == 2 and made_here:  # refused before any work: leave no folder behind
        shutil.rmtree(folder, ignore_errors=True)
    return code


def _run_main(inputs: list[str], out: str, settings: RunSettings) -> int:
    try:
        run = settle(inputs, out, settings)
        key = run_key(run)
        if nothing_to_do(run, key):
            print(
                f"nothing to do: all {len(run.videos)} videos are published under {run.output_prefix}/data/ with "
                "these settings; no service started (change an option, or delete the output, to recompute)"
            )
            return 0
        local = LocalRun(run, key)
        local.prepare()
        schedule = _check_machine(run, local.running)
    except (ManifestError, UriError, OSError, ValueError, PlanError, UnknownModel) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if schedule.plan is not None:
        print(format_plan(schedule.plan), flush=True)
    return local.execute(schedule)


def _check_machine(run: RunContext, running: list[str]) -> RunSchedule:
    """The schedule of the stages that run, on this machine; ValueError with every problem, one per line."""
    settings = run.settings
    env = environment(run.service_env(), settings.env)
    ServerSettings.from_env(env)  # every service's server settings, checked before any starts
    for name, value in run.overridden().items():
        print(f"{name}={value} (from your environment) replaces the {settings.preset} preset's {run.preset_env[name]}")
    local = [spec for spec in STAGES if spec.name not in settings.services and spec.name in running]
    target = target_gpus(settings.gpus, settings.gpu_memory_gib)
    problems = hardware_problems(env, [s.service for s in local], settings.preset != "tiny", target.visible)
    missing = missing_python(local, env, vllm_python(settings.vllm_python, settings.env))
    problems += [missing] if missing else []
    schedule = decide_schedule(
        settings.schedule, settings.services, env, target, gpus_named=bool(settings.gpus), running=running
    )
    if problems:  # one per line, each an `error:` line as the caller prints the first
        raise ValueError("\nerror: ".join(problems))
    return schedule


@dataclass
class LocalRun:
    """A settled run on this machine while it goes: its plan, the stages that run, their services
    and supervisors, its progress."""

    run: RunContext
    key: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: float = field(default_factory=time.monotonic)
    supervisors: list[Supervisor] = field(default_factory=list)
    running: list[str] = field(default_factory=list)  # the stages that run (registry.stages_to_run)
    terminal: Terminal = field(default_factory=Terminal)
    schedule: RunSchedule = field(default_factory=lambda: RunSchedule("together"))
    metrics: dict[str, str] = field(default_factory=dict)  # stage -> its service's /metrics address

    @property
    def task_log(self) -> Path:
        return self.run.out_dir / "logs" / "pipeline.log"

    @property
    def plan_uri(self) -> str:
        return Plan.uri_for(self.run.artifact_prefix, self.run_id)

    def failure(self) -> str:
        """Why a supervisor stopped the run ("" if none did)."""
        return next((s.failure for s in self.supervisors if s.failure), "")

    def prepare(self) -> None:
        """Plans the run, says which videos fail at plan (NothingToRun when none is left), and which
        stages run; the others' configs go into the plan (their artifacts are all published)."""
        run = self.run
        claim_output(run.store, run.output_prefix, self.run_id)  # a run killed before this one publishes nothing now
        plan = run.plan(self.run_id)
        videos = [
            video for index in range(plan.shards) for video in plan.shard(run.store, index, run.artifact_prefix).videos
        ]
        failed = [video for video in videos if video.error]
        _say_plan_failures(failed, len(videos))
        if len(failed) == len(videos):
            raise NothingToRun(
                f"no video left to run: all {len(videos)} failed at plan (listed above); nothing was started"
            )
        known = {**plan_configs(plan), **known_configs(run)}
        requested = run.requested_stages()
        self.running = stages_to_run(videos, requested, known, run.artifact_prefix, lambda f: set(run.store.list(f)))
        live = [video for video in videos if not video.error]
        reused = {  # the stages that do not run but whose artifacts the run reads
            name: replace(known[name], reused=True)
            for name in requested
            if name not in self.running and name in known and any(stage(name).runs_on(v) for v in live)
        }
        if reused:
            plan.add_configs(run.store, reused)
        print(_stages_line(self.running, reused, requested), flush=True)
        real = whisper_tiny_en()
        env = run.service_env()
        if real and any(str(real) in spec.models(env) for spec in STAGES if spec.name in self.running):
            print(REAL_TRANSCRIBER_NOTE, flush=True)  # the tiny preset, with one real model

    @contextlib.contextmanager
    def services(self, only: list[str]) -> Iterator[dict[str, str]]:
        """The services of the stages in `only` while they run: their addresses."""
        supervisor = Supervisor(out=self.terminal, hang_seconds=self.run.settings.hang_seconds)
        self.supervisors.append(supervisor)
        with local_services(
            self.run.service_env(),
            self.run.out_dir / "logs",
            python_for_vllm=vllm_python(self.run.settings.vllm_python, self.run.settings.env),
            supervisor=supervisor,
            only=only,
            service_env=self.schedule.service_env,
            external=self.run.settings.services,
            first=self.schedule.first,
            say=self.terminal.say,
        ) as running:
            self.metrics = running.metrics
            yield running.addresses

    def execute(self, schedule: RunSchedule) -> int:
        """Runs the pipeline on the services; the exit code (0 when every video is done)."""
        self.schedule = schedule
        interrupt_on_signals()
        what = ", ".join(self.running) or "none: every stage's artifacts are published"
        print(
            f"starting the services ({self.run.settings.preset} preset, {schedule.kind}; stages: {what}) ...",
            flush=True,
        )
        try:
            self.task_log.parent.mkdir(parents=True, exist_ok=True)
            if schedule.kind == "stagewise":
                plan = Plan.load(self.run.store, self.plan_uri)
                report, configs = run_stagewise(self.run, plan, self.running, self.services, self._watch_stage)
            else:
                report, configs = self._together()
        except KeyboardInterrupt:
            stopped = stop_children()
            tasks = f" and {len(stopped)} task process(es)" if stopped else ""
            why = f"{self.failure()}\n" if self.failure() else "interrupted: "
            print(
                f"{why}stopped every service{tasks}; finished work is kept: rerun the same command to resume",
                file=sys.stderr,
            )
            return 1 if self.failure() else 130
        except PipelineFailed as error:
            print(f"error: the pipeline failed: {error}\n  (the whole log: {self.task_log})", file=sys.stderr)
            return 1
        except (ServiceFailed, PublicationRefused) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        record_run(self.run, self.key, self.plan_uri, configs, report)
        print(summary(report, self.run.output_prefix))
        print(f"wall time: {time.monotonic() - self.started:.0f}s")
        return 0 if report.done and not report.failed else 1

    def _together(self) -> tuple[RunReport, dict[str, StageConfig]]:
        """The services of the stages that run at once, the DAG through kfp.local in a child process
        group, progress on the terminal."""
        run = self.run
        with self.services(self.running) as addresses:
            if self.running:
                print(f"services ready after {time.monotonic() - self.started:.0f}s; running the pipeline", flush=True)
            configs = current_configs(addresses, run, plan_configs(Plan.load(run.store, self.plan_uri)), self.running)
            print(f"  kfp.local task logs: {self.task_log}", flush=True)
            with self._progress(configs):
                try:
                    run_in_child(PipelineJob.of(run, addresses, self.run_id, claimed=True), self.task_log)
                except PipelineFailed:
                    if self.failure():  # a task failed because a service was stopped
                        raise KeyboardInterrupt from None
                    raise
        report = RunReport.from_json(run.store.get_bytes(f"{run.output_prefix}/report.json").decode())
        return report, configs

    @contextlib.contextmanager
    def _watch_stage(self, spec: Stage, configs: dict[str, StageConfig]) -> Iterator[None]:
        print(f"stage {spec.name}: the {spec.service} alone", flush=True)
        with self._progress(configs):
            yield

    def _progress(self, configs: dict[str, StageConfig]) -> ProgressWatcher:
        """Progress of this run's videos under the running stages' current fingerprints, and of the
        work inside them (the services' counters)."""
        return ProgressWatcher(
            self.run.store,
            self.run.artifact_prefix,
            self.plan_uri,
            {name: config.fingerprint for name, config in configs.items()},
            total=len(self.run.videos),
            terminal=self.terminal,
            metrics=self.metrics,
            counted=[name for name in self.running if name in configs],
        )


def _say_plan_failures(failed: list[VideoEntry], total: int) -> None:
    """The videos that cannot run, said before any service starts (their reasons also go into the
    card and report.json)."""
    if not failed:
        return
    print(f"{len(failed)} of {total} videos failed at plan (the others run):")
    for video in failed[:MAX_LISTED]:
        print(f"  {printable(video.video_uid)} ({video.error_code}): {printable(video.error)}")
    if len(failed) > MAX_LISTED:
        print(f"  ... {len(failed) - MAX_LISTED} more (all in the dataset's card and report.json)")


def _stages_line(running: list[str], reused: dict[str, StageConfig], requested: list[str]) -> str:
    """Which stages run, and why the others do not."""
    idle = [name for name in requested if name not in running and name not in reused]
    parts = [f"stages to run: {', '.join(running) or 'none'}"]
    if reused:
        parts.append(f"{', '.join(reused)}: every video's artifact is published")
    if idle:
        parts.append(f"{', '.join(idle)}: no video needs it")
    return "; ".join(parts)


def current_configs(
    addresses: dict[str, str], run: RunContext, settled: dict[str, StageConfig], running: list[str]
) -> dict[str, StageConfig]:
    """The configs of the stages that run (asked of their services, in stage order: a stage's
    fingerprint holds its upstream ones) after those `settled` (imported, skipped, reused)."""
    configs = dict(settled)
    for spec in (s for s in STAGES if s.name in running):
        configs[spec.name] = current_config(addresses[spec.name], spec, options_of(spec, run.options), configs)
    return configs


def _node_failures(report: RunReport) -> str:
    """The eligible segments the refiner could not annotate (each has its reasons in its artifact)."""
    counters = report.stats[ANNOTATIONS.name].counters if ANNOTATIONS.name in report.stats else {}
    failed, unanswered = int(counters.get("nodes_failed", 0)), int(counters.get("rounds_without_answer", 0))
    text = f" of {int(counters.get('nodes_eligible', 0))} eligible" if failed or unanswered else ""
    if failed:
        text += f" ({failed} failed in every round: see report.json)"
    if unanswered:  # GPT-OSS ran out of tokens before its final answer, or answered outside it
        text += f"; {unanswered} round(s) ended without a final answer (reasons in the annotations' errors)"
    return text


def summary(report: RunReport, output_prefix: str, max_failures: int = MAX_LISTED) -> str:
    export = report.export
    lines = [
        f"output: {output_prefix}/ (data/*.parquet, the card README.md, report.json)",
        f"videos: {export.rows} done, {len(report.failed)} failed of {report.videos}",
        f"nodes: {export.nodes}, segments annotated: {export.segments_annotated}{_node_failures(report)}",
        "stage seconds: " + ", ".join(f"{name} {s.seconds:.1f}" for name, s in report.stats.items()),
    ]
    for uid, failure in list(report.failed.items())[:max_failures]:
        lines.append(f"  failed {printable(uid)} at {failure.stage} ({failure.code}): {printable(failure.reason)}")
    if len(report.failed) > max_failures:
        lines.append(f"  ... {len(report.failed) - max_failures} more in report.json")
    return "\n".join(lines)
