"""`a100m models build-tiny|fetch|check` and `a100m sample-videos`: the models and videos to run with."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    models = commands.add_parser("models", help="model utilities", description="Model utilities.")
    model_commands = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    tiny = model_commands.add_parser(
        "build-tiny",
        help="write random-weight tiny models of the five architectures the services load",
        description="Writes tiny random-weight VJEPA2, Perception-LM, Mllama, GPT-OSS and Whisper models with their "
        "processors/tokenizers under DIR, offline, for tests and the offline demo (the `tiny` preset).",
    )
    tiny.add_argument("dir", metavar="DIR", help="output folder (one sub-folder per model)")
    tiny.add_argument("--seed", type=int, default=0, help="random seed of the weights (default 0)")
    tiny.set_defaults(run=build_tiny_command)
    fetch = model_commands.add_parser(
        "fetch",
        help="download a preset's (or the named) models into a Hugging Face cache, resumably",
        description="Downloads the weights the services will load into HF_HOME-style folder DIR (DIR/hub), "
        "skipping what is there and resuming partial files; the token comes from HF_TOKEN. Then start the "
        "services with HF_HOME=DIR and HF_HUB_OFFLINE=1. The chart runs this as a Job on its model cache.",
    )
    fetch.add_argument("dir", metavar="DIR", help="the Hugging Face home (the services' HF_HOME)")
    fetch.add_argument("--preset", default=None, choices=("single-gpu", "paper"), help="the models of a preset")
    fetch.add_argument("--model", action="append", default=[], metavar="ID", help="a hub id (repeatable)")
    fetch.set_defaults(run=fetch_command)

    check = model_commands.add_parser(
        "check",
        help="render each stage's request through a model folder and compare it with the published format",
        description="For the model in DIR (or each model folder under it, e.g. `build-tiny`'s output): the request "
        "of a sample segment as its stage renders it, its token count, the control tokens in it, the processor's "
        "tiles/frames/crops, and what differs from the published model. Exit 1 on a format mismatch (control tokens, "
        "tokenizer, turn structure); other settings (sizes) are listed as differences. Run it first on a GPU box.",
    )
    check.add_argument("dir", metavar="DIR", help="a model folder, or a folder of model folders")
    check.add_argument("--no-request", action="store_true", help="leave the rendered requests out of the report")
    check.set_defaults(run=check_command)

    samples = commands.add_parser(
        "sample-videos",
        help="write three short synthetic videos with scene cuts (for the offline demo)",
        description="Writes three synthetic videos (h264, 25 fps, 320x180, 10-15 s) with known scene cuts.",
    )
    samples.add_argument("dir", metavar="DIR")
    samples.set_defaults(run=sample_videos_command)


def build_tiny_command(args: argparse.Namespace) -> int:
    from action100m.devtools.tiny_models import build_tiny_models

    paths = build_tiny_models(args.dir, seed=args.seed)
    for role, path in paths.items():
        print(f"{role}: {path}")
    return 0


def check_command(args: argparse.Namespace) -> int:
    from action100m.devtools.model_check import check_models, print_reports

    try:
        reports = check_models(args.dir)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print_reports(reports, show_request=not args.no_request)
    mismatched = [r.model for r in reports if r.mismatched]
    print(
        f"{len(reports)} model(s) checked; format mismatch in {len(mismatched)}"
        + (f": {', '.join(mismatched)}" if mismatched else "")
    )
    return 1 if mismatched else 0


def fetch_command(args: argparse.Namespace) -> int:
    from action100m.devtools.model_fetch import FetchError, fetch_models
    from action100m.pipelines.local.preflight import configured_models, environment
    from action100m.pipelines.local.presets import preset_env

    models = list(args.model)
    if args.preset:
        by_service = configured_models(environment(preset_env(args.preset, Path(args.dir))))
        models += [model for names in by_service.values() for model in names]
    if not models:
        print("error: name the models: --preset single-gpu|paper, or --model ID (repeatable)", file=sys.stderr)
        return 2
    try:
        for found in fetch_models(models, Path(args.dir)):
            print(f"{found.model}: {found.bytes / 1024**3:.2f} GiB in {found.path}", flush=True)
    except FetchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def sample_videos_command(args: argparse.Namespace) -> int:
    from action100m.devtools.synthetic_video import write_video

    folder = Path(args.dir)
    samples = {"kitchen": (360, (0, 120, 250)), "workshop": (300, (0, 150)), "garden": (240, (0, 80, 160))}
    for name, (frames, scenes) in samples.items():
        print(write_video(folder / f"{name}.mp4", frames=frames, fps=25, size=(320, 180), scene_starts=scenes))
    return 0
