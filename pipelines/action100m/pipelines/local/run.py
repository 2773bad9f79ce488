"""`run_main`: the one-machine run from the inputs to the dataset.

It settles the run (`context`), says "nothing to do" when the last run of the folder already made
this dataset (`record`), checks the machine and decides the schedule (`preflight`, `schedule`),
starts the services it needs on loopback (`services`; `--services` names ones already running),
runs the pipeline (the DAG through kfp.local, or `stagewise`) with progress, and prints a summary.
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from action100m.common.grpc_server import ServerSettings
from action100m.common.text import printable
from action100m.common.uris import UriError

from ..executor import current_config, options_of
from ..memory.facts import UnknownModel
from ..memory.plan import format_plan, target_gpus
from ..plan import ManifestError, Plan
from ..registry import STAGES, Stage
from ..state import RunReport, StageConfig
from .context import RunContext, RunSettings, settle
from .kfp_driver import PipelineFailed, PipelineJob, run_in_child
from .lock import FolderBusy, output_lock
from .preflight import environment, hardware_problems
from .progress import ProgressWatcher
from .record import nothing_to_do, record_run, run_key
from .schedule import PlanError, RunSchedule, decide_schedule
from .services import ServiceFailed, local_services, missing_python, vllm_python
from .stagewise import run_stagewise
from .supervisor import Supervisor, interrupt_on_signals, stop_children


def run_main(inputs: list[str], out: str, settings: RunSettings | None = None) -> int:
    """Everything on this machine; prints progress, the output path and a summary.
    Returns 0 when every video is done, 1 when some failed or the run stopped, 2 for bad input
    (and for an output folder another run is using)."""
    try:
        with output_lock(Path(out).resolve()):
            return _run_main(inputs, out, settings or RunSettings())
    except FolderBusy as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run_main(inputs: list[str], out: str, settings: RunSettings) -> int:
    try:
        run = settle(inputs, out, settings)
    except (ManifestError, UriError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    key = run_key(run)
    if nothing_to_do(run, key):
        print(
            f"nothing to do: all {len(run.videos)} videos are published under {run.output_prefix}/data/ with these "
            "settings; no service started (change an option, or delete the output, to recompute)"
        )
        return 0
    try:
        schedule = _check_machine(run)
    except (PlanError, UnknownModel, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if schedule.plan is not None:
        print(format_plan(schedule.plan), flush=True)
    return LocalRun(run, schedule, key).execute()


def _check_machine(run: RunContext) -> RunSchedule:
    """The schedule of this run on this machine; ValueError with every problem, one per line."""
    settings = run.settings
    env = environment(run.service_env())
    ServerSettings.from_env(env)  # every service's server settings, checked before any starts
    for name, value in run.overridden().items():
        print(f"{name}={value} (from your environment) replaces the {settings.preset} preset's {run.preset_env[name]}")
    local = [spec for spec in STAGES if spec.name not in settings.services and spec.name in run.stage_names()]
    target = target_gpus(settings.gpus, settings.gpu_memory_gib)
    problems = hardware_problems(env, [s.service for s in local], settings.preset != "tiny", target.visible)
    missing = missing_python(local, env, vllm_python(settings.vllm_python, settings.env))
    problems += [missing] if missing else []
    schedule = decide_schedule(settings.schedule, settings.services, env, target, gpus_named=bool(settings.gpus))
    if problems:  # one per line, each an `error:` line as the caller prints the first
        raise ValueError("\nerror: ".join(problems))
    return schedule


@dataclass
class LocalRun:
    """A settled run on this machine while it goes: its services, their supervisors, its progress."""

    run: RunContext
    schedule: RunSchedule
    key: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started: float = field(default_factory=time.monotonic)
    supervisors: list[Supervisor] = field(default_factory=list)

    @property
    def task_log(self):  # type: ignore[no-untyped-def]
        return self.run.out_dir / "logs" / "pipeline.log"

    @property
    def plan_uri(self) -> str:
        return Plan.uri_for(self.run.artifact_prefix, self.run_id)

    def failure(self) -> str:
        """Why a supervisor stopped the run ("" if none did)."""
        return next((s.failure for s in self.supervisors if s.failure), "")

    @contextlib.contextmanager
    def services(self, only: list[str] | None = None) -> Iterator[dict[str, str]]:
        """The services (all, or the stages in `only`) while they run: their addresses."""
        supervisor = Supervisor(out=sys.stdout)  # the terminal, also while task output goes to the log
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
        ) as running:
            yield running.addresses

    def execute(self) -> int:
        """Runs the pipeline on the services; the exit code (0 when every video is done)."""
        settings = self.run.settings
        interrupt_on_signals()
        print(f"starting the services ({settings.preset} preset, {self.schedule.kind}) ...", flush=True)
        try:
            self.task_log.parent.mkdir(parents=True, exist_ok=True)
            if self.schedule.kind == "stagewise":
                report, configs = run_stagewise(self.run, self.run_id, self.services, self._watch_stage)
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
        except ServiceFailed as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        record_run(self.run, self.key, self.plan_uri, fingerprints_of(configs), report)
        print(summary(report, self.run.output_prefix))
        print(f"wall time: {time.monotonic() - self.started:.0f}s")
        return 0 if report.done and not report.failed else 1

    def _together(self) -> tuple[RunReport, dict[str, StageConfig]]:
        """Every service at once, the DAG through kfp.local in a child process group, progress on
        the terminal."""
        run = self.run
        with self.services(run.stage_names() if run.start else None) as addresses:
            print(f"services ready after {time.monotonic() - self.started:.0f}s; running the pipeline", flush=True)
            configs = current_configs(addresses, run)
            print(f"  kfp.local task logs: {self.task_log}", flush=True)
            with self._progress(configs):
                try:
                    run_in_child(PipelineJob.of(run, addresses, self.run_id), self.task_log)
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
        """Progress of this run's videos under the stages' current fingerprints."""
        run = self.run
        running = {name: fp for name, fp in fingerprints_of(configs).items() if name in run.stage_names()}
        return ProgressWatcher(run.store, run.artifact_prefix, self.plan_uri, running, total=len(run.videos))


def fingerprints_of(configs: dict[str, StageConfig]) -> dict[str, str]:
    return {name: config.fingerprint for name, config in configs.items()}


def current_configs(addresses: dict[str, str], run: RunContext) -> dict[str, StageConfig]:
    """Every stage's config, in stage order (a stage's fingerprint holds its upstream ones)."""
    configs: dict[str, StageConfig] = run.imported()
    for spec in (s for s in STAGES if s.name not in configs):
        configs[spec.name] = current_config(addresses[spec.name], spec, options_of(spec, run.options), configs)
    return configs


def _node_failures(report: RunReport) -> str:
    """The eligible segments the refiner could not annotate (each has its reasons in its artifact)."""
    counters = report.stats["refine"].counters if "refine" in report.stats else {}
    failed, unanswered = int(counters.get("nodes_failed", 0)), int(counters.get("rounds_without_answer", 0))
    text = f" of {int(counters.get('nodes_eligible', 0))} eligible" if failed or unanswered else ""
    if failed:
        text += f" ({failed} failed in every round: see report.json)"
    if unanswered:  # GPT-OSS ran out of tokens before its final answer, or answered outside it
        text += f"; {unanswered} round(s) ended without a final answer (reasons in the annotations' errors)"
    return text


def summary(report: RunReport, output_prefix: str, max_failures: int = 20) -> str:
    export = report.export
    lines = [
        f"output: {output_prefix}/data/ (card: README.md, report: report.json)",
        f"videos: {export.rows} done, {len(report.failed)} failed of {report.videos}",
        f"nodes: {export.nodes}, segments annotated: {export.segments_annotated}{_node_failures(report)}",
        "stage seconds: " + ", ".join(f"{name} {s.seconds:.1f}" for name, s in report.stats.items()),
    ]
    for uid, failure in list(report.failed.items())[:max_failures]:
        lines.append(f"  failed {printable(uid)} at {failure.stage} ({failure.code}): {printable(failure.reason)}")
    if len(report.failed) > max_failures:
        lines.append(f"  ... {len(report.failed) - max_failures} more in report.json")
    return "\n".join(lines)
