"""MkDocs hook: the reference pages made from the code at build time, so they cannot drift from it.

- `reference/cli.md`: every `a100m` command and option, from the CLI's own argparse parsers;
- `reference/settings.md`: every setting of every service, from their config dataclasses (the
  variable, the default, the bounds, and the comment written beside the field);
- `benchmarks.md` and `contributing.md`: `benchmarks/README.md` and `CONTRIBUTING.md` as they are.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[2]


def on_files(files: Files, config: Any) -> Files:
    pages = {
        "reference/cli.md": cli_page(),
        "reference/settings.md": settings_page(),
        "benchmarks.md": (REPO / "benchmarks" / "README.md").read_text(),
        "contributing.md": (REPO / "CONTRIBUTING.md").read_text(),
    }
    for path, text in pages.items():
        files.append(File.generated(config, path, content=text))
    return files


# -- the CLI ---------------------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _option_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        name = ", ".join(f"`{flag}`" for flag in action.option_strings) or f"`{action.metavar or action.dest}`"
        unset = action.default is None or action.default is argparse.SUPPRESS or action.default is False
        default = "" if unset or action.default in ([], "") else f"`{action.default}`"  # 0 is a default
        help_text = (action.help or "").replace("|", "\\|").replace("\n", " ")
        if "%(default)" in help_text:
            help_text = help_text.replace("%(default)s", str(action.default))
        rows.append(f"| {name} | {help_text} | {default} |")
    return rows


def _command_section(path: str, parser: argparse.ArgumentParser, depth: int) -> list[str]:
    lines = [f"{'#' * depth} `{path}`", ""]
    description = parser.description or ""
    if description:
        lines += [description, ""]
    usage = parser.format_usage().removeprefix("usage: ").strip()
    lines += ["```", usage, "```", ""]
    rows = _option_rows(parser)
    if rows:
        lines += ["| argument | meaning | default |", "|---|---|---|", *rows, ""]
    for name, child in _subcommands(parser).items():
        lines += _command_section(f"{path} {name}", child, min(depth + 1, 4))
    return lines


def cli_page() -> str:
    from action100m.cli import build_parser

    parser = build_parser()
    lines = [
        "# Command reference",
        "",
        "Every `a100m` command and option, made from the CLI's own parsers when this site is built "
        "(`a100m COMMAND --help` prints the same).",
        "",
    ]
    for name, child in _subcommands(parser).items():
        lines += _command_section(f"a100m {name}", child, 2)
    return "\n".join(lines) + "\n"


# -- the services' settings ------------------------------------------------------------------------


def _comments(cls: type) -> dict[str, str]:
    """field -> the comment written beside it in the source (on its line, or the lines above)."""
    found: dict[str, str] = {}
    above: list[str] = []
    for line in inspect.getsource(cls).splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# ").strip())
            continue
        match = re.match(r"(\w+)\s*:", stripped)
        if match:
            trailing = stripped.split("  # ", 1)[1] if "  # " in stripped else ""
            found[match.group(1)] = " ".join([*above, trailing]).strip()
        above = []
    return found


def _settings_table(cls: type) -> list[str]:
    from action100m.common.config import env_var

    comments = _comments(cls)
    rows = ["| variable | default | bounds | meaning |", "|---|---|---|---|"]
    for item in dataclasses.fields(cls):
        default = item.default if item.default is not dataclasses.MISSING else ""
        low, high = item.metadata.get("min"), item.metadata.get("max")
        bounds = (
            "" if low is None and high is None else f"{'' if low is None else low} .. {'' if high is None else high}"
        )
        meaning = comments.get(item.name, "").replace("|", "\\|")
        rows.append(f"| `{env_var(item)}` | `{default!r}` | {bounds} | {meaning} |")
    return rows


def settings_page() -> str:
    from action100m.captioner.service import CaptionerConfig
    from action100m.common.grpc_server import ServerSettings
    from action100m.embedder.service import EmbedderConfig
    from action100m.refiner.service import RefinerConfig
    from action100m.transcriber.service import TranscriberConfig

    sections = (
        ("Every service (the gRPC server)", ServerSettings),
        ("transcriber", TranscriberConfig),
        ("embedder", EmbedderConfig),
        ("captioner", CaptionerConfig),
        ("refiner", RefinerConfig),
    )
    lines = [
        "# Service settings",
        "",
        "Every setting a service reads from its environment (a ConfigMap or Secret in the chart), made "
        "from the services' config classes when this site is built: the variable, its default, its "
        "bounds (a value outside them stops the service at start, naming the variable) and the comment "
        "beside the field in the code. The storage settings (`A100M_ALLOWED_ROOTS`, `A100M_S3_ENDPOINT`, "
        "...) are in [Configuration](configuration.md); the segmenter has no settings of its own.",
        "",
    ]
    for title, cls in sections:
        lines += [f"## {title}", "", f"`{cls.__module__}.{cls.__name__}`", "", *_settings_table(cls), ""]
    return "\n".join(lines) + "\n"
