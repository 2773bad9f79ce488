"""The DAG through kfp.local: the cluster's pipeline, its tasks as local processes, against the
services of this machine. The tasks get the run's roots and endpoint as their environment."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..executor import options_dict
from .context import RunContext
from .supervisor import log_tail


def run_pipeline(run: RunContext, addresses: Mapping[str, str], run_id: str, overwrite: bool = False) -> str:
    """Runs the DAG through kfp.local against running services; returns its one-line summary."""
    import warnings

    from kfp import local

    from ..dag import build_pipeline

    # Locally every task runs in this environment, not in its image; KFP warns about each one.
    warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
    warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run.out_dir / "kfp"))
    pipeline = build_pipeline(parallelism=run.settings.parallelism, s3_secret=None, step_env=run.step_env())
    with builtin_print_restored():
        task = pipeline(
            videos=run.manifest,
            artifact_prefix=run.artifact_prefix,
            output_prefix=run.output_prefix,
            run=run_id,
            addresses=dict(addresses),
            options={name: options_dict(options) for name, options in run.options.items()},
            shard_size=run.settings.shard_size,
            overwrite=overwrite,
        )
    return str(task.output)


@contextlib.contextmanager
def builtin_print_restored() -> Iterator[None]:
    """kfp.local indents a task's output by replacing `builtins.print` while the task runs and
    putting back what it found; two tasks of a ParallelFor that overlap put back each other's
    replacement, and every later `print` of the process is indented by 4 spaces (kfp 2.17). What
    this process prints after the pipeline (progress, the summary) must stay as written."""
    import builtins

    original = builtins.print
    try:
        yield
    finally:
        builtins.print = original


def pipeline_failure(task_log: Path) -> str:
    """The last error line of the kfp.local task log: the reason a step failed, without its traceback."""
    lines = [line.strip() for line in log_tail(task_log, 20000).splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b.*:", line) or line.startswith("error:"):
            return line
    return lines[-1] if lines else "no log"
