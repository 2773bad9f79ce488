"""Planning a run of 1,000 to 100,000 videos: time, and the size of what passes through KFP.

The baseline, in the same run, is the previous design's ParallelFor input: the list of every
shard's JSON state (~190 bytes per video, all of it a KFP parameter). Now the plan lives in the
store; KFP carries the plan's URI, the list of shard indices (a few bytes per shard) and, per loop
iteration, one shard's state (constant in the run's size). Planning time grows linearly with the
number of videos (one metadata artifact and 1/shard_size plan file per video, written concurrently).

    python benchmarks/planning.py [--json] [--videos 1000 10000 100000] [--shard-size 16]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from report import emit, parser

from action100m.common.store import ArtifactStore
from action100m.pipelines.plan import plan_run


def manifest(path: Path, count: int) -> str:
    with open(path, "w") as out:
        for i in range(count):
            row = {
                "video_uid": f"yt_{i:08d}",
                "uri": f"s3://videos/raw/{i % 997}/yt_{i:08d}.mp4",
                "title": f"How to fix a bike chain, part {i}",
                "duration": 300 + i % 900,
            }
            out.write(json.dumps(row) + "\n")
    return f"file://{path}"


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, nargs="+", default=[1000, 10000, 100000])
    p.add_argument("--shard-size", type=int, default=16)
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore([f"file://{tmp}"])
        for count in args.videos:
            source = manifest(Path(tmp) / f"m{count}.jsonl", count)
            prefix = f"file://{tmp}/art{count}"
            started = time.perf_counter()
            plan = plan_run(store, source, prefix, args.shard_size)
            seconds = time.perf_counter() - started
            first = plan.shard(store, 0, prefix)
            indices = json.dumps(list(range(plan.shards)))
            old_list = sum(
                len(
                    json.dumps(
                        {
                            "shard": i,
                            "prefix": prefix,
                            "videos": [
                                {"video_uid": v.video_uid, "uri": v.uri, "metadata_uri": v.metadata_uri}
                                for v in first.videos
                            ],
                        }
                    )
                )
                for i in range(plan.shards)
            )
            rows.append(
                {
                    "videos": count,
                    "shards": plan.shards,
                    "plan_s": round(seconds, 2),
                    "ms_per_1k_videos": round(1000 * seconds / count * 1000, 1),
                    "plan_uri_bytes": len(plan.uri),
                    "shard_state_bytes": len(first.to_json()),
                    "index_list_bytes": len(indices),
                    "baseline_list_bytes": old_list,
                    "baseline_over_now": round(old_list / (len(indices) + len(plan.uri)), 1),
                }
            )
    emit(
        rows,
        args.json,
        notes=[
            "shard_state_bytes: one loop iteration's input, constant in the run's size; index_list_bytes: the "
            "ParallelFor's list (a few bytes per shard); baseline: the previous design's list of shard states.",
        ],
    )


if __name__ == "__main__":
    main()
