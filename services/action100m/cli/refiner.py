"""`a100m refiner render-prompt`: the exact first-round messages the refiner sends for one node."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any


def register(commands: Any) -> None:
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
    render.add_argument(
        "--tokenizer",
        default=os.environ.get("A100M_REFINER_MODEL", "openai/gpt-oss-120b"),
        help="tokenizer (hub id or dir) that counts the budget (default: A100M_REFINER_MODEL)",
    )
    render.add_argument("--budget", type=int, default=6000, help="token budget of the subtree (default 6000)")
    render.add_argument(
        "--templates",
        default=os.environ.get("A100M_REFINER_TEMPLATES"),
        help="YAML file replacing templates (default: A100M_REFINER_TEMPLATES)",
    )
    render.add_argument(
        "--prompt",
        default=os.environ.get("A100M_REFINER_PROMPT", "ours"),
        metavar="PROFILE",
        help="'ours', or 'official:DIR' with DIR a checkout of facebookresearch/Action100M (default: "
        "A100M_REFINER_PROMPT, else ours)",
    )
    render.add_argument("--json", action="store_true", help="print the messages as JSON")
    render.set_defaults(run=render_prompt_command)


class TokenizerUnavailable(RuntimeError):
    """The tokenizer could not be loaded (not downloaded and the Hub out of reach, a wrong name)."""


def lazy_token_counter(name: str) -> Callable[[str], int]:
    """Counts tokens with `name`'s tokenizer, loaded on the first count (so a node that does not
    exist is said before any download): from the local cache first, then the Hub."""
    loaded: list[Any] = []

    def count(text: str) -> int:
        if not loaded:
            from transformers import AutoTokenizer

            try:
                loaded.append(AutoTokenizer.from_pretrained(name, local_files_only=True))
            except OSError:
                try:
                    loaded.append(AutoTokenizer.from_pretrained(name))
                except OSError as error:
                    raise TokenizerUnavailable(
                        f"cannot load the tokenizer {name!r} ({str(error).splitlines()[0][:200]}); "
                        "give a local one with --tokenizer DIR"
                    ) from None
        return len(loaded[0](text, add_special_tokens=False)["input_ids"])

    return count


def render_prompt_command(args: argparse.Namespace) -> int:
    from action100m.refiner.prompts import PromptLimits
    from action100m.refiner.render import print_messages, render_prompt

    count = lazy_token_counter(args.tokenizer)
    limits = PromptLimits(subtree_token_budget=args.budget)
    try:
        messages = render_prompt(args.file, args.video_uid, args.node_id, count, limits, args.templates, args.prompt)
    except KeyError as err:
        print(err.args[0], file=sys.stderr)
        return 1
    except (ValueError, TokenizerUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print_messages(messages, args.json)
    return 0
