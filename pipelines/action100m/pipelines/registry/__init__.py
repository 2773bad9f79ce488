"""The stage registry: everything the pipeline knows about each stage and its service, in one place.

The DAG, the executor, the one-machine run (its services, their Python environments, GPUs and
start order), the memory plan, the preflight checks and the CLI all read `STAGES`; a service's
name is written only in its entry. Adding a stage means adding its service, a module here with
its entry, and that entry in `STAGES` (in pipeline order: a stage comes after those it reads).
"""

from __future__ import annotations

from .caption import CAPTION
from .embed import EMBED
from .refine import REFINE
from .segment import SEGMENT
from .stage import Stage, chart_fullname
from .transcribe import TRANSCRIBE

STAGES: tuple[Stage, ...] = (TRANSCRIBE, EMBED, SEGMENT, CAPTION, REFINE)
BY_NAME: dict[str, Stage] = {spec.name: spec for spec in STAGES}
BY_SERVICE: dict[str, Stage] = {spec.service: spec for spec in STAGES}
FINAL = STAGES[-1]


def upstream_of(spec: Stage) -> set[str]:
    """The stages whose artifacts `spec` depends on, directly or through others."""
    found: set[str] = set()
    todo = list(spec.reads)
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(stage(name).reads)
    return found


def follows(spec: Stage) -> list[str]:
    """The stages whose tasks a stage's task waits for: those it reads but not those already
    upstream of another it reads (refine follows caption and transcribe; segment comes with caption)."""
    through = {name for read in spec.reads for name in upstream_of(stage(read))}
    return [name for name in spec.reads if name not in through]


def last_stages() -> list[str]:
    """The stages no other stage reads (what the export waits for): their states hold every stage's."""
    read = {name for spec in STAGES for name in upstream_of(spec)}
    return [spec.name for spec in STAGES if spec.name not in read]


def stage(name: str) -> Stage:
    """A stage by its stage name ("embed") or its service's name ("embedder")."""
    found = BY_NAME.get(name) or BY_SERVICE.get(name)
    if found is None:
        raise ValueError(f"unknown stage {name!r} (expected one of {', '.join(BY_NAME)})")
    return found


__all__ = [
    "BY_NAME",
    "BY_SERVICE",
    "FINAL",
    "STAGES",
    "Stage",
    "chart_fullname",
    "follows",
    "last_stages",
    "stage",
    "upstream_of",
]
