"""`a100m compare A B`: how close one dataset comes to another, node by node.

Nodes are matched by (video_uid, node_id) (the release's ids, and ours for a run started from a
dataset, make this exact). Per text field: the share of matched nodes that have it in each dataset,
where both have it the share that is identical, the mean chrF (character n-gram F-score, sacrebleu's
implementation; 1.0 for identical texts, no model to download) and the length ratio (B's characters
over A's). The same per tree level and per duration band, the nodes that differ most, and how the
trees differ (nodes only in one, boundaries that moved).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..text import printable

FIELDS = (
    "plm_caption",
    "plm_action",
    "llama3_caption",
    "gpt.summary.brief",
    "gpt.summary.detailed",
    "gpt.action.brief",
    "gpt.action.detailed",
    "gpt.action.actor",
)
BANDS = ((0.0, 4.0, "<4s"), (4.0, 16.0, "4-16s"), (16.0, 64.0, "16-64s"), (64.0, math.inf, ">=64s"))
# Times are float32 in the release's parquet (213.8 reads back as 213.8000030517578) and boundaries sit on
# frames (>= 1/60 s apart): a shift under a millisecond is the same boundary.
TIME_TOLERANCE = 1e-3


def field_value(node: dict[str, Any], name: str) -> str | None:
    """A node's text field; `gpt.action.brief` reads into the annotation (None when absent)."""
    value: Any = node
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return None if value is None else str(value)


def band_of(seconds: float) -> str:
    return next(name for low, high, name in BANDS if low <= seconds < high)


@dataclass
class FieldScore:
    """One field over a group of matched nodes."""

    field: str
    group: str = "all"
    matched: int = 0
    in_a: int = 0
    in_b: int = 0
    both: int = 0
    exact: int = 0
    chrf_sum: float = 0.0
    chars_a: int = 0
    chars_b: int = 0

    def add(self, a: str | None, b: str | None, chrf: float | None) -> None:
        self.matched += 1
        self.in_a += a is not None
        self.in_b += b is not None
        if a is None or b is None:
            return
        self.both += 1
        self.exact += a == b
        self.chrf_sum += chrf if chrf is not None else 0.0
        self.chars_a += len(a)
        self.chars_b += len(b)

    def row(self) -> dict[str, Any]:
        both = self.both or 1
        return {
            "field": self.field,
            "group": self.group,
            "matched": self.matched,
            "coverage_a": round(self.in_a / self.matched, 4) if self.matched else None,
            "coverage_b": round(self.in_b / self.matched, 4) if self.matched else None,
            "both": self.both,
            "exact": round(self.exact / both, 4) if self.both else None,
            "chrf": round(self.chrf_sum / both, 4) if self.both else None,
            "length_ratio": round(self.chars_b / self.chars_a, 4) if self.chars_a else None,
        }


@dataclass
class Difference:
    video_uid: str
    node_id: str
    level: int
    field: str
    chrf: float
    a: str
    b: str


@dataclass
class TreeDifference:
    videos_only_in_a: int = 0
    videos_only_in_b: int = 0
    nodes_only_in_a: int = 0
    nodes_only_in_b: int = 0
    nodes_matched: int = 0
    boundaries_moved: int = 0
    largest_shift_seconds: float = 0.0


@dataclass
class Comparison:
    fields: list[dict[str, Any]]
    by_level: list[dict[str, Any]]
    by_band: list[dict[str, Any]]
    most_different: list[Difference]
    tree: TreeDifference = field(default_factory=TreeDifference)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": self.fields,
            "by_level": self.by_level,
            "by_band": self.by_band,
            "most_different": [asdict(d) for d in self.most_different],
            "tree": asdict(self.tree),
        }


def _chrf() -> Any:
    try:
        from sacrebleu.metrics import CHRF
    except ImportError:  # pragma: no cover - the extra is in every environment we make
        raise SystemExit("a100m compare needs sacrebleu: pip install 'action100m[compare]'") from None
    return CHRF()


def compare_rows(
    rows_a: Iterable[dict[str, Any]],
    rows_b: Iterable[dict[str, Any]],
    fields: Sequence[str] = FIELDS,
    most_different: int = 10,
) -> Comparison:
    """The comparison of two datasets' rows held in memory (B against A)."""
    videos_a = {str(r["video_uid"]): r for r in rows_a}
    videos_b = {str(r["video_uid"]): r for r in rows_b}
    common = sorted(videos_a.keys() & videos_b.keys())
    return compare_pairs(
        ((videos_a[uid], videos_b[uid]) for uid in common),
        only_in_a=len(videos_a.keys() - videos_b.keys()),
        only_in_b=len(videos_b.keys() - videos_a.keys()),
        fields=fields,
        most_different=most_different,
    )


def compare_pairs(
    pairs: Iterable[tuple[dict[str, Any], dict[str, Any]]],
    only_in_a: int = 0,
    only_in_b: int = 0,
    fields: Sequence[str] = FIELDS,
    most_different: int = 10,
) -> Comparison:
    """The comparison of the same videos' rows in A and B, one pair at a time (a caller reading
    large datasets lazily holds one video of each in memory); `only_in_*` count the videos the other lacks."""
    chrf = _chrf()
    tree = TreeDifference(videos_only_in_a=only_in_a, videos_only_in_b=only_in_b)
    overall = {name: FieldScore(name) for name in fields}
    levels: dict[tuple[str, int], FieldScore] = {}
    bands: dict[tuple[str, str], FieldScore] = {}
    worst: list[tuple[float, int, Difference]] = []  # a bounded heap of the lowest chrF (negated)
    order = itertools.count()  # ties: the first found stays
    for row_a, row_b in pairs:
        uid = str(row_a["video_uid"])
        nodes_a = {str(n["node_id"]): n for n in row_a["nodes"]}
        nodes_b = {str(n["node_id"]): n for n in row_b["nodes"]}
        tree.nodes_only_in_a += len(nodes_a.keys() - nodes_b.keys())
        tree.nodes_only_in_b += len(nodes_b.keys() - nodes_a.keys())
        for node_id, a in nodes_a.items():
            b = nodes_b.get(node_id)
            if b is None:
                continue
            tree.nodes_matched += 1
            shift = max(abs(float(a["start"]) - float(b["start"])), abs(float(a["end"]) - float(b["end"])))
            if shift > TIME_TOLERANCE:
                tree.boundaries_moved += 1
                tree.largest_shift_seconds = max(tree.largest_shift_seconds, round(shift, 6))
            level, band = int(a["level"]), band_of(float(a["end"]) - float(a["start"]))
            for name in fields:
                text_a, text_b = field_value(a, name), field_value(b, name)
                score = None
                if text_a is not None and text_b is not None:
                    score = 1.0 if text_a == text_b else chrf.sentence_score(text_b, [text_a]).score / 100
                    if score < 1.0 and most_different > 0:
                        found = Difference(uid, node_id, level, name, round(score, 4), text_a, text_b)
                        entry = (-found.chrf, -next(order), found)
                        if len(worst) < most_different:
                            heapq.heappush(worst, entry)
                        elif entry[0] > worst[0][0]:
                            heapq.heapreplace(worst, entry)
                for group in (
                    overall[name],
                    levels.setdefault((name, level), FieldScore(name, f"level {level}")),
                    bands.setdefault((name, band), FieldScore(name, band)),
                ):
                    group.add(text_a, text_b, score)
    band_order = [name for _, _, name in BANDS]
    return Comparison(
        fields=[overall[name].row() for name in fields],
        by_level=[levels[key].row() for key in sorted(levels, key=lambda k: (k[1], fields.index(k[0])))],
        by_band=[bands[key].row() for key in sorted(bands, key=lambda k: (band_order.index(k[1]), fields.index(k[0])))],
        most_different=sorted((d for _, _, d in worst), key=lambda d: (d.chrf, d.video_uid, d.node_id)),
        tree=tree,
    )


SHORT = {
    "plm_caption": "plm_cap",
    "plm_action": "plm_act",
    "llama3_caption": "llama3",
    "gpt.summary.brief": "sum.brief",
    "gpt.summary.detailed": "sum.det",
    "gpt.action.brief": "act.brief",
    "gpt.action.detailed": "act.det",
    "gpt.action.actor": "actor",
}


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [["" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return lines


def _by_group(rows: Sequence[dict[str, Any]], fields: Sequence[str]) -> list[list[Any]]:
    """One line per group (level, band): its node count, then each field's chrF."""
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        line = groups.setdefault(row["group"], {"matched": row["matched"]})
        line[row["field"]] = row["chrf"]
    return [[group, line["matched"], *(line.get(f) for f in fields)] for group, line in groups.items()]


def format_comparison(comparison: Comparison, fields: Sequence[str], label_a: str, label_b: str) -> str:
    """The comparison as readable tables."""
    tree = comparison.tree
    lines = [
        f"A: {label_a}",
        f"B: {label_b}",
        f"nodes matched by id: {tree.nodes_matched}; only in A: {tree.nodes_only_in_a}, only in B: "
        f"{tree.nodes_only_in_b}; videos only in A: {tree.videos_only_in_a}, only in B: {tree.videos_only_in_b}; "
        f"boundaries moved: {tree.boundaries_moved} (largest {tree.largest_shift_seconds:g} s)",
        "",
    ]
    header = ["field", "coverage A", "coverage B", "both", "exact", "chrF", "length B/A"]
    lines += _table(
        header,
        [
            [r["field"], r["coverage_a"], r["coverage_b"], r["both"], r["exact"], r["chrf"], r["length_ratio"]]
            for r in comparison.fields
        ],
    )
    short = [SHORT.get(f, f) for f in fields]
    for title, rows in (("by level (chrF)", comparison.by_level), ("by duration (chrF)", comparison.by_band)):
        lines += ["", title]
        lines += _table(["group", "nodes", *short], _by_group(rows, fields))
    if comparison.most_different:
        lines += ["", "most different"]
        for d in comparison.most_different:
            lines.append(f"  {printable(d.video_uid, 80)} {d.node_id} (level {d.level}) {d.field}: chrF {d.chrf:.3f}")
            lines.append(f"    A: {printable(d.a, 160)}")
            lines.append(f"    B: {printable(d.b, 160)}")
    return "\n".join(lines)
