"""Release rows through parquet and the official JSON layout, with the exact Arrow schema."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from action100m.common.release import RELEASE_SCHEMA, read_rows, write_json, write_parquet
from action100m.common.release.files import to_table

# docs/method.md, "Output",, field by field, as Arrow prints the types.
EXPECTED_TYPES = {
    "video_uid": "string",
    "metadata": "struct<title: string, description: string, view_count: int64, like_count: int64, duration: int64, "
    "upload_date: string, transcript: list<item: struct<time: string, text: string>>>",
    "nodes": "list<item: struct<node_id: string, parent_id: string, level: int16, start: float, end: float, "
    "plm_action: string, plm_caption: string, llama3_caption: string, gpt: struct<summary: struct<brief: string, "
    "detailed: string>, action: struct<brief: string, detailed: string, actor: string>>>>",
}


def test_schema_is_the_release_schema():
    assert {field.name: str(field.type) for field in RELEASE_SCHEMA} == EXPECTED_TYPES
    assert all(field.nullable for field in RELEASE_SCHEMA)


def test_sample_survives_parquet_and_json_round_trips(release_file, tmp_path):
    rows = read_rows(release_file)
    parquet = write_parquet(rows, tmp_path / "sample.parquet")
    assert pq.read_schema(parquet).remove_metadata() == RELEASE_SCHEMA
    back = read_rows(parquet)
    assert back == to_table(rows).to_pylist()
    json_path = write_json(back, tmp_path / "sample.json")
    # Same layout as the official file: columnar, and the same values once through float32.
    assert json.loads(json_path.read_text()) == json.loads(release_file.read_text())
    assert read_rows(json_path) == back


def test_missing_fields_become_nulls():
    table = to_table([{"video_uid": "v1", "nodes": [{"node_id": "n", "start": 0, "end": 1.5}]}])
    assert table.schema == RELEASE_SCHEMA
    row = table.to_pylist()[0]
    assert row["metadata"] is None
    assert row["nodes"][0]["gpt"] is None and row["nodes"][0]["parent_id"] is None
    assert table.column("nodes").type.value_type.field("start").type == pa.float32()


def test_a_dataset_folder_is_read_file_after_file_and_other_files_beside_it_are_skipped(tmp_path):
    from action100m.common.release import NotReleaseFile, iter_dataset, read_dataset
    from action100m.common.release.files import ROW_GROUP_ROWS

    data = tmp_path / "dataset" / "data"
    write_parquet([{"video_uid": f"a{i}", "nodes": []} for i in range(ROW_GROUP_ROWS + 1)], data / "train-0.parquet")
    write_json([{"video_uid": "b", "nodes": []}], data / "train-1.json")
    (data / "report.json").write_text('{"done": 3}')
    rows = iter_dataset(tmp_path)
    assert next(rows)["video_uid"] == "a0"  # a generator: nothing read beyond the first file yet
    assert [row["video_uid"] for row in read_dataset(tmp_path)] == [f"a{i}" for i in range(65)] + ["b"]
    assert pq.ParquetFile(data / "train-0.parquet").num_row_groups == 2  # a reader can take 64 at a time
    (data / "train-0.parquet").unlink()
    (data / "train-1.json").unlink()
    with pytest.raises(NotReleaseFile, match=r"report\.json: not a release file"):  # alone, it is the error
        list(iter_dataset(tmp_path))


def test_a_truncated_parquet_shard_in_a_folder_is_an_error_naming_it(tmp_path):
    """Before: `stats` and `compare` skipped it silently and exited 0 with part of the dataset."""
    from action100m.common.release import NotReleaseFile, iter_dataset

    data = tmp_path / "data"
    write_parquet([{"video_uid": "a", "nodes": []}], data / "train-00000-of-00002.parquet")
    whole = (data / "train-00000-of-00002.parquet").read_bytes()
    (data / "train-00001-of-00002.parquet").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(NotReleaseFile, match=r"train-00001-of-00002\.parquet: not a release file \(unreadable parquet"):
        list(iter_dataset(tmp_path))
