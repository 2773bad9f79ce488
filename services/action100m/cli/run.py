"""`a100m run`: annotate videos on this machine (see `action100m.pipelines.local`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .presets_help import PRESETS_HELP


def register(commands: Any) -> None:
    from action100m.pipelines.local.presets import PRESETS
    from action100m.pipelines.local.schedule import SCHEDULES
    from action100m.pipelines.plan import TRANSCRIBE_MODES

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
        metavar="VIDEO_OR_MANIFEST",
        help="video files, or one manifest (.jsonl, a .json array, .parquet or .csv with video_uid and uri columns)",
    )
    _start_from_arguments(run)
    run.add_argument("--out", required=True, help="output folder (dataset/, artifacts/, logs/, models/)")
    run.add_argument(
        "--preset",
        default="tiny",
        choices=PRESETS,
        help="models: tiny random ones built offline (default), single-gpu or the paper's (see below)",
    )
    run.add_argument("--store", default=None, help="artifact prefix, e.g. s3://bucket/run (default: OUT/artifacts)")
    run.add_argument("--models", default=None, help="where the tiny models are (default: OUT/models)")
    run.add_argument("--shard-size", type=int, default=16, help="videos per shard (default 16)")
    run.add_argument("--parallelism", type=int, default=2, help="shards in flight (default 2)")
    run.add_argument(
        "--refiner-python",
        default=None,
        metavar="PYTHON",
        help="the Python of the refiner's vLLM environment (default: A100M_REFINER_PYTHON, else the "
        ".venv-vllm that `make env` made beside this environment or in the project)",
    )
    run.add_argument(
        "--allowed-roots",
        default=None,
        metavar="ROOTS",
        help="comma-separated folders or s3://bucket[/prefix] the manifest's videos may be read from (read "
        "only; default: the folders of the videos it names). A video outside them fails with the reason",
    )
    run.add_argument(
        "--schedule",
        default="auto",
        choices=SCHEDULES,
        help="all services at once, or one stage at a time (each service started, run over every shard, "
        "stopped); auto: what the memory plan says fits the GPUs (on a CPU: together)",
    )
    run.add_argument("--gpus", default=None, metavar="0,1,...", help="the GPUs this run may use (default: all visible)")
    run.add_argument(
        "--gpu-memory-gib", type=float, default=None, metavar="G", help="each GPU's memory (default: measured)"
    )
    run.add_argument(
        "--license",
        default="",
        metavar="ID",
        help="the dataset's license in its card, a Hub license id (e.g. cc-by-4.0; the release's own is "
        "fair-noncommercial-research-license; default: 'other', unstated)",
    )
    run.add_argument(
        "--transcribe",
        default="missing",
        choices=TRANSCRIBE_MODES,
        help="the videos the transcriber (Whisper) runs on: those without a transcript in the manifest or a "
        "subtitle file (default), all (its transcript replaces theirs), or none",
    )
    run.add_argument(
        "--services",
        default=None,
        metavar="STAGE=HOST:PORT,...",
        help="services already running (transcribe, embed, segment, caption, refine): used as they are; the "
        "others are started",
    )
    run.set_defaults(run=run_command)


def _start_from_arguments(run: argparse.ArgumentParser) -> None:
    """`--from`, `--stages`, `--videos`: a run that starts from datasets (pipelines/start_from.py)."""
    run.add_argument(
        "--from",
        dest="start_from",
        nargs="+",
        default=[],
        metavar="DATASET",
        help="start from datasets instead of videos: release files (parquet, JSON), dataset or run folders; "
        "their tree and captions are kept and only --stages run",
    )
    run.add_argument(
        "--stages",
        default="refine",
        metavar="refine|caption,refine",
        help="with --from: the stages that run (default refine: re-annotate the captions)",
    )
    run.add_argument(
        "--videos",
        default=None,
        metavar="DIR",
        help="with --from and --stages caption,refine: the videos' folder, files named by video_uid",
    )


def run_command(args: argparse.Namespace) -> int:
    from action100m.pipelines.local.context import RunSettings
    from action100m.pipelines.local.run import run_main
    from action100m.pipelines.local.schedule import parse_services

    try:
        services = parse_services(args.services)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = RunSettings(
        preset=args.preset,
        store_root=args.store,
        shard_size=args.shard_size,
        parallelism=args.parallelism,
        models_dir=args.models,
        vllm_python=args.refiner_python,
        allowed_roots=args.allowed_roots,
        schedule=args.schedule,
        gpus=args.gpus,
        gpu_memory_gib=args.gpu_memory_gib,
        services=services,
        license=args.license,
        start_from=args.start_from,
        stages=[name.strip() for name in args.stages.split(",") if name.strip()],
        videos_dir=args.videos,
        transcribe=args.transcribe,
    )
    if not args.inputs and not args.start_from:
        print("error: give video files, a manifest, or --from DATASET", file=sys.stderr)
        return 2
    return run_main(args.inputs, args.out, settings)
