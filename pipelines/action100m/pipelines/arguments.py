"""`PipelineArguments`: the DAG's parameters as one typed value.

`a100m run` (through kfp.local) and `a100m pipeline submit` (on a cluster) both build one and pass
`parameters()` to the pipeline; `tests/pipelines/test_dag.py` holds its fields against the DAG
function's parameters, so neither side can forget one.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from typing import Any

from .registry import OPTIONAL, default_modes


@dataclass(frozen=True)
class PipelineArguments:
    videos: str  # a manifest or prefix of videos (with start_from: the videos' folder, "" when none is read)
    artifact_prefix: str
    output_prefix: str
    addresses: dict[str, str]  # stage -> its service's address (the stages that run)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> its Options fields
    shard_size: int = 16
    run: str = ""  # the run's id (default: KFP's job id)
    overwrite: bool = False
    card: dict[str, str] = field(default_factory=dict)  # the dataset card's license and notice (card.CardFacts)
    start_from: dict[str, Any] = field(default_factory=dict)  # datasets and the stages that run (start_from.StartFrom)
    modes: dict[str, str] = field(default_factory=default_modes)  # optional stage -> the videos it runs on
    # publish only while this run holds the dataset folder (export.claim_output): the one-machine run,
    # whose output folder a newer run may take over after a kill
    claimed: bool = False

    def parameters(self) -> dict[str, Any]:
        """The pipeline function's keyword arguments."""
        return asdict(self)


def add_mode_flags(parser: argparse.ArgumentParser) -> None:
    """A flag per optional stage of the registry, named after it (`--transcribe missing`): the videos it runs on."""
    for spec in OPTIONAL:
        assert spec.mode is not None
        parser.add_argument(
            f"--{spec.name}",
            dest=f"mode_{spec.name}",
            default=spec.mode.default,
            choices=spec.mode.choices,
            help=spec.mode.help,
        )


def modes_from_flags(args: argparse.Namespace) -> dict[str, str]:
    """The modes a parser `add_mode_flags` built was given (optional stage -> choice)."""
    return {spec.name: getattr(args, f"mode_{spec.name}") for spec in OPTIONAL}
