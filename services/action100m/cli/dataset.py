"""`a100m validate`, `a100m stats` and `a100m compare`: check release files, the figures of a dataset,
and how close two datasets are node by node."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from action100m.common import paper


def register(commands: Any) -> None:
    validate = commands.add_parser(
        "validate",
        help="check release files (parquet or JSON) against the release's schema, tree rules and ids",
        description="Checks each file against the release's Arrow schema and every video against the "
        "Action100M tree rules, and prints each problem with its file, video and node. Node ids that do "
        "not follow the release's recipe are warnings (errors with --strict-ids). Exits 1 if any problem is found.",
    )
    validate.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="a .parquet or .json file in the release layout, or a dataset folder (its data/, or an `a100m run` output)",
    )
    validate.add_argument(
        "--min-leaf-seconds",
        type=float,
        default=paper.MIN_LEAF_SECONDS,
        help=f"shortest allowed leaf (default {paper.MIN_LEAF_SECONDS})",
    )
    validate.add_argument(
        "--min-gpt-seconds",
        type=float,
        default=paper.MIN_ANNOTATED_SECONDS,
        help=f"shortest node with a gpt annotation (default {paper.MIN_ANNOTATED_SECONDS})",
    )
    validate.add_argument(
        "--strict-ids",
        action="store_true",
        help="node ids that do not follow the release's recipe are errors (default: warnings)",
    )
    validate.set_defaults(run=validate_command)

    stats = commands.add_parser(
        "stats",
        help="the figures of a dataset's trees and texts, beside a reference (the release)",
        description="Prints the figures that characterise an Action100M dataset (videos, hours, nodes and "
        "leaves per video-minute, depth, leaf durations, node duration shares, tubelet-aligned boundaries, gpt "
        "coverage, words per text field), one column per DATASET and, with --against, one for the reference.",
    )
    stats.add_argument("datasets", nargs="+", metavar="DATASET", help="a release file, or a folder of them")
    stats.add_argument("--against", nargs="+", metavar="RELEASE", default=[], help="the reference's files or folders")
    stats.add_argument(
        "--fps",
        type=float,
        default=None,
        help="the videos' frame rate when known (default: read from --videos, else inferred per video from its "
        "boundaries; grid figures are withheld when too few boundaries fit the inferred rate)",
    )
    stats.add_argument(
        "--videos",
        default=None,
        metavar="DIR",
        help="the video files, matched by file stem: their frame rates are read",
    )
    stats.add_argument("--json", action="store_true", help='print {"rows": [...]} instead of the table')
    stats.set_defaults(run=stats_command)

    compare = commands.add_parser(
        "compare",
        help="how close dataset B comes to dataset A, node by node (chrF, exact matches, coverage)",
        description="Matches nodes by video_uid and node_id and prints, per text field: the share of nodes "
        "that have it in A and in B, where both do the share that is identical, the mean chrF (1.0 for "
        "identical texts) and B's length over A's; the same per tree level and per duration band; the nodes "
        "that differ most; and how the trees differ (nodes only in one, boundaries that moved).",
    )
    compare.add_argument("a", metavar="A", help="a release file, or a folder of them (the reference)")
    compare.add_argument("b", metavar="B", help="a release file, or a folder of them")
    compare.add_argument(
        "--fields", default=None, help="comma-separated fields (default: the three captions and five gpt fields)"
    )
    compare.add_argument("--most-different", type=int, default=10, metavar="N", help="nodes listed (default 10)")
    compare.add_argument("--json", action="store_true", help="print the figures as JSON")
    compare.set_defaults(run=compare_command)


def validate_command(args: argparse.Namespace) -> int:
    from action100m.common.release.files import dataset_files
    from action100m.common.release.validate import Validation, validate_file

    try:  # a folder (a dataset, an `a100m run` output) stands for its release files
        paths = [path for location in args.files for path in dataset_files(location)]
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = Validation()
    for path in paths:
        for problem in validate_file(path, result, args.min_leaf_seconds, args.min_gpt_seconds, args.strict_ids):
            print(problem)
    verdict = "OK" if result.problems == 0 else f"{result.problems} problem(s)"
    if result.warnings:
        verdict += f", {result.warnings} warning(s)"
    print(f"checked {result.videos} video(s) in {result.files} file(s): {verdict}", file=sys.stderr)
    return 0 if result.problems == 0 else 1


def stats_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from action100m.common.release import iter_dataset
    from action100m.common.release.stats import dataset_figures, figures_rows, figures_table, frame_rates_in

    columns = {}
    try:  # one file in memory at a time, however large the dataset
        fps_of = frame_rates_in(Path(args.videos)) if args.videos else None
        for location in args.datasets:
            columns[Path(location).name or location] = dataset_figures(iter_dataset(location), args.fps, fps_of)
        if args.against:
            reference = (row for location in args.against for row in iter_dataset(location))
            columns["reference"] = dataset_figures(reference)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"rows": figures_rows(columns)}, indent=1))
    else:
        print(figures_table(columns))
    return 0


def compare_command(args: argparse.Namespace) -> int:
    from action100m.common.release.compare import FIELDS, compare_pairs, format_comparison
    from action100m.common.release.files import each_file
    from action100m.viewer.rows import RowReader

    fields = tuple(f.strip() for f in args.fields.split(",") if f.strip()) if args.fields else FIELDS
    try:
        # summaries first (parquet: a few columns), then one video of each at a time, read by row group
        reader = RowReader()
        videos_a = {v.uid: v for v in each_file(args.a, reader.videos)}
        videos_b = {v.uid: v for v in each_file(args.b, reader.videos)}
        common = [uid for uid in videos_a if uid in videos_b]
        if not common:
            counted = [f"{len(v)} video{'' if len(v) == 1 else 's'}" for v in (videos_a, videos_b)]
            raise ValueError(
                f"{args.a} ({counted[0]}) and {args.b} ({counted[1]}) have no video in common: nothing to compare"
            )
        pairs = ((videos_a[uid].read_row(), videos_b[uid].read_row()) for uid in common)
        only_a, only_b = len(videos_a.keys() - videos_b.keys()), len(videos_b.keys() - videos_a.keys())
        comparison = compare_pairs(pairs, only_a, only_b, fields, args.most_different)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from action100m.pipelines.choices import choices_table, dataset_choices

    choices = {"a": dataset_choices(args.a), "b": dataset_choices(args.b)}
    if args.json:
        print(json.dumps({"choices": choices, **comparison.to_dict()}, indent=1, ensure_ascii=False))
    else:
        print(choices_table(choices["a"], choices["b"], "A", "B"))
        print(format_comparison(comparison, fields, args.a, args.b))
    return 0
