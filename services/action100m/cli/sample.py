"""`a100m sample DATASET... --out DIR`: a training set, as the paper makes one (action100m.sampling)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    from action100m.sampling.resample import STRATEGIES
    from action100m.sampling.segments import TEXT_FIELDS

    sample = commands.add_parser(
        "sample",
        help="a training set from datasets: exact dedup, semantic clusters, balanced resampling (paper Sec. 5.4)",
        description="Reads the segments' FIELD from the datasets (release files or folders, ours or the "
        "release's), groups identical texts (case, whitespace and trailing punctuation aside), embeds the "
        "unique ones, clusters them with k-means, and draws: every segment once (none), one per group "
        "(dedup), or clusters uniformly then a member (semantic, the paper's). Writes DIR/samples-kK.parquet "
        "per k, report.json and a card section README.md.",
    )
    sample.add_argument("datasets", nargs="+", metavar="DATASET", help="release files, or folders of them")
    sample.add_argument("--out", required=True, help="the output folder")
    sample.add_argument(
        "--field", default="gpt.action.brief", choices=TEXT_FIELDS, help="the text sampled (default gpt.action.brief)"
    )
    sample.add_argument("--k", type=int, action="append", help="clusters (repeat for several; default 1000)")
    sample.add_argument(
        "--strategy", default="semantic", choices=STRATEGIES, help="the paper's three arms (default semantic)"
    )
    sample.add_argument("--size", type=int, default=None, help="draws with semantic (default: the unique texts)")
    sample.add_argument("--seed", type=int, default=0, help="seed of the k-means and of the draws (default 0)")
    sample.add_argument(
        "--embedder",
        default="wordllama",
        help="wordllama (static embeddings inside the package, offline; default) or a sentence-transformers "
        "model, e.g. google/embeddinggemma-300m (the paper's)",
    )
    sample.add_argument("--levels", default="", help="tree levels kept, e.g. 1,2,3 (default all)")
    sample.add_argument("--min-seconds", type=float, default=0.0, help="shortest segment kept")
    sample.add_argument("--max-seconds", type=float, default=float("inf"), help="longest segment kept")
    sample.add_argument("--keep-na", action="store_true", help='keep "N/A" actions (left out by default)')
    sample.add_argument("--cache", default=None, help="embeddings kept here between runs (default DIR/.embeddings)")
    sample.add_argument("--plot", action="store_true", help="cluster sizes before and after, as PNG")
    sample.set_defaults(run=sample_command)


def sample_command(args: argparse.Namespace) -> int:
    from action100m.sampling import SampleSettings, SegmentFilter, sample

    out = Path(args.out)
    try:
        levels = tuple(int(level) for level in args.levels.split(",") if level.strip())
        settings = SampleSettings(
            chosen=SegmentFilter(args.field, levels, args.min_seconds, args.max_seconds, args.keep_na),
            ks=tuple(args.k or [1000]),
            strategy=args.strategy,
            size=args.size,
            seed=args.seed,
            embedder=args.embedder,
            cache=Path(args.cache) if args.cache else out / ".embeddings",
        )
        report = sample(args.datasets, out, settings, plot=args.plot)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for k, figures in report["k"].items():
        print(
            f"k={k}: {figures['rows']} segments ({figures['draws']} draws) of {report['segments']} "
            f"({report['unique_texts']} unique texts): {out / f'samples-k{k}.parquet'}"
        )
    print(f"report: {out / 'report.json'}; card section: {out / 'README.md'}")
    return 0
