"""The viewer reads release files lazily: a summary per video at start from a few columns, a video's
row (with its row group) only when asked. What it shows is the same as reading every row whole."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from action100m.common.release import RELEASE_SCHEMA, read_release_rows, write_json, write_parquet
from action100m.common.release.files import ROW_GROUP_ROWS
from action100m.common.release.synthetic import balanced_tree_row
from action100m.viewer.catalog import load_catalog
from action100m.viewer.rows import entry_of, nodes_of

from ..support import synthetic_release_row


def mixed_rows(count: int) -> list[dict]:
    """Rows of different sizes, some annotated, some without a metadata duration (the last end counts)."""
    rows = []
    for number in range(count):
        row = balanced_tree_row(f"v{number}", 5 + number % 7, seconds=30.0 + number)
        row["metadata"]["title"] = f"Video {number}"
        row["metadata"]["description"] = f"about video {number}"
        row["metadata"]["duration"] = None if number % 2 else 31 + number
        for node in row["nodes"][: number % 3]:
            node["gpt"] = {"summary": {"brief": "b", "detailed": "d"}, "action": None}
        rows.append(row)
    return rows


def summary(video) -> tuple:
    return video.uid, video.title, video.description, video.duration, video.node_count, video.annotated


def test_a_parquet_catalog_is_summarised_without_reading_any_row_group(tmp_path):
    rows = mixed_rows(150)  # three row groups of at most 64 videos
    path = write_parquet(rows, tmp_path / "many.parquet")
    assert pq.ParquetFile(path).num_row_groups == 3
    catalog = load_catalog([str(path)])
    assert catalog.reader.groups_read() == 0
    # the same summary as reading each row whole (float32 ends: as the file holds them)
    wanted = [summary(entry_of(row)) for row in read_release_rows(path)]
    assert [summary(video) for video in catalog.videos] == wanted
    assert sum(video.annotated for video in catalog.videos) == sum(number % 3 for number in range(150))


def test_a_video_is_read_with_its_row_group_and_the_last_groups_are_kept(tmp_path):
    rows = mixed_rows(150)
    path = write_parquet(rows, tmp_path / "many.parquet")
    catalog = load_catalog([str(path)])
    whole = read_release_rows(path)
    assert catalog.videos[70].nodes == nodes_of(whole[70])  # the second group
    assert catalog.videos[100].nodes == nodes_of(whole[100])  # the same group: kept
    assert catalog.reader.groups_read() == 1
    assert catalog.videos[149].nodes == nodes_of(whole[149])
    assert catalog.reader.groups_read() == 2


def test_json_and_foreign_parquet_are_read_whole_and_show_the_same(tmp_path):
    row = synthetic_release_row("clip", seconds=12.0)
    from_json = load_catalog([str(write_json([row], tmp_path / "release.json"))])
    # a parquet whose gpt is a string of JSON, as some exports hold it: not the release's columns
    foreign = {
        **row,
        "nodes": [{**node, "gpt": json.dumps(node["gpt"]) if node["gpt"] else None} for node in row["nodes"]],
    }
    pq.write_table(pa.Table.from_pylist([foreign]), tmp_path / "foreign.parquet")
    from_foreign = load_catalog([str(tmp_path / "foreign.parquet")])
    from_release = load_catalog([str(write_parquet([row], tmp_path / "release.parquet"))])
    assert summary(from_json.videos[0]) == summary(from_foreign.videos[0]) == summary(from_release.videos[0])
    for mine, theirs in zip(from_foreign.videos[0].nodes, from_release.videos[0].nodes, strict=True):
        # the foreign file holds float64 times, the release float32
        assert mine.pop("start") == pytest.approx(theirs.pop("start")) and mine.pop("end") == pytest.approx(
            theirs.pop("end")
        )
        assert mine == theirs


def test_files_of_older_writers_are_read_lazily_too(tmp_path):
    rows = mixed_rows(70)
    table = pa.Table.from_pylist(rows, schema=RELEASE_SCHEMA)
    path = tmp_path / "older.parquet"
    pq.write_table(table, path, use_compliant_nested_type=False, row_group_size=ROW_GROUP_ROWS)  # nodes.list.item.end
    assert any(".list.item." in pq.ParquetFile(path).schema.column(i).path for i in range(3, 8))
    catalog = load_catalog([str(path)])
    assert [summary(video) for video in catalog.videos] == [summary(entry_of(row)) for row in read_release_rows(path)]
    assert catalog.videos[66].nodes == nodes_of(read_release_rows(path)[66])
    assert catalog.reader.groups_read() == 1  # read from its row group, not kept whole from the start
