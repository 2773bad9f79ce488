"""The DAG through kfp.local: the cluster's pipeline, its tasks as local processes, against the
services of this machine. The tasks get the run's roots and endpoint as their environment.

`a100m run` drives it in a child process of its own process group (`python -m
action100m.pipelines.local.kfp_driver JOB.json`): stopping the run (Ctrl-C, SIGTERM, a service the
supervisor gave up on) stops that group whole, kfp.local's queued tasks included, within seconds
however many shards wait; and what the tasks print goes to the log while the terminal keeps the
progress.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from action100m.common.lifeline import die_with_parent, parent_env

from .context import RunContext
from .supervisor import log_tail

STOP_SECONDS = 5.0  # SIGTERM to the driver's group, then SIGKILL after this long


@dataclass(frozen=True)
class PipelineJob:
    """One run of the DAG through kfp.local, as plain values (it crosses into the driver's process)."""

    arguments: dict[str, Any]  # the DAG's parameters (PipelineArguments.parameters())
    parallelism: int
    pipeline_root: str
    step_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, run: RunContext, addresses: Mapping[str, str], run_id: str, claimed: bool = False) -> PipelineJob:
        return cls(
            arguments=run.pipeline_arguments(addresses, run_id, claimed).parameters(),
            parallelism=run.settings.parallelism,
            pipeline_root=str(run.out_dir / "kfp"),
            step_env=run.step_env(),
        )

    @property
    def run_id(self) -> str:
        return str(self.arguments["run"])


def run_pipeline(job: PipelineJob) -> str:
    """Runs the DAG through kfp.local in this process; returns its one-line summary."""
    import warnings

    from kfp import local

    from ..dag import build_pipeline

    # Locally every task runs in this environment, not in its image; KFP warns about each one.
    warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
    warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=job.pipeline_root)
    pipeline = build_pipeline(parallelism=job.parallelism, s3_secret=None, step_env=job.step_env)
    with builtin_print_restored():
        task = pipeline(**job.arguments)
    return str(task.output)


class PipelineFailed(RuntimeError):
    """A step failed for a reason of its own (the message: its last error line)."""


def run_in_child(job: PipelineJob, task_log: Path) -> None:
    """Runs the DAG in a child process of its own process group, its output into `task_log`.
    KeyboardInterrupt (Ctrl-C, SIGTERM, the supervisor) stops the group whole and is raised again;
    a failed pipeline raises PipelineFailed with the reason."""
    task_log.parent.mkdir(parents=True, exist_ok=True)
    job_file = task_log.with_name(f"pipeline-{job.run_id}.json")
    job_file.write_text(json.dumps(asdict(job)))
    with open(task_log, "a") as log:
        log.write(f"==== a100m run {job.run_id}: the DAG through kfp.local ====\n")
        log.flush()
        child = subprocess.Popen(
            [sys.executable, "-m", __name__, str(job_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **parent_env()},
        )
        try:
            code = child.wait()
        except BaseException:
            stop_group(child)
            raise
        finally:
            job_file.unlink(missing_ok=True)
    if code != 0:
        raise PipelineFailed(pipeline_failure(task_log))


def stop_group(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's process group (the driver, its task processes), then SIGKILL to what
    is left of it after STOP_SECONDS."""
    _signal_group(child, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(STOP_SECONDS)
    _signal_group(child, signal.SIGKILL)  # the driver if it is still there, and tasks that outlive it
    child.wait()


def _signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signum)


@contextlib.contextmanager
def builtin_print_restored() -> Iterator[None]:
    """kfp.local indents a task's output by replacing `builtins.print` while the task runs and
    putting back what it found; two tasks of a ParallelFor that overlap put back each other's
    replacement, and every later `print` of the process is indented by 4 spaces (kfp 2.17). What
    this process prints after the pipeline must stay as written."""
    import builtins

    original = builtins.print
    try:
        yield
    finally:
        builtins.print = original


def pipeline_failure(task_log: Path) -> str:
    """Why the pipeline failed, in one line: the error a failing step raised (the last line of the
    last traceback in the kfp.local task log that is not kfp's own "Inner task failed"), else the
    last `error:` line, else the last line."""
    lines = log_tail(task_log, 200_000).splitlines()
    errors = [line for line in _traceback_ends(lines) if "Inner task failed" not in line]
    if errors:
        return errors[-1]
    said = [line.strip() for line in lines if line.strip().startswith("error:")]
    if said:
        return said[-1]
    kept = [line.strip() for line in lines if line.strip()]
    return kept[-1] if kept else "no log"


def _traceback_ends(lines: list[str]) -> list[str]:
    """The exception line of each Python traceback in `lines` (a step's output is indented: the
    exception line is the first after the header at the header's own indentation)."""
    found = []
    for index, line in enumerate(lines):
        if line.strip() != "Traceback (most recent call last):":
            continue
        indent = line[: len(line) - len(line.lstrip())]
        for after in lines[index + 1 :]:
            if after.startswith(indent) and after[len(indent) :][:1] not in (" ", "\t", ""):
                found.append(after.strip())
                break
    return found


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class PlainText(io.TextIOBase):
    """A text stream that drops terminal colour codes (kfp.local colours its lines; the log is a file)."""

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(ANSI_ESCAPE.sub("", text))
        return len(text)

    def flush(self) -> None:
        self.raw.flush()


def main(argv: list[str]) -> int:
    """`python -m action100m.pipelines.local.kfp_driver JOB.json`: the DAG of one job."""
    sys.stdout, sys.stderr = PlainText(sys.stdout), PlainText(sys.stderr)
    job = PipelineJob(**json.loads(Path(argv[0]).read_text()))
    # at once: kfp.local's iteration threads would hold a normal exit (one may be sleeping before a
    # task's retry), and the task processes are in this group, stopped by the same signal
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))
    die_with_parent()  # the run that started it killed (-9): this group (its tasks too) goes with it
    print(run_pipeline(job), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
