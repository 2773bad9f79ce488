"""The dataset card: README.md with the Hugging Face Hub's YAML header, written beside the data.

It records what made the dataset (package version, each stage's models, options and fingerprint),
what it holds (counts) and what is missing from it (every failed video with its stage and reason,
the first ones listed in full), so a dataset found on a disk months later explains itself.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from action100m.common.text import printable

from .choices import text_choices
from .registry import STAGES
from .state import RunReport

MAX_LISTED_FAILURES = 100
DATA_GLOB = "data/train-*.parquet"


@dataclass(frozen=True)
class CardFacts:
    """What the card says that the run's report does not: the data's license (a Hub license id, the
    user's choice: the release itself is `fair-noncommercial-research-license`), and a notice put
    at the top (`a100m run --preset tiny`: random models, the texts are noise)."""

    license: str = ""
    notice: str = ""

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}

    @classmethod
    def from_dict(cls, data: dict[str, str] | None) -> CardFacts:
        return cls(**{k: str(v) for k, v in (data or {}).items() if k in cls.__dataclass_fields__})


SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


def size_category(rows: int) -> str:
    """The Hub's size category of a dataset of `rows` rows (videos)."""
    return next((name for limit, name in SIZE_CATEGORIES if rows < limit), "1M<n<10M")


def card_data(report: RunReport, facts: CardFacts, title: str) -> Any:
    """The card's YAML header as the Hub reads it (huggingface_hub's DatasetCardData)."""
    from huggingface_hub import DatasetCardData

    return DatasetCardData(
        license=facts.license or "other",
        pretty_name=title,
        tags=["video", "action100m", "temporal-action-localization"],
        task_categories=["video-text-to-text"],
        size_categories=[size_category(report.export.rows)],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": DATA_GLOB}]}],
    )


def _metadata_sources(report: RunReport) -> list[str]:
    """Which metadata fields came from the files beside the videos (clip.json, yt-dlp's info file,
    subtitles), the video files (container tags, duration, date) or the transcriber, for how many
    videos; the rest came from the manifest or are null."""
    if not report.metadata_sources:
        return []
    lines = ["", "## Metadata not from the manifest", "", "| field | from | videos |", "|---|---|---|"]
    for name, sources in sorted(report.metadata_sources.items()):
        for source, count in sorted(sources.items()):
            where = {
                "container": "the video file's container",
                "sidecar": "a JSON file beside the video (clip.json)",
                "info-json": "yt-dlp's info file beside the video (clip.info.json) or the manifest's info_json_uri",
                "subtitles": "a subtitle file",
                "speech-recognition": "speech recognition (the transcribe stage; null where it heard no speech)",
                "impossible-date": "null: the file's date is no real day (00000000, month 13, the future)",
            }.get(source, source)
            lines.append(f"| {name} | {where} | {count} |")
    return lines


def _choices(report: RunReport) -> list[str]:
    """The choices that shape the text (prompt profile, reasoning effort, decoding, date)."""
    choices = text_choices(report.stages)
    if not choices:
        return []
    lines = ["", "## Choices that shape the text", "", "| choice | this dataset |", "|---|---|"]
    return lines + [f"| {name} | {value} |" for name, value in choices.items()]


def _field_origins(report: RunReport) -> list[str]:
    """Where each field came from, for a run started from a dataset (`a100m run --from`): imported
    fields are the source's, byte for byte; the others this run made."""
    sources = {c.source for c in report.stages.values() if c.source and c.fingerprint}
    if not sources:
        return []
    lines = ["", "## Where the fields came from", "", f"Started from {', '.join(sorted(sources))}.", ""]
    lines += ["| fields | stage | made by |", "|---|---|---|", "| metadata | - | the source's rows |"]
    for spec in STAGES:
        config = report.stages.get(spec.name)
        if config is not None and spec.release_fields:
            lines.append(f"| {', '.join(spec.release_fields)} | {spec.name} | {config.origin} |")
    return lines


def dataset_card(report: RunReport, facts: CardFacts = CardFacts(), title: str = "Action100M-style annotations") -> str:
    header = f"---\n{card_data(report, facts, title).to_yaml()}\n---"
    stats = report.export
    lines = [
        header,
        "",
        f"# {title}",
        "",
        *([f"> **{facts.notice}**", ""] if facts.notice else []),
        f"Made by action100m {report.version or '?'} (run `{report.run}`): one row per video in the "
        "Action100M release schema. Load it with "
        f'`datasets.load_dataset("parquet", data_files="{DATA_GLOB}")`.',
        "",
        "| videos | rows | failed | nodes | annotated segments |",
        "|---|---|---|---|---|",
        f"| {report.videos} | {stats.rows} | {len(report.failed)} | {stats.nodes} | {stats.segments_annotated} |",
        "",
        "## What made it",
        "",
        "| stage | fingerprint | models | options |",
        "|---|---|---|---|",
    ]
    for spec in STAGES:
        config = report.stages.get(spec.name)
        if config is None:
            continue
        options = json.dumps(config.options, sort_keys=True)
        lines.append(f"| {spec.name} | `{config.fingerprint}` | {', '.join(config.models) or '-'} | `{options}` |")
    lines += _choices(report)
    lines += _field_origins(report)
    lines += _metadata_sources(report)
    lines += ["", "## Stages", "", "| stage | done | cached | joined | failed | calls | retries | seconds |"]
    lines.append("|---|---|---|---|---|---|---|---|")
    for spec in STAGES:
        s = report.stats.get(spec.name)
        if s is not None:
            lines.append(
                f"| {spec.name} | {s.done} | {s.cached} | {s.joined} | {s.failed} | {s.calls} | {s.retries} "
                f"| {s.seconds:.1f} |"
            )
    if report.failed:
        lines += ["", f"## Failed videos ({len(report.failed)})", "", "| video | stage | code | reason |"]
        lines.append("|---|---|---|---|")
        for uid, failure in list(report.failed.items())[:MAX_LISTED_FAILURES]:
            cells = (printable(uid, 200), failure.stage, failure.code, printable(failure.reason, 300))
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        if len(report.failed) > MAX_LISTED_FAILURES:
            lines.append(f"\n... and {len(report.failed) - MAX_LISTED_FAILURES} more: see report.json.")
    return "\n".join(lines) + "\n"
