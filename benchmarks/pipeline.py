"""`a100m run` on 8, 64 and 256 short synthetic videos with the tiny models: where the time goes.

Each size is a fresh run (its own output folder) of the real command: the five services on
loopback, the DAG through kfp.local. Columns: the run's wall time, the services' start-up, the
pipeline (wall minus start-up), the DAG alone (kfp.local's first to last line), the time the steps
spent in service calls, and the orchestration around them, read from kfp.local's task log:
- shard_overhead_s: per shard, the time its tasks (four stages and the export) ran outside service
  calls: task process start, imports, store reads and writes, the export;
- run_overhead_s: once per run: the plan, shard-indices and publish tasks, and everything outside the
  DAG (the driver process, stopping the services).
The baseline is the 8-video run: time per video should fall toward a flat rate and shard_overhead_s
stay flat as the run grows (cost linear in the number of videos).

    python benchmarks/pipeline.py [--json] [--videos 8 64 256] [--shard-size 16] [--parallelism 2]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from report import emit, parser

from action100m.devtools.synthetic_video import write_video
from action100m.pipelines.state import RunReport

RUN_TASKS = ("plan-run", "shard-indices", "publish-dataset")  # once per run; every other task is a shard's
STARTED = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) - INFO - Executing task '([\w-]+)'")
# The end of a task: its executor writing its output file (kfp.local's own "finished" line can be lost
# when two tasks of a ParallelFor overlap: it swaps builtins.print per task).
ENDED = re.compile(
    r"\[KFP Executor \S+ (\d\d:\d\d:\d\d),(\d+) INFO\]: Wrote executor output file to \S*/([\w-]+)/executor_output"
)


def task_seconds(pipeline_log: str) -> tuple[dict[str, float], float]:
    """Seconds per task name, summed over a ParallelFor's iterations (which overlap: the sum of the
    end times minus the sum of the start times needs no pairing), and the DAG's wall seconds."""
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    stamps: list[float] = []
    for line in pipeline_log.splitlines():
        if match := STARTED.match(line):
            stamp, name, sign = _seconds(match.group(1)), match.group(2), -1
        elif match := ENDED.search(line):
            stamp, name, sign = _seconds(f"{match.group(1)}.{match.group(2)}"), match.group(3), 1
        else:
            continue
        if stamps and stamp < stamps[-1] - 43200:
            stamp += 86400  # past midnight
        stamps.append(stamp)
        seconds[name] = seconds.get(name, 0.0) + sign * stamp
        counts[name] = counts.get(name, 0) + sign
    if any(counts.values()):
        raise SystemExit(f"the task log has starts and ends that do not pair up: {counts}")
    return seconds, (stamps[-1] - stamps[0]) if stamps else 0.0


def _seconds(clock: str) -> float:
    hours, minutes, secs = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(secs)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, nargs="+", default=[8, 64, 256])
    p.add_argument("--shard-size", type=int, default=16)
    p.add_argument("--parallelism", type=int, default=2)
    p.add_argument("--models", default=None, help="tiny models folder (built once if absent)")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(args.models or Path(tmp) / "models")
        for count in args.videos:
            folder = Path(tmp) / f"videos{count}"
            videos = [
                write_video(
                    folder / f"clip{i:04d}.mp4", frames=75, fps=25, size=(96, 64), scene_starts=(0, 30 + i % 20)
                )
                for i in range(count)
            ]
            out = Path(tmp) / f"out{count}"
            command = [
                sys.executable,
                "-m",
                "action100m.cli",
                "run",
                *map(str, videos),
                "--out",
                str(out),
                "--models",
                str(models),
                "--shard-size",
                str(args.shard_size),
                "--parallelism",
                str(args.parallelism),
            ]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True)
            wall = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"a100m run failed for {count} videos:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
            startup = float(re.search(r"services ready after (\d+)s", done.stdout).group(1))  # type: ignore[union-attr]
            report = RunReport.from_json((out / "dataset" / "report.json").read_text())
            tasks, dag = task_seconds((out / "logs" / "pipeline.log").read_text())
            pipeline = wall - startup
            shards = -(-count // args.shard_size)
            calls = sum(s.seconds for s in report.stats.values())
            shard_tasks = sum(v for k, v in tasks.items() if k not in RUN_TASKS)
            run_tasks = sum(v for k, v in tasks.items() if k in RUN_TASKS)
            rows.append(
                {
                    "videos": count,
                    "rows": report.export.rows,
                    "shards": shards,
                    "wall_s": round(wall, 1),
                    "startup_s": startup,
                    "pipeline_s": round(pipeline, 1),
                    "dag_s": round(dag, 1),
                    "s_per_video": round(pipeline / count, 2),
                    "in_service_calls_s": round(calls, 1),
                    "shard_overhead_s": round(max(0.0, shard_tasks - calls) / shards, 2),
                    "run_overhead_s": round(run_tasks + max(0.0, pipeline - dag), 1),
                }
            )
    base = rows[0]["s_per_video"]
    for row in rows:
        row["per_video_vs_smallest"] = round(row["s_per_video"] / base, 2)
    emit(
        rows,
        args.json,
        notes=[
            "shard_overhead_s: per shard, its tasks' time outside service calls; run_overhead_s: the per-run "
            "tasks and everything outside the DAG; per_video_vs_smallest falling to a flat rate means linear cost.",
        ],
    )


if __name__ == "__main__":
    main()
