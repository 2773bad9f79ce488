"""`a100m sample` on synthetic datasets of growing size: wall time and peak memory, against the size
of the dataset (a row per size, each in a process of its own so that its peak is its own).

A dataset of N segments: videos of 100 annotated nodes, each an action brief drawn from a Zipf law
over 48,000 verb-object phrases (the release's briefs repeat the same way: "Speak to camera" 2.13M
times), a tenth of them made unique by a detail of their own (the long tail), so that the unique texts
grow more slowly than the segments. The sample is the paper's: exact dedup,
WordLlama embeddings, k-means with k = 1000, semantic resampling to as many draws as unique texts.
Cost grows linearly with the segments (two passes) and with the unique texts times k (k-means);
memory with the unique texts (their embeddings), not the segments.

    python benchmarks/sampling.py [--json] [--sizes 100000 1000000] [--k 1000]
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from report import emit, parser

VERBS = [
    "cut",
    "stir",
    "fold",
    "glue",
    "pour",
    "attach",
    "write",
    "turn",
    "wipe",
    "mix",
    "sand",
    "paint",
    "tape",
    "open",
    "close",
    "lift",
    "place",
    "press",
    "roll",
    "shake",
]
OBJECTS = [
    "paper",
    "board",
    "batter",
    "soup",
    "journal",
    "page",
    "tape",
    "glue",
    "lid",
    "bowl",
    "pan",
    "chain",
    "wheel",
    "edge",
    "photo",
    "ribbon",
    "sticker",
    "card",
    "box",
    "cloth",
    "dough",
    "sauce",
    "onion",
    "bread",
    "cup",
    "screw",
    "bolt",
    "nail",
    "frame",
    "string",
]
ADVERBS = ["", "slowly", "carefully", "again", "with a brush", "on the table", "in the bowl", "by hand"]
PLACES = [
    "",
    "at the desk",
    "in the kitchen",
    "outside",
    "by the window",
    "on the floor",
    "at the bench",
    "in the garage",
]
PLACES += ["on the stove", "at the sink"]
UNIQUE_SHARE = 0.1
NODES_PER_VIDEO = 100


def phrases() -> list[str]:
    return [
        " ".join(f"{v.capitalize()} {o} {a} {p}".split())
        for v in VERBS
        for o in OBJECTS
        for a in ADVERBS
        for p in PLACES
    ]


def write_dataset(path: Path, segments: int, seed: int = 0) -> None:
    """Videos of NODES_PER_VIDEO annotated nodes (a flat list is enough for the sampler's reader)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    vocabulary = phrases()
    ranks = np.minimum(rng.zipf(1.3, size=segments), len(vocabulary)) - 1
    tails = rng.random(segments) < UNIQUE_SHARE
    gpt = pa.struct([("action", pa.struct([("brief", pa.string())]))])
    node = pa.struct(
        [("node_id", pa.string()), ("level", pa.int16()), ("start", pa.float32()), ("end", pa.float32()), ("gpt", gpt)]
    )
    schema = pa.schema([("video_uid", pa.string()), ("nodes", pa.list_(node))])
    with pq.ParquetWriter(path, schema) as sink:
        for first in range(0, segments, 100 * NODES_PER_VIDEO):
            rows = []
            for video in range(
                first // NODES_PER_VIDEO, min(segments, first + 100 * NODES_PER_VIDEO) // NODES_PER_VIDEO
            ):
                at = video * NODES_PER_VIDEO
                texts = [
                    vocabulary[r] + (f" number {at + i}" if tails[at + i] else "")
                    for i, r in enumerate(ranks[at : at + NODES_PER_VIDEO])
                ]
                rows.append(
                    {
                        "video_uid": f"v{video}",
                        "nodes": [
                            {
                                "node_id": f"n{i}",
                                "level": 1,
                                "start": 4.0 * i,
                                "end": 4.0 * i + 4.0,
                                "gpt": {"action": {"brief": text}},
                            }
                            for i, text in enumerate(texts)
                        ],
                    }
                )
            sink.write_table(pa.Table.from_pylist(rows, schema))


def measure(path: str, out: str, k: int, queue: Any) -> None:
    """In a process of its own: the whole sample, timed, and this process's peak memory."""
    from action100m.sampling import SampleSettings, sample

    started = time.perf_counter()
    report = sample([path], Path(out), SampleSettings(ks=(k,), seed=0))
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    queue.put(
        {"segments": report["segments"], "unique_texts": report["unique_texts"], "wall_s": wall, "peak_rss_mib": peak}
    )


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000], help="segments per dataset")
    p.add_argument("--k", type=int, default=1000)
    args = p.parse_args()
    rows = []
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"d{size}.parquet"
            write_dataset(path, size)
            queue = context.Queue()
            child = context.Process(target=measure, args=(str(path), str(Path(tmp) / f"out{size}"), args.k, queue))
            child.start()
            row = queue.get()
            child.join()
            rows.append({**row, "k": args.k, "segments_per_s": row["segments"] / row["wall_s"]})
    base = rows[0]
    for row in rows:
        row["wall_over_first"] = row["wall_s"] / base["wall_s"]
        row["segments_over_first"] = row["segments"] / base["segments"]
    emit(
        rows, args.json, [f"{os.cpu_count()} CPUs; WordLlama embeddings, faiss k-means (25 iterations), semantic draws"]
    )


if __name__ == "__main__":
    main()
