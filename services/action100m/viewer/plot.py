"""`a100m plot`: one video's tree as a timeline PNG, or a dataset's distributions as PNGs (matplotlib)."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .rows import VideoEntry

STATS_FILES = (
    "node_durations.png",
    "depth.png",
    "leaf_durations.png",
    "segments_per_minute.png",
    "gpt_field_lengths.png",
    "action_verbs.png",
)
GPT_FIELDS = (
    ("summary", "brief"),
    ("summary", "detailed"),
    ("action", "brief"),
    ("action", "detailed"),
    ("action", "actor"),
)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


@functools.cache
def _font() -> Any:
    from matplotlib import font_manager, ft2font

    return ft2font.FT2Font(font_manager.findfont(font_manager.FontProperties()))


def drawable(text: str) -> str:
    """The text with each character the plots' font has no glyph for (emoji, most CJK in DejaVu Sans)
    written as `?`: matplotlib would draw an empty box and warn once per character."""
    font = _font()
    return "".join(c if c in "\n\t " or font.get_char_index(ord(c)) else "?" for c in text)


ANNOTATED, PLAIN = "#7fbf8f", "#9db4d3"
LABEL_FONT_PT = 6.5


def node_label(node: dict[str, Any]) -> str:
    """What a box says: the annotation's brief action, else the captioner's action (as the viewer)."""
    gpt = node.get("gpt")
    action = gpt.get("action") if isinstance(gpt, dict) else None
    return str((action or {}).get("brief") or node.get("plm_action") or "")


def clock(seconds: float) -> str:
    """m:ss, with tenths below a minute's scale (the axis ticks, the start and end marks)."""
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}:{rest:04.1f}" if rest % 1 else f"{int(minutes)}:{int(rest):02d}"


def timeline_figure(video: VideoEntry) -> Any:
    """The figure of one video's tree: one row per level (labelled), each node a bar from its start
    to its end, annotated nodes in green (the legend says so), each bar wide enough for it labelled
    with its brief action, and the axis in m:ss with ticks at the video's start and end."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    nodes = video.nodes  # read from the file once
    levels = max((node["level"] for node in nodes), default=0) + 1
    span = video.duration or max((n["end"] for n in nodes), default=1)
    figure, axes = plt.subplots(figsize=(14, 1.4 + 0.32 * levels), dpi=110)
    axes_width_pt = figure.get_figwidth() * 72 * 0.86  # the axes' share of the figure, after the margins
    char_pt = LABEL_FONT_PT * 0.6
    for node in nodes:
        width = node["end"] - node["start"]
        axes.barh(
            node["level"],
            width,
            left=node["start"],
            height=0.8,
            color=ANNOTATED if node.get("gpt") else PLAIN,
            edgecolor="#35506e",
            linewidth=0.4,
        )
        fits = int((width / span) * axes_width_pt / char_pt) - 1
        label = drawable(node_label(node))
        if fits >= 4 and label:
            text = label if len(label) <= fits else label[: fits - 1] + "…"
            axes.text(
                node["start"] + width / 2,
                node["level"],
                text,
                ha="center",
                va="center",
                fontsize=LABEL_FONT_PT,
                color="#14202c",
                clip_on=True,
            )
    axes.set_ylim(levels - 0.4, -0.6)
    axes.set_xlim(0, span)
    axes.set_yticks(range(levels), [f"L{level}" for level in range(levels)])
    ticks = [t for t in axes.get_xticks() if 0 < t < span * 0.97] + [0.0, span]
    axes.set_xticks(sorted(ticks), [clock(t) for t in sorted(ticks)])
    axes.set_xlabel("time (m:ss), from the video's start to its end")
    axes.set_ylabel("level")
    axes.legend(
        handles=[Patch(color=ANNOTATED, label="annotated (gpt)"), Patch(color=PLAIN, label="not annotated")],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.35 if levels < 4 else -0.12),
        ncol=2,
        fontsize=8,
        frameon=False,
    )
    axes.set_title(drawable(f"{video.title or video.uid}: {len(nodes)} nodes, {video.annotated} annotated"))
    figure.tight_layout()
    return figure


def plot_timeline(video: VideoEntry, out: Path) -> Path:
    """`timeline_figure` as a PNG at `out`."""
    plt = _pyplot()
    figure = timeline_figure(video)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, bbox_inches="tight")
    plt.close(figure)
    return out


def _histogram(plt: Any, values: Sequence[float], title: str, xlabel: str, out: Path, log: bool = False) -> None:
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    if log:
        import numpy as np

        positive = [v for v in values if v > 0]
        bins = np.logspace(np.log10(min(positive)), np.log10(max(positive)), 40) if positive else 10
        axes.hist(positive, bins=bins, color="#4c78a8")
        axes.set_xscale("log")
    else:
        axes.hist(values, bins=min(40, max(5, len(set(values)))), color="#4c78a8")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)


def action_verb(text: str) -> str | None:
    """The first word of a brief action ("Stir the mixture" -> "stir"); None for N/A."""
    words = re.findall(r"[A-Za-z']+", text)
    if not words or text.strip().upper().startswith("N/A"):
        return None
    return words[0].lower()


def plot_stats(videos: Sequence[VideoEntry], out: Path) -> list[Path]:
    """The dataset's distributions, one PNG each (see STATS_FILES)."""
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    durations: list[float] = []
    leaves: list[float] = []
    levels: list[int] = []
    lengths: dict[str, list[int]] = {f"{a}.{b}": [] for a, b in GPT_FIELDS}
    verbs: Counter[str] = Counter()
    for video in videos:  # one video's nodes at a time: a large dataset is never in memory whole
        nodes = video.nodes
        parents = {node["parent"] for node in nodes if node.get("parent")}
        for node in nodes:
            durations.append(node["end"] - node["start"])
            levels.append(node["level"])
            if node["id"] not in parents:
                leaves.append(node["end"] - node["start"])
            gpt = node.get("gpt")
            if not isinstance(gpt, dict):
                continue
            for group, name in GPT_FIELDS:
                value = (gpt.get(group) or {}).get(name)
                if isinstance(value, str):
                    lengths[f"{group}.{name}"].append(len(value.split()))
            verb = action_verb(str((gpt.get("action") or {}).get("brief") or ""))
            if verb:
                verbs[verb] += 1
    per_minute = [v.node_count / (v.duration / 60) for v in videos if v.duration > 0]
    _histogram(plt, durations, "node durations", "seconds", out / STATS_FILES[0], log=True)
    _histogram(plt, levels, "node depth", "level", out / STATS_FILES[1])
    _histogram(plt, leaves, "leaf durations", "seconds", out / STATS_FILES[2], log=True)
    _histogram(plt, per_minute, "segments per video-minute", "nodes per minute", out / STATS_FILES[3])

    figure, axes = plt.subplots(figsize=(8, 4), dpi=100)
    present = {name: values for name, values in lengths.items() if values}
    if present:
        axes.boxplot(list(present.values()), tick_labels=list(present))
    axes.set_title("gpt field lengths")
    axes.set_ylabel("words")
    figure.tight_layout()
    figure.savefig(out / STATS_FILES[4])
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    common = verbs.most_common(25)
    axes.barh(
        [drawable(verb) for verb, _ in reversed(common)], [count for _, count in reversed(common)], color="#54a24b"
    )
    axes.set_title("most frequent action verbs (gpt.action.brief)")
    axes.set_xlabel("nodes")
    figure.tight_layout()
    figure.savefig(out / STATS_FILES[5])
    plt.close(figure)
    return [out / name for name in STATS_FILES]
