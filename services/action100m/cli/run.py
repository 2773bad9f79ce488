"""`a100m run`: annotate videos on this machine (see `action100m.pipelines.local`).

Its options are `RunSettings`'s fields (pipelines/local/settings.py), each with its flag there, and
one per optional stage of the registry (`--transcribe`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .presets_help import PRESETS_HELP


def register(commands: Any) -> None:
    from action100m.pipelines.local.settings import add_arguments

    run = commands.add_parser(
        "run",
        help="annotate videos on this machine: the services on loopback, the DAG through kfp.local",
        description="The main job on one machine. Starts the services on loopback (the refiner in "
        ".venv-vllm), runs the same KFP pipeline through kfp.local with a local artifact store (or --store "
        "s3://...), shows progress, and writes parquet in the release format under OUT/dataset.",
        epilog=PRESETS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "inputs",
        nargs="*",
        metavar="VIDEO_FOLDER_OR_MANIFEST",
        help="video files, folders of them (--recursive for their subfolders), or one manifest (.jsonl, a "
        ".json array, .parquet or .csv with video_uid and uri columns; a uri may be a path, absolute or "
        "relative to the manifest's folder)",
    )
    run.add_argument("--out", required=True, help="output folder (dataset/, artifacts/, logs/, models/)")
    add_arguments(run)
    run.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    from action100m.pipelines.local.run import run_main
    from action100m.pipelines.local.settings import RunSettings

    if not args.inputs and not args.start_from:
        print("error: give video files, a folder, a manifest, or --from DATASET", file=sys.stderr)
        return 2
    return run_main(args.inputs, args.out, RunSettings.from_args(args))
