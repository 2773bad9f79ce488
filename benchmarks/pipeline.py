"""`a100m run` on 8, 64 and 256 short synthetic videos with the tiny models: where the time goes.

Each size is a fresh run (its own output folder) of the real command: the four services on
loopback, the DAG through kfp.local. Columns: the run's wall time, the services' start-up, the
pipeline itself, time per video, and how the pipeline's shard slots (parallelism x pipeline time)
split between waiting on the services (the steps' calls) and everything else: KFP task start-up,
planning, export, publication. The baseline is the 8-video run: time per video and per-shard
overhead should stay flat as the run grows (cost linear in the number of videos).

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
            pipeline = wall - startup
            shards = -(-count // args.shard_size)
            calls = sum(s.seconds for s in report.stats.values())
            slots = pipeline * args.parallelism
            rows.append(
                {
                    "videos": count,
                    "rows": report.export.rows,
                    "shards": shards,
                    "wall_s": round(wall, 1),
                    "startup_s": startup,
                    "pipeline_s": round(pipeline, 1),
                    "s_per_video": round(pipeline / count, 2),
                    "in_service_calls_s": round(calls, 1),
                    "outside_share": round(max(0.0, 1 - calls / slots), 2),
                    "overhead_per_shard_s": round(max(0.0, slots - calls) / shards, 2),
                }
            )
    base = rows[0]["s_per_video"]
    for row in rows:
        row["per_video_vs_smallest"] = round(row["s_per_video"] / base, 2)
    emit(
        rows,
        args.json,
        notes=[
            "outside_share: the part of the shard slots (parallelism x pipeline_s) not spent in service calls "
            "(KFP task start-up, planning, export, publication); per_video_vs_smallest ~1 means linear cost.",
        ],
    )


if __name__ == "__main__":
    main()
