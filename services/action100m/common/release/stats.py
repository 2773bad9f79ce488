"""The figures that characterise an Action100M dataset, to hold ours against the release's.

`a100m stats` prints them per dataset, with a reference (the release) in the next column. They are
what the first GPU run with the paper's models must match: if nodes per minute, leaf durations or
the tubelet alignment of boundaries differ from the release's, the segmentation differs.

Tubelet alignment: V-JEPA 2 encodes pairs of sampled frames (2m, 2m+1) as one token; a boundary
between sampled frames k-1 and k sits at (k - 0.5) * 4 / fps (docs/method.md, "The tree rules"), and is aligned to
the tubelets when k is even. The release carries no fps, so it is read from the video files when
they are at hand (`--videos`), given (`--fps`), or else inferred per video: the common frame rate
whose grid holds the most internal boundaries (within the 0.01 s rounding). At a video's true rate
every internal boundary lies on the grid (100 % on the released sample); a rate outside the list
(12.5 or 27 fps) fits none, and the best listed one holds a fraction (18 % for 12.5 fps, read as
59.94). So the figures that hang on the grid are withheld, with the reason, when fewer than
`MIN_ON_GRID_PERCENT` of the boundaries of the inferred videos lie on their grids.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from action100m.common import paper

FRAME_RATES = (10.0, 12.0, 15.0, 20.0, 23.976, 24.0, 25.0, 29.97, 30.0, 48.0, 50.0, 59.94, 60.0)
SAMPLE_EVERY = paper.FRAME_STRIDE  # decoded frames per sampled frame (docs/method.md, "Stage 1")
GRID_TOLERANCE = 0.006  # seconds: the release rounds times to 0.01 s and stores float32
MIN_ON_GRID_PERCENT = 90.0  # below it, an inferred frame rate is a guess: grid figures are withheld
GRID_FIGURES = (
    "frame rate, median over videos",
    "internal boundaries on that frame grid",
    "internal boundaries tubelet-aligned",
)
DURATION_BINS = ((0.0, 3.0, "0-3 s"), (3.0, 10.0, "3-10 s"), (10.0, 60.0, "10-60 s"), (60.0, float("inf"), "> 60 s"))
TEXT_FIELDS = (
    ("plm_caption", ("plm_caption",)),
    ("plm_action", ("plm_action",)),
    ("llama3_caption", ("llama3_caption",)),
    ("gpt.summary.brief", ("gpt", "summary", "brief")),
    ("gpt.summary.detailed", ("gpt", "summary", "detailed")),
    ("gpt.action.brief", ("gpt", "action", "brief")),
    ("gpt.action.detailed", ("gpt", "action", "detailed")),
    ("gpt.action.actor", ("gpt", "action", "actor")),
)


@dataclass(frozen=True)
class Figure:
    name: str
    value: float | None
    unit: str = ""  # "%" values are shares in percent
    withheld: str = ""  # why there is no value although the data has one (a guess is not reported)

    def text(self) -> str:
        if self.withheld:
            return "withheld"
        if self.value is None:
            return "-"
        if self.unit == "%":
            return f"{self.value:.1f} %"
        if self.unit == "s":
            return f"{self.value:.2f} s"
        return f"{self.value:,.2f}".rstrip("0").rstrip(".") if self.value != int(self.value) else f"{int(self.value):,}"


def _percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) with linear interpolation; None when there are no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _children(nodes: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    kids: dict[str, list[dict[str, Any]]] = {}
    for node in nodes:
        if node.get("parent_id") is not None:
            kids.setdefault(node["parent_id"], []).append(node)
    return kids


def infer_fps(boundaries: Sequence[float]) -> float | None:
    """The common frame rate whose sampled-frame grid ((k - 0.5) * 4 / fps) holds the most boundaries;
    of rates whose grids hold as many, the lowest (60 fps's grid holds every 20 fps boundary too, so
    a tie means the coarser grid explains them)."""
    if not boundaries:
        return None

    def on_grid(fps: float) -> int:
        step = SAMPLE_EVERY / fps
        return sum(1 for t in boundaries if abs((t / step + 0.5) - round(t / step + 0.5)) * step <= GRID_TOLERANCE)

    return max(FRAME_RATES, key=lambda fps: (on_grid(fps), -fps))


def tubelet_aligned(boundaries: Sequence[float], fps: float) -> tuple[int, int]:
    """(aligned, on the grid) among the boundaries: k = t / step + 0.5 even means between two tubelets."""
    step = SAMPLE_EVERY / fps
    aligned = on_grid = 0
    for t in boundaries:
        k = t / step + 0.5
        if abs(k - round(k)) * step <= GRID_TOLERANCE:
            on_grid += 1
            aligned += round(k) % 2 == 0
    return aligned, on_grid


def _text_of(node: dict[str, Any], path: tuple[str, ...]) -> str | None:
    value: Any = node
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


@dataclass
class _FrameGrid:
    """Boundaries on the videos' frame grids, summed over videos; `guessed_*` over the videos whose
    rate was inferred."""

    rates: list[float] = field(default_factory=list)
    aligned: int = 0
    on_grid: int = 0
    boundaries: int = 0
    guessed_on_grid: int = 0
    guessed_boundaries: int = 0

    def add(self, internal: Sequence[float], known_fps: float | None) -> None:
        fps = known_fps or infer_fps(internal)
        if fps is None:
            return
        self.rates.append(fps)
        aligned, on_grid = tubelet_aligned(internal, fps)
        self.aligned += aligned
        self.on_grid += on_grid
        self.boundaries += len(internal)
        if not known_fps:
            self.guessed_on_grid += on_grid
            self.guessed_boundaries += len(internal)

    def figures(self) -> list[Figure]:
        """The three grid figures, withheld with the reason when the inferred rates are guesses."""
        grid = [
            Figure(GRID_FIGURES[0], statistics.median(self.rates) if self.rates else None, "fps"),
            Figure(GRID_FIGURES[1], self.on_grid / self.boundaries * 100 if self.boundaries else None, "%"),
            Figure(GRID_FIGURES[2], self.aligned / self.on_grid * 100 if self.on_grid else None, "%"),
        ]
        guessed = self.guessed_on_grid / self.guessed_boundaries * 100 if self.guessed_boundaries else 100.0
        if guessed >= MIN_ON_GRID_PERCENT:
            return grid
        why = (
            f"only {guessed:.0f} % of the boundaries lie on the grid of any listed frame rate (at the "
            f"videos' true rate all do; below {MIN_ON_GRID_PERCENT:g} % the rate is a guess): give --fps, or "
            "--videos to read it from the files"
        )
        return [Figure(f.name, None, f.unit, withheld=why) for f in grid]


def dataset_figures(
    rows: Iterable[dict[str, Any]], fps: float | None = None, fps_of: Callable[[str], float | None] | None = None
) -> list[Figure]:
    """The figures of a dataset (release rows), in display order. The videos' frame rate, which the
    release does not carry, is `fps` when known, else `fps_of(video_uid)` (read from its file), else
    inferred per video from its boundaries; grid figures resting on inferred rates that fit too few
    boundaries are withheld (see the module)."""
    videos = seconds = 0.0
    node_count = leaf_count = 0
    depths: list[float] = []
    leaf_durations: list[float] = []
    durations: list[float] = []
    grid = _FrameGrid()
    eligible = annotated = 0
    words: dict[str, list[int]] = {name: [] for name, _ in TEXT_FIELDS}
    transcribed = transcribed_seconds = transcript_words = 0.0
    for row in rows:
        nodes = [n for n in row.get("nodes") or [] if n.get("start") is not None and n.get("end") is not None]
        if not nodes:
            continue
        videos += 1
        root = min(nodes, key=lambda n: (n.get("level") or 0, n["start"]))
        length = float(root["end"]) - float(root["start"])
        seconds += length
        if transcript := (row.get("metadata") or {}).get("transcript"):
            transcribed, transcribed_seconds = transcribed + 1, transcribed_seconds + length
            transcript_words += sum(len(str(entry.get("text") or "").split()) for entry in transcript)
        kids = _children(nodes)
        node_count += len(nodes)
        depths.append(max(float(n.get("level") or 0) for n in nodes))
        internal: set[float] = set()
        for node in nodes:
            span = float(node["end"]) - float(node["start"])
            durations.append(span)
            if node["node_id"] not in kids:
                leaf_count += 1
                leaf_durations.append(span)
            elif span >= paper.MIN_ANNOTATED_SECONDS:
                eligible += 1
                annotated += node.get("gpt") is not None
            for name, path in TEXT_FIELDS:
                text = _text_of(node, path)
                if text is not None:
                    words[name].append(len(text.split()))
            for t in (float(node["start"]), float(node["end"])):
                if 1e-6 < t < length - 1e-6:
                    internal.add(round(t, 2))
        grid.add(sorted(internal), fps or (fps_of(str(row.get("video_uid"))) if fps_of else None))
    minutes = seconds / 60
    figures = [
        Figure("videos", videos),
        Figure("hours", seconds / 3600),
        Figure("nodes per video-minute", node_count / minutes if minutes else None),
        Figure("leaves per video-minute", leaf_count / minutes if minutes else None),
        Figure("maximum depth, min over videos", min(depths) if depths else None),
        Figure("maximum depth, median over videos", statistics.median(depths) if depths else None),
        Figure("maximum depth, max over videos", max(depths) if depths else None),
    ]
    for label, q in (("p10", 0.1), ("p50", 0.5), ("p90", 0.9), ("max", 1.0)):
        figures.append(Figure(f"leaf duration {label}", _percentile(leaf_durations, q), "s"))
    for low, high, label in DURATION_BINS:
        share = sum(1 for d in durations if low <= d < high) / len(durations) * 100 if durations else None
        figures.append(Figure(f"node durations {label}", share, "%"))
    figures += grid.figures()
    gpt_share = annotated / eligible * 100 if eligible else None
    figures.append(Figure(f"gpt on non-leaf nodes >= {paper.MIN_ANNOTATED_SECONDS:g} s", gpt_share, "%"))
    figures.append(Figure("videos with a transcript", transcribed / videos * 100 if videos else None, "%"))
    rate_of_words = transcript_words / (transcribed_seconds / 60) if transcribed_seconds else None
    figures.append(Figure("transcript words per minute (videos with one)", rate_of_words))
    return figures + _word_figures(words)


def _word_figures(words: dict[str, list[int]]) -> list[Figure]:
    """Each text field's words per node, mean and median."""
    figures = []
    for name, _ in TEXT_FIELDS:
        counts = words[name]
        figures.append(Figure(f"{name} words, mean", statistics.fmean(counts) if counts else None))
        figures.append(Figure(f"{name} words, median", statistics.median(counts) if counts else None))
    return figures


def figures_table(columns: dict[str, list[Figure]]) -> str:
    """A plain-text table: one row per figure, one column per dataset."""
    names = [figure.name for figure in next(iter(columns.values()))]
    cells = [["figure", *columns]]
    for index, name in enumerate(names):
        cells.append([name, *(column[index].text() for column in columns.values())])
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    withheld = {label: f.withheld for label, column in columns.items() for f in column if f.withheld}
    lines = []
    for number, row in enumerate(cells):
        lines.append(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += [f"\n{label}: grid figures withheld: {why}" for label, why in sorted(withheld.items())]
    return "\n".join(lines)


def figures_rows(columns: dict[str, list[Figure]]) -> list[dict[str, Any]]:
    """The same as rows for `--json`: {"figure": name, "unit": unit, <column>: value, ...}."""
    names = next(iter(columns.values()))
    rows = []
    for i, figure in enumerate(names):
        row = {
            "figure": figure.name,
            "unit": figure.unit,
            **{label: column[i].value for label, column in columns.items()},
        }
        withheld = {label: column[i].withheld for label, column in columns.items() if column[i].withheld}
        rows.append({**row, "withheld": withheld} if withheld else row)
    return rows


def frame_rates_in(folder: Path) -> Callable[[str], float | None]:
    """video_uid -> the frame rate of its file in `folder` (matched by file stem, read from its
    header when first asked); None for a video without a readable file there. OSError for no folder."""
    from action100m.common.video import VIDEO_EXTENSIONS, VideoReader

    if not folder.is_dir():
        raise OSError(f"--videos {folder}: no such folder")
    files = {path.stem: path for path in sorted(folder.iterdir()) if path.suffix.lower() in VIDEO_EXTENSIONS}
    rates: dict[str, float | None] = {}

    def fps_of(uid: str) -> float | None:
        if uid not in rates:
            path = files.get(uid)
            try:
                rates[uid] = VideoReader(str(path)).probe().fps if path is not None else None
            except Exception:  # not a readable video: its rate is inferred like any other's
                rates[uid] = None
        return rates[uid]

    return fps_of
