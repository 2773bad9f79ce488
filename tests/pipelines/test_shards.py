"""Planning: manifests (JSONL, parquet), prefixes with sidecar metadata, and the errors they can have."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from action100m.pipelines.shards import ManifestError, plan_shards


def test_jsonl_manifest_is_sharded_and_metadata_published(local_store):
    store, root = local_store
    lines = [{"video_uid": f"v{i}", "uri": f"{root}/videos/v{i}.mp4"} for i in range(5)]
    lines[1]["title"] = "Bread"
    lines[2]["metadata"] = {"title": "Soup", "transcript": [{"time": "1.0", "text": "hello"}]}
    store.put_bytes(f"{root}/m.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode())
    shards = [json.loads(s) for s in plan_shards(store, f"{root}/m.jsonl", f"{root}/art", shard_size=2)]
    assert [[v["video_uid"] for v in s["videos"]] for s in shards] == [["v0", "v1"], ["v2", "v3"], ["v4"]]
    v1 = shards[0]["videos"][1]
    meta = json.loads(store.get_bytes(v1["metadata_uri"]))
    assert meta == {
        "title": "Bread",
        "description": None,
        "view_count": None,
        "like_count": None,
        "duration": None,
        "upload_date": None,
        "transcript": None,
    }
    assert shards[0]["videos"][0]["metadata_uri"] == ""
    assert json.loads(store.get_bytes(shards[1]["videos"][0]["metadata_uri"]))["transcript"][0]["text"] == "hello"


def test_parquet_manifest_and_prefix_with_sidecars(local_store, tmp_path):
    store, root = local_store
    path = tmp_path / "m.parquet"
    pq.write_table(pa.Table.from_pylist([{"video_uid": "a", "uri": f"{root}/x/a.mp4", "view_count": 7}]), path)
    store.put_file(f"{root}/m.parquet", path)
    (shard,) = [json.loads(s) for s in plan_shards(store, f"{root}/m.parquet", f"{root}/art", 8)]
    assert json.loads(store.get_bytes(shard["videos"][0]["metadata_uri"]))["view_count"] == 7

    store.put_bytes(f"{root}/in/cook.mp4", b"video")
    store.put_bytes(f"{root}/in/cook.json", json.dumps({"title": "Cooking", "like_count": 3}).encode())
    store.put_bytes(f"{root}/in/walk.webm", b"video")
    store.put_bytes(f"{root}/in/notes.txt", b"not a video")
    (shard,) = [json.loads(s) for s in plan_shards(store, f"{root}/in", f"{root}/art", 8)]
    assert [v["video_uid"] for v in shard["videos"]] == ["cook", "walk"]
    assert json.loads(store.get_bytes(shard["videos"][0]["metadata_uri"]))["title"] == "Cooking"


@pytest.mark.parametrize(
    "content,problem",
    [
        ('{"video_uid": "a"}\n', "row 1 needs 'video_uid' and 'uri'"),
        ('{"video_uid": "a", "uri": "x"}\nnot json\n', "line 2 is not JSON"),
        ('{"video_uid": "a", "uri": "x"}\n{"video_uid": "a", "uri": "y"}\n', "video_uid a appears twice"),
        ("", "no videos found"),
    ],
)
def test_bad_manifests_are_refused_with_the_row_named(local_store, content, problem):
    store, root = local_store
    store.put_bytes(f"{root}/bad.jsonl", content.encode())
    with pytest.raises(ManifestError, match=problem):
        plan_shards(store, f"{root}/bad.jsonl", f"{root}/art", 4)
