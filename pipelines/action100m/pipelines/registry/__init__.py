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

STAGES: tuple[Stage, ...] = (EMBED, SEGMENT, CAPTION, REFINE)
BY_NAME: dict[str, Stage] = {spec.name: spec for spec in STAGES}
BY_SERVICE: dict[str, Stage] = {spec.service: spec for spec in STAGES}
FINAL = STAGES[-1]


def stage(name: str) -> Stage:
    """A stage by its stage name ("embed") or its service's name ("embedder")."""
    found = BY_NAME.get(name) or BY_SERVICE.get(name)
    if found is None:
        raise ValueError(f"unknown stage {name!r} (expected one of {', '.join(BY_NAME)})")
    return found


__all__ = ["BY_NAME", "BY_SERVICE", "FINAL", "STAGES", "Stage", "chart_fullname", "stage"]
