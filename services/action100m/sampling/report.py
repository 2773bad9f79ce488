"""What a sample says of itself: `report.json`, a card section (`README.md`) and, on request, the
cluster sizes before and after as a picture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def card(report: dict[str, Any]) -> str:
    """The sample's card section: the settings, the counts before and after, the largest duplicate
    groups, and per k the balance of the clusters."""
    lines = [
        "## Sampling (Action100M, Sec. 5.4)",
        "",
        f"Field `{report['field']}`, strategy `{report['strategy']}`, seed {report['seed']}, "
        f"embedder `{report['embedder']}`; texts normalised for exact dedup: {report['normalization']}.",
        "",
        f"- segments: {report['segments']}; unique texts: {report['unique_texts']}",
        f"- duplicate groups: {report['duplicate_groups']}, holding {report['segments_in_duplicate_groups']} segments",
        "",
        "| largest duplicate groups | segments |",
        "|---|---|",
        *(f"| {g['text']} | {g['segments']} |" for g in report["top_groups"]),
    ]
    for k, figures in report["k"].items():
        lines += [
            "",
            f"### k = {k}",
            "",
            f"{figures['rows']} segments written ({figures['draws']} draws). Entropy of the cluster sizes: "
            f"{figures['entropy_bits_before']:.2f} bits before, {figures['entropy_bits_after']:.2f} after "
            f"(uniform: {figures['entropy_bits_uniform']:.2f}).",
            "",
            "| largest clusters (most central text) | unique texts | segments |",
            "|---|---|---|",
            *(f"| {c['name']} | {c['texts']} | {c['segments']} |" for c in figures["top_clusters"]),
        ]
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: dict[str, Any], plot: bool = False) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    (out / "README.md").write_text(card(report))
    if plot:
        for k, figures in report["k"].items():
            plot_sizes(figures, k, out / f"cluster-sizes-k{k}.png")


def plot_sizes(figures: dict[str, Any], k: str, path: Path) -> None:
    """Segments per cluster before and draws per cluster after, clusters by size before."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before, after = figures["segments_per_cluster_before"], figures["draws_per_cluster_after"]
    order = sorted(range(len(before)), key=lambda c: -before[c])
    figure, axis = plt.subplots(figsize=(8, 3.5))
    axis.bar(range(len(order)), [before[c] for c in order], width=1.0, alpha=0.6, label="segments (before)")
    axis.bar(range(len(order)), [after[c] for c in order], width=1.0, alpha=0.6, label="draws (after)")
    axis.set(xlabel=f"clusters (k = {k}), largest first", ylabel="count", yscale="log")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
