"""The stage registry: everything the pipeline knows about each stage and its service, in one place.

The DAG, the executor, the one-machine run (its services, their Python environments, GPUs and
start order), the memory plan, the preflight checks and the CLI all read `STAGES`; a service's
name is written only in its entry. Adding a stage means adding its service, a module here with
its entry, and that entry in `STAGES` (in pipeline order: a stage comes after those it reads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..state import StageConfig, VideoEntry
from .caption import CAPTION
from .embed import EMBED
from .refine import REFINE
from .segment import SEGMENT
from .stage import Stage, StageMode, chart_fullname
from .transcribe import TRANSCRIBE

STAGES: tuple[Stage, ...] = (TRANSCRIBE, EMBED, SEGMENT, CAPTION, REFINE)
BY_NAME: dict[str, Stage] = {spec.name: spec for spec in STAGES}
BY_SERVICE: dict[str, Stage] = {spec.service: spec for spec in STAGES}
FINAL = STAGES[-1]
# The stages whose artifacts make a release row's nodes: the tree (ids, times, levels), its captions
# and its annotations. The export reads them, and a run from a dataset imports the first two.
TREE, CAPTIONS, ANNOTATIONS = SEGMENT, CAPTION, REFINE
OPTIONAL: tuple[Stage, ...] = tuple(spec for spec in STAGES if spec.mode is not None)


def default_modes() -> dict[str, str]:
    """Each optional stage's default choice (stage name -> choice)."""
    return {spec.name: spec.mode.default for spec in OPTIONAL if spec.mode is not None}


def checked_modes(modes: Mapping[str, str] | None) -> dict[str, str]:
    """The run's choice for every optional stage (the defaults where `modes` says nothing); an
    unknown stage or choice raises ValueError naming it."""
    chosen = default_modes()
    for name, choice in (modes or {}).items():
        spec = stage(name)
        if spec.mode is None:
            raise ValueError(f"{spec.name} runs on every video: it takes no mode")
        chosen[spec.name] = spec.mode.check(spec.name, str(choice))
    return chosen


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


# A folder of the artifact store -> the URIs in it (one listing per stage, not a request per video)
Listing = Callable[[str], set[str]]


def stages_to_run(
    videos: Sequence[VideoEntry],
    requested: Sequence[str],
    known: Mapping[str, StageConfig],
    prefix: str,
    listing: Listing,
) -> list[str]:
    """The one answer to "what must run", in stage order: of the `requested` stages, those with a
    video to work on (not failed at plan, chosen by the stage's mode) that (a) has no artifact under
    the stage's `known` config (the config an earlier run published under, when nothing that shapes
    it changed), or (b) has no known config at all (its service must say its fingerprint), or
    (c) reads a stage that runs (its inputs may change). Every schedule, the memory plan, the
    preflight checks and the card use it; the stages not returned start no service."""
    running: list[str] = []
    fingerprints = {name: config.fingerprint for name, config in known.items()}
    for spec in STAGES:
        targets = [video for video in videos if not video.error and spec.runs_on(video)]
        if spec.name not in requested or not targets:
            continue
        config = known.get(spec.name)
        if config is None or not config.fingerprint or any(name in running for name in spec.reads):
            running.append(spec.name)
            continue
        wanted = [spec.artifact(prefix, fingerprints, video).rsplit("/", 1) for video in targets]
        present = {folder: {uri.rsplit("/", 1)[-1] for uri in listing(folder)} for folder in {f for f, _ in wanted}}
        if any(name not in present[folder] for folder, name in wanted):
            running.append(spec.name)
    return running


def stage(name: str) -> Stage:
    """A stage by its stage name ("embed") or its service's name ("embedder")."""
    found = BY_NAME.get(name) or BY_SERVICE.get(name)
    if found is None:
        raise ValueError(f"unknown stage {name!r} (expected one of {', '.join(BY_NAME)})")
    return found


__all__ = [
    "ANNOTATIONS",
    "BY_NAME",
    "BY_SERVICE",
    "CAPTIONS",
    "FINAL",
    "OPTIONAL",
    "STAGES",
    "TREE",
    "Stage",
    "StageMode",
    "chart_fullname",
    "checked_modes",
    "default_modes",
    "follows",
    "last_stages",
    "stage",
    "stages_to_run",
    "upstream_of",
]
