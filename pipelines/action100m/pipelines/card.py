"""The dataset card: README.md with the Hugging Face Hub's YAML header, written beside the data.

It records what made the dataset (package version, each stage's models, options and fingerprint),
what it holds (counts) and what is missing from it (every failed video with its stage and reason,
the first ones listed in full), so a dataset found on a disk months later explains itself.
"""

from __future__ import annotations

import json

from action100m.common.text import printable

from .registry import STAGES
from .state import RunReport

MAX_LISTED_FAILURES = 100
DATA_GLOB = "data/train-*.parquet"


def dataset_card(report: RunReport, title: str = "Action100M-style annotations") -> str:
    header = "\n".join(
        [
            "---",
            "pretty_name: " + json.dumps(title),
            "tags:",
            "- video",
            "- action100m",
            "configs:",
            "- config_name: default",
            "  data_files:",
            "  - split: train",
            f"    path: {DATA_GLOB}",
            "---",
        ]
    )
    stats = report.export
    lines = [
        header,
        "",
        f"# {title}",
        "",
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
