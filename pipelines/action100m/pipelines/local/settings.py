"""`RunSettings`: a one-machine run's arguments, defined once.

Each field says, beside its default, how `a100m run` takes it (its flag, help and parsing) and
whether it shapes the dataset. `add_arguments` derives the command line from the fields,
`RunSettings.from_args` reads it back, and `output_arguments` is what the rerun key hashes (the
fields that shape the dataset: change one alone and a rerun recomputes rather than saying "nothing
to do"). The optional stages' modes (`--transcribe`) come from their registry entries.
A field that does not shape the dataset (where the services run, how many shards at once) says so.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from ..arguments import add_mode_flags, modes_from_flags
from ..registry import ANNOTATIONS, default_modes, stage
from .presets import PRESETS
from .schedule import SCHEDULES, parse_services

HANG_SECONDS_BOUNDS = (10.0, 86400.0)


@dataclass(frozen=True)
class Flag:
    """How a field is given on the command line, and whether it shapes the dataset."""

    names: tuple[str, ...]
    help: str
    shapes_output: bool
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    nargs: str | None = None
    # the flag's text -> the field's value (argparse's `type`, or a parser applied after argparse)
    parse: Callable[[str], Any] | None = None


def setting(default: Any, *names: str, help: str, shapes_output: bool, **flag: Any) -> Any:
    """A RunSettings field with its flag (no names: not on the command line)."""
    meta = {"flag": Flag(names, help, shapes_output, **flag)}
    if callable(default):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


def hang_seconds(text: str) -> float:
    low, high = HANG_SECONDS_BOUNDS
    value = float(text)
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be in [{low:.0f}, {high:.0f}] seconds, got {text}")
    return value


def stage_list(text: str) -> list[str]:
    return [stage(name.strip()).name for name in text.split(",") if name.strip()]


@dataclass(frozen=True)
class RunSettings:
    """`a100m run`'s options beyond the inputs and the output folder."""

    preset: str = setting(
        "tiny",
        "--preset",
        choices=PRESETS,
        shapes_output=True,
        help="models: tiny random ones built offline (default), single-gpu or the paper's (see below)",
    )
    store_root: str | None = setting(
        None,
        "--store",
        shapes_output=False,  # where the artifacts are kept, not what they hold
        help="artifact prefix, e.g. s3://bucket/run (default: OUT/artifacts)",
    )
    shard_size: int = setting(16, "--shard-size", parse=int, shapes_output=True, help="videos per shard (default 16)")
    parallelism: int = setting(2, "--parallelism", parse=int, shapes_output=False, help="shards in flight (default 2)")
    models_dir: str | None = setting(
        None, "--models", shapes_output=True, help="where the tiny models are (default: OUT/models)"
    )
    vllm_python: str | None = setting(
        None,
        "--refiner-python",
        metavar="PYTHON",
        shapes_output=False,
        help="the Python of the refiner's vLLM environment (default: A100M_REFINER_PYTHON, else the "
        ".venv-vllm that `make env` made beside this environment or in the project)",
    )
    allowed_roots: str | None = setting(
        None,
        "--allowed-roots",
        metavar="ROOTS",
        shapes_output=True,  # which videos may be read, so which fail
        help="comma-separated folders or s3://bucket[/prefix] the manifest's videos may be read from (read "
        "only; default: the folders of the videos it names). A video outside them fails with the reason",
    )
    recursive: bool = setting(
        False,
        "--recursive",
        shapes_output=True,
        help="with a folder as input: its subfolders' videos too (default: the folder's own files)",
    )
    schedule: str = setting(
        "auto",
        "--schedule",
        choices=SCHEDULES,
        shapes_output=False,  # the same dataset byte for byte (tests/pipelines/local/test_run.py)
        help="all services at once, or one stage at a time (each service started, run over every shard, "
        "stopped); auto: what the memory plan says fits the GPUs (on a CPU: together)",
    )
    gpus: str | None = setting(
        None, "--gpus", metavar="0,1,...", shapes_output=False, help="the GPUs this run may use (default: all visible)"
    )
    gpu_memory_gib: float | None = setting(
        None,
        "--gpu-memory-gib",
        parse=float,
        metavar="G",
        shapes_output=False,
        help="each GPU's memory (default: measured)",
    )
    services: dict[str, str] = setting(
        dict,
        "--services",
        metavar="STAGE=HOST:PORT,...",
        parse=parse_services,
        shapes_output=True,  # a service elsewhere may load other models
        help="services already running (transcribe, embed, segment, caption, refine): used as they are; the "
        "others are started",
    )
    start_from: list[str] = setting(
        list,
        "--from",
        nargs="+",
        metavar="DATASET",
        shapes_output=True,
        help="start from datasets instead of videos: release files (parquet, JSON), dataset or run folders; "
        "their tree and captions are kept and only --stages run",
    )
    stages: list[str] = setting(
        lambda: [ANNOTATIONS.name],
        "--stages",
        metavar="refine|caption,refine",
        parse=stage_list,
        shapes_output=True,
        help="with --from: the stages that run (default refine: re-annotate the captions)",
    )
    videos_dir: str | None = setting(
        None,
        "--videos",
        metavar="DIR",
        shapes_output=True,
        help="with --from and --stages caption,refine: the videos' folder, files named by video_uid",
    )
    license: str = setting(
        "",
        "--license",
        metavar="ID",
        shapes_output=True,  # the card's
        help="the dataset's license in its card, a Hub license id (e.g. cc-by-4.0; the release's own is "
        "fair-noncommercial-research-license; default: 'other', unstated)",
    )
    # optional stage -> the videos it runs on (its registry entry's mode: `--transcribe missing`)
    modes: dict[str, str] = setting(default_modes, shapes_output=True, help="")
    hang_seconds: float = setting(
        300.0,
        "--hang-seconds",
        parse=hang_seconds,
        metavar="S",
        shapes_output=False,
        help="a service that neither answers its health check nor uses any CPU for this long is taken as "
        "hung, killed and restarted once (default 300; a busy service is never killed)",
    )
    # the CLI's process environment (read once; the services' settings come from it)
    env: Mapping[str, str] = setting(lambda: dict(os.environ), shapes_output=True, help="")

    def output_arguments(self) -> dict[str, Any]:
        """The fields that shape the dataset (the environment enters the key as the services'
        settings, see `record.run_key`)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if _flag(f).shapes_output and f.name != "env"}

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunSettings:
        """The settings of a command line parsed by a parser `add_arguments` built."""
        values = {f.name: getattr(args, f.name) for f in fields(cls) if _flag(f).names}
        values["modes"] = modes_from_flags(args)
        return cls(**values)


def _flag(item: Field[Any]) -> Flag:
    flag: Flag = item.metadata["flag"]
    return flag


def _said(parse: Callable[[str], Any] | None) -> Callable[[str], Any] | None:
    """A parser whose ValueError argparse prints as it is (not "invalid value")."""
    if parse is None:
        return None

    def parsed(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parsed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`a100m run`'s options, one per RunSettings field that has a flag, then one per optional stage."""
    for item in fields(RunSettings):
        flag = _flag(item)
        if not flag.names:
            continue
        default = item.default_factory() if item.default_factory is not MISSING else item.default
        kwargs: dict[str, Any] = {"dest": item.name, "default": default, "help": flag.help}
        if isinstance(default, bool):
            kwargs["action"] = "store_true"
        else:
            kwargs.update(metavar=flag.metavar, choices=flag.choices, nargs=flag.nargs, type=_said(flag.parse))
        parser.add_argument(*flag.names, **{k: v for k, v in kwargs.items() if v is not None})
    add_mode_flags(parser)
