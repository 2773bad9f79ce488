"""`a100m`: the command line of action100m.

Each subcommand imports what it needs when it runs, so `a100m --help` is instant and a service
image without (say) torch still runs the subcommands that do not need it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Sequence

from . import __version__


def _cmd_validate(args: argparse.Namespace) -> int:
    from .common.release import check_video, read_rows

    total_videos = total_problems = 0
    for path in args.files:
        try:
            rows = read_rows(path)
        except (OSError, ValueError) as err:
            print(f"{path}: cannot read: {err}", file=sys.stderr)
            total_problems += 1
            continue
        for row in rows:
            total_videos += 1
            for violation in check_video(row, min_leaf_seconds=args.min_leaf_seconds, min_gpt_seconds=args.min_gpt_seconds):
                total_problems += 1
                print(f"{path}: {violation}")
    verdict = "OK" if total_problems == 0 else f"{total_problems} violation(s)"
    print(f"checked {total_videos} video(s) in {len(args.files)} file(s): {verdict}", file=sys.stderr)
    return 0 if total_problems == 0 else 1


def _cmd_build_tiny(args: argparse.Namespace) -> int:
    from .common.tiny_models import build_tiny_models

    paths = build_tiny_models(args.dir, seed=args.seed)
    for role, path in paths.items():
        print(f"{role}: {path}")
    return 0


SERVICES = ("embedder", "segmenter", "captioner", "refiner")


def _cmd_serve(args: argparse.Namespace) -> int:
    import importlib

    return importlib.import_module(f"action100m.{args.service}.service").serve_from_env()


def _cmd_render_prompt(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from .refiner.prompts import PromptLimits
    from .refiner.render import print_messages, render_prompt

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    limits = PromptLimits(subtree_token_budget=args.budget)
    try:
        messages = render_prompt(args.file, args.video_uid, args.node_id, count, limits, args.templates)
    except KeyError as err:
        print(err.args[0], file=sys.stderr)
        return 1
    print_messages(messages, args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="a100m", description="Turn a collection of videos into an Action100M-style dataset."
    )
    parser.add_argument("--version", action="version", version=f"action100m {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser(
        "validate",
        help="check release files (parquet or JSON) against the tree rules",
        description="Checks every video of each file against the Action100M tree rules and prints each "
        "violation with its video and node. Exits 1 if any is found.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="a .parquet file or a .json file in the release layout")
    validate.add_argument("--min-leaf-seconds", type=float, default=0.5, help="shortest allowed leaf (default 0.5)")
    validate.add_argument("--min-gpt-seconds", type=float, default=4.0, help="shortest node with a gpt annotation (default 4)")
    validate.set_defaults(run=_cmd_validate)

    serve = commands.add_parser(
        "serve",
        help="run one of the services (gRPC, health, metrics) until SIGTERM",
        description="Runs a stage service. Settings come from A100M_* environment variables "
        "(A100M_PORT, A100M_METRICS_PORT, A100M_ALLOWED_ROOTS, A100M_<SERVICE>_MODEL, ...; see README).",
    )
    serve.add_argument("service", choices=SERVICES, help="which service")
    serve.set_defaults(run=_cmd_serve)

    refiner = commands.add_parser("refiner", help="refiner utilities", description="Refiner utilities.")
    refiner_commands = refiner.add_subparsers(dest="refiner_command", metavar="COMMAND", required=True)
    render = refiner_commands.add_parser(
        "render-prompt",
        help="print the exact first-round messages the refiner sends for one node",
        description="Renders the refiner's request for one node of a release file (parquet or JSON): the "
        "shared head (task, metadata, whole-video tree) then the segment and its subtree, cut to the token "
        "budget with the model's tokenizer.",
    )
    render.add_argument("file", metavar="FILE", help="release file, parquet or JSON")
    render.add_argument("--video-uid", required=True)
    render.add_argument("--node-id", required=True)
    render.add_argument("--tokenizer", default=os.environ.get("A100M_REFINER_MODEL", "openai/gpt-oss-120b"),
                        help="tokenizer (hub id or dir) that counts the budget (default: A100M_REFINER_MODEL)")
    render.add_argument("--budget", type=int, default=6000, help="token budget of the subtree (default 6000)")
    render.add_argument("--templates", default=os.environ.get("A100M_REFINER_TEMPLATES"),
                        help="YAML file replacing templates (default: A100M_REFINER_TEMPLATES)")
    render.add_argument("--json", action="store_true", help="print the messages as JSON")
    render.set_defaults(run=_cmd_render_prompt)

    models = commands.add_parser("models", help="model utilities", description="Model utilities.")
    model_commands = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    tiny = model_commands.add_parser(
        "build-tiny",
        help="write random-weight tiny models of the four paper architectures",
        description="Writes tiny random-weight VJEPA2, Perception-LM, Mllama and GPT-OSS models with their "
        "processors/tokenizers under DIR, offline, for tests and the offline demo (the `tiny` preset).",
    )
    tiny.add_argument("dir", metavar="DIR", help="output folder (one sub-folder per model)")
    tiny.add_argument("--seed", type=int, default=0, help="random seed of the weights (default 0)")
    tiny.set_defaults(run=_cmd_build_tiny)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
