"""Release rows as the viewer reads them: a short summary of every video up front, the whole row
only when the page asks for that video (or searches its part).

A parquet file is summarised from a few of its columns (`video_uid`, `metadata.title`,
`metadata.description`, `metadata.duration`, `nodes.end`, `nodes.gpt.summary.brief`), never its
captions or transcripts; a row is read with its row group (the writers put 64 videos in one), the
last few groups kept. So the catalog holds ~0.2 kB per video, not the whole text of every tree.
A JSON file (the official layout) is read whole, as JSON cannot be read in part, and so is a
parquet file whose columns are not the release's.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from action100m.common.release import read_release_rows

Row = dict[str, Any]
TEXT_FIELDS = ("plm_caption", "plm_action", "llama3_caption")
KEPT_ROW_GROUPS = 4


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _gpt(value: Any) -> Any:
    if isinstance(value, str):  # the official JSON holds some as strings of JSON
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def nodes_of(row: Row) -> list[dict[str, Any]]:
    """A release row's nodes as the page shows them."""
    return [
        {
            "id": str(node["node_id"]),
            "parent": node.get("parent_id"),
            "level": int(_number(node.get("level"))),
            "start": _number(node.get("start")),
            "end": _number(node.get("end")),
            **{name: node.get(name) for name in TEXT_FIELDS},
            "gpt": _gpt(node.get("gpt")),
        }
        for node in row.get("nodes") or []
    ]


def transcript_of(row: Row) -> list[list[Any]]:
    """A release row's transcript as the page shows it: [seconds, text] by time (unreadable times dropped)."""
    lines = []
    for entry in (row.get("metadata") or {}).get("transcript") or []:
        try:
            lines.append([float(entry.get("time")), str(entry.get("text") or "")])
        except (TypeError, ValueError, AttributeError):
            continue
    return sorted(lines, key=lambda line: line[0])


@dataclass
class VideoEntry:
    """One video of the catalog: what the list shows, and how to read the rest."""

    uid: str
    title: str
    description: str
    duration: float  # the metadata's, else the last node's end
    node_count: int
    annotated: int  # nodes with a gpt annotation
    read_row: Callable[[], Row] = field(repr=False)
    source: str | None = None  # the video file's URI, inside the allowed roots

    @property
    def nodes(self) -> list[dict[str, Any]]:
        """The video's nodes (read from its file now; the reader keeps the last row groups)."""
        return nodes_of(self.read_row())


def entry_of(row: Row) -> VideoEntry:
    """A video from a whole row in memory."""
    metadata = row.get("metadata") or {}
    nodes = nodes_of(row)
    duration = _number(metadata.get("duration")) or max((node["end"] for node in nodes), default=0.0)
    annotated = sum(1 for node in nodes if node["gpt"])
    return VideoEntry(
        str(row["video_uid"]),
        str(metadata.get("title") or ""),
        str(metadata.get("description") or ""),
        duration,
        len(nodes),
        annotated,
        lambda: row,
    )


def summary_columns(file: pq.ParquetFile) -> list[str]:
    """The columns a video's summary needs. A list's element is `element` in files of current
    writers and `item` in older ones (`nodes.list.item.end`): the file's own paths say which."""
    paths = [file.schema.column(i).path for i in range(len(file.schema))]
    element = next((p.split(".")[2] for p in paths if p.startswith("nodes.list.") and p.endswith(".end")), "element")
    nodes = f"nodes.list.{element}"
    metadata = ["metadata.title", "metadata.description", "metadata.duration"]
    return ["video_uid", *metadata, f"{nodes}.end", f"{nodes}.gpt.summary.brief"]


class RowReader:
    """Reads release files for the catalog; keeps the last `KEPT_ROW_GROUPS` parquet row groups."""

    def __init__(self) -> None:
        self._group = functools.lru_cache(maxsize=KEPT_ROW_GROUPS)(self._read_group)

    @staticmethod
    def _read_group(path: Path, group: int) -> list[Row]:
        rows: list[Row] = pq.ParquetFile(path).read_row_group(group).to_pylist()
        return rows

    def groups_read(self) -> int:
        """Row groups read so far (a test's window on what reading costs)."""
        info = self._group.cache_info()
        return int(info.misses)

    def videos(self, path: Path) -> list[VideoEntry]:
        """The videos of one release file (NotReleaseFile when it is not one)."""
        if path.suffix == ".parquet":
            try:
                return self._parquet_videos(path)
            except (KeyError, pa.ArrowException):
                pass  # not the release's columns: read it whole below, which says what is wrong
        return [entry_of(row) for row in read_release_rows(path)]

    def _parquet_videos(self, path: Path) -> list[VideoEntry]:
        file = pq.ParquetFile(path)
        table = file.read(columns=summary_columns(file))
        metadata = table.column("metadata").combine_chunks()
        nodes = table.column("nodes").combine_chunks()
        counts = pc.fill_null(pc.list_value_length(nodes), 0).to_numpy(zero_copy_only=False)
        owner = pc.list_parent_indices(nodes).to_numpy(zero_copy_only=False)
        flat = pc.list_flatten(nodes)
        ends = pc.fill_null(flat.field("end"), 0.0).to_numpy(zero_copy_only=False).astype(np.float64)
        last_end = np.zeros(len(table))
        np.maximum.at(last_end, owner, ends)
        annotated = np.bincount(
            owner, weights=flat.field("gpt").is_valid().to_numpy(zero_copy_only=False), minlength=len(table)
        )
        uids, titles = table.column("video_uid").to_pylist(), metadata.field("title").to_pylist()
        descriptions, durations = metadata.field("description").to_pylist(), metadata.field("duration").to_pylist()
        places = [
            (group, offset)
            for group in range(file.num_row_groups)
            for offset in range(file.metadata.row_group(group).num_rows)
        ]
        return [
            VideoEntry(
                str(uids[i]),
                str(titles[i] or ""),
                str(descriptions[i] or ""),
                _number(durations[i]) or float(last_end[i]),
                int(counts[i]),
                int(annotated[i]),
                functools.partial(self._row, path, *places[i]),
            )
            for i in range(len(table))
        ]

    def _row(self, path: Path, group: int, offset: int) -> Row:
        return self._group(path, group)[offset]
