"""The segments of datasets, one text field each: read a row group (or a JSON file) at a time, and
filtered by level, duration and the release's "N/A" (a segment where no actor or action is seen).

The same stream is read twice by `sample`: once to count and embed the texts, once to write what was
drawn; nothing per segment is kept between the two.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from action100m.common.release.files import dataset_files, read_release_rows

# Text fields of a node, by their dotted names in the release (gpt's nested ones included).
TEXT_FIELDS = (
    "gpt.action.brief",
    "gpt.action.detailed",
    "gpt.action.actor",
    "gpt.summary.brief",
    "gpt.summary.detailed",
    "plm_action",
    "plm_caption",
    "llama3_caption",
)
NOT_AN_ACTION = "N/A"  # what the release writes in the action fields where no actor or action is seen
ROWS_PER_BATCH = 64


@dataclass(frozen=True)
class Segment:
    video_uid: str
    node_id: str
    start: float
    end: float
    level: int
    text: str  # the field sampled
    node: dict[str, Any]  # the release's node (its other text fields)


@dataclass(frozen=True)
class SegmentFilter:
    field: str = "gpt.action.brief"
    levels: tuple[int, ...] = ()  # () for all
    min_seconds: float = 0.0
    max_seconds: float = float("inf")
    keep_not_an_action: bool = False

    def __post_init__(self) -> None:
        if self.field not in TEXT_FIELDS:
            raise ValueError(f"--field {self.field}: expected one of {', '.join(TEXT_FIELDS)}")


def value(node: dict[str, Any], field: str) -> Any:
    """A node's field by its dotted name (`gpt.action.brief`); None where any part is missing."""
    found: Any = node
    for part in field.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    return found


def segments(locations: Sequence[str], chosen: SegmentFilter) -> Iterator[Segment]:
    """The segments of the datasets at `locations` (files or folders) that `chosen` keeps, in order."""
    for location in locations:
        for path in dataset_files(location):
            for row in _rows(str(path)):
                yield from _kept(row, chosen)


def _rows(path: str) -> Iterator[dict[str, Any]]:
    if not path.endswith(".parquet"):
        yield from read_release_rows(path)
        return
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=ROWS_PER_BATCH, columns=["video_uid", "nodes"]):
        yield from batch.to_pylist()


def _kept(row: dict[str, Any], chosen: SegmentFilter) -> Iterator[Segment]:
    for node in row.get("nodes") or []:
        text = value(node, chosen.field)
        if not isinstance(text, str) or not text.strip():
            continue  # a node without the field is not a sample
        if text.strip() == NOT_AN_ACTION and not chosen.keep_not_an_action:
            continue
        seconds = float(node["end"]) - float(node["start"])
        if (chosen.levels and int(node["level"]) not in chosen.levels) or not (
            chosen.min_seconds <= seconds <= chosen.max_seconds
        ):
            continue
        yield Segment(
            str(row["video_uid"]),
            str(node["node_id"]),
            float(node["start"]),
            float(node["end"]),
            int(node["level"]),
            text,
            node,
        )
