"""`a100m`: the command line of action100m.

One module per feature, each with `register(commands)` adding its subcommand(s); a subcommand
imports what it needs when it runs, so `a100m --help` is instant and a service image without
(say) torch still runs the subcommands that do not need it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from action100m.common.version import __version__

from . import dataset, models, pipeline, plan, push, refiner, run, sample, serve, view

FEATURES = (dataset, run, plan, serve, view, push, sample, pipeline, refiner, models)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="a100m", description="Turn a collection of videos into an Action100M-style dataset."
    )
    parser.add_argument("--version", action="version", version=f"action100m {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for feature in FEATURES:
        feature.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    command: Callable[[argparse.Namespace], int] = args.run
    try:
        return command(args)
    except BrokenPipeError:  # `a100m stats ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
