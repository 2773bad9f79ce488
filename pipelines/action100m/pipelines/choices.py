"""The choices that shape a dataset's text, in words, from the configs of the stages that made it:
the refiner's prompt profile, reasoning effort per round, decoding and `Current date` setting, and
each captioner's decoding. The card lists them, report.json keeps them, `a100m compare` sets two
datasets' side by side.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol


class MadeBy(Protocol):
    """A stage's config as the report keeps it (`state.StageConfig`)."""

    models: list[str]
    options: dict[str, Any]
    source: str
    settings: dict[str, Any]

    @property
    def origin(self) -> str: ...


NOT_RECORDED = "not recorded"


def _decoding(settings: Any) -> str:
    if not isinstance(settings, dict) or "temperature" not in settings:
        return NOT_RECORDED
    temperature, top_p, seed = (settings.get(k) for k in ("temperature", "top_p", "seed"))
    if not temperature:
        return "greedy"
    return f"temperature {temperature:g}, top_p {top_p:g}, seed {int(seed or 0)} (each request seeded by its node)"


# what each kind of caption decoding (the captioner's settings) writes
CAPTION_FIELDS = {"video": "plm_caption, plm_action", "image": "llama3_caption"}


def text_choices(stages: Mapping[str, MadeBy]) -> dict[str, str]:
    """Choice -> what this dataset used, for the stages whose service reported them (by what its
    settings hold: a prompt, a reasoning effort, decoding), and the stages it imported."""
    choices: dict[str, str] = {}
    for name, config in stages.items():
        settings = config.settings or {}
        if config.source:
            choices[name] = config.origin
            continue
        prompt = settings.get("prompt")
        if isinstance(prompt, dict):
            choices[f"{name}: prompt profile"] = str(prompt.get("profile", NOT_RECORDED))
        if effort := settings.get("reasoning_effort"):
            rounds = int(config.options.get("rounds", 3))
            choices[f"{name}: reasoning effort"] = f"{effort} in each of the {rounds} rounds"
        decoding = settings.get("decoding")
        if isinstance(decoding, dict) and "temperature" in decoding:
            choices[f"{name}: decoding"] = _decoding(decoding)
        elif isinstance(decoding, dict):
            for kind, fields in CAPTION_FIELDS.items():
                choices[f"{name}: decoding of {fields}"] = _decoding(decoding.get(kind))
        if "conversation_date" in settings:
            date = settings["conversation_date"]
            choices[f"{name}: Current date"] = date or "left out (prompts do not change by the day)"
    return choices


def dataset_choices(location: str) -> dict[str, str] | None:
    """The choices recorded in the report.json of a dataset (a dataset or run folder, or a file in
    one); None where there is none (the release records none)."""
    path = Path(location)
    candidates = [path / "report.json", path / "dataset" / "report.json"] if path.is_dir() else []
    candidates += [parent / "report.json" for parent in list(path.parents)[:2]]
    for candidate in candidates:
        if candidate.is_file():
            try:
                report = json.loads(candidate.read_text())
            except (OSError, ValueError):
                return None
            choices = report.get("choices") if isinstance(report, dict) else None
            return {str(k): str(v) for k, v in choices.items()} if isinstance(choices, dict) else None
    return None


def choices_table(a: dict[str, str] | None, b: dict[str, str] | None, name_a: str, name_b: str) -> str:
    """Two datasets' choices side by side (`a100m compare`)."""
    names = list(dict.fromkeys([*(a or {}), *(b or {})]))
    if not names:
        return "choices: neither dataset records them (no report.json beside it)\n"
    rows = [f"choice | {name_a} | {name_b}"]
    for name in names:
        left = (a or {}).get(name, NOT_RECORDED)
        right = (b or {}).get(name, NOT_RECORDED)
        rows.append(f"{name} | {left} | {right}{'' if left == right else '   <- differs'}")
    return "\n".join(rows) + "\n"
