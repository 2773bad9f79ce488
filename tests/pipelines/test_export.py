"""Export: one bad row fails its video, never the shard; the good rows are written and reported."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from action100m.common.artifacts import Annotations
from action100m.pipelines.export import export_shard, publish_dataset
from action100m.pipelines.plan import Plan
from action100m.pipelines.registry import stage
from action100m.pipelines.state import ShardState, StageConfig, VideoEntry

from ..support import small_tree


def test_a_row_that_does_not_fit_the_schema_fails_its_video_only(local_store):
    """Metadata published by an older version (no planning check) with `view_count: "many"`."""
    store, root = local_store
    prefix = f"{root}/art"
    good_meta, bad_meta = f"{root}/meta/good.json", f"{root}/meta/bad.json"
    store.put_bytes(good_meta, json.dumps({"title": "Bread", "view_count": 12}).encode())
    store.put_bytes(bad_meta, json.dumps({"title": "Soup", "view_count": "many"}).encode())
    videos = [
        VideoEntry("good", f"{root}/v/good.mp4", good_meta, "s"),
        VideoEntry("bad", f"{root}/v/bad.mp4", bad_meta, "s"),
    ]
    stages = {name: StageConfig(f"fp-{name}", [], {}) for name in ("embed", "segment", "caption", "refine")}
    state = ShardState(run="r1", shard=0, shards=1, prefix=prefix, videos=videos, stages=stages)
    tree, captions = small_tree()
    for video in videos:
        store.put_bytes(state.artifact(stage("segment"), video), tree.to_json())
        store.put_bytes(state.artifact(stage("caption"), video), captions.to_json())
        store.put_bytes(state.artifact(stage("refine"), video), Annotations("vid", "m", {}).to_json())
    plan = Plan("r1", Plan.uri_for(prefix, "r1"), videos=2, shards=1)

    state = export_shard(state, f"{root}/dataset", plan, store)
    report = publish_dataset(plan, f"{root}/dataset", store)

    assert state.export is not None and state.export.rows == 1
    assert state.failed["bad"].stage == "export" and "many" in state.failed["bad"].reason
    (uri,) = report.files
    rows = pq.read_table(uri.removeprefix("file://")).to_pylist()
    assert [(r["video_uid"], r["metadata"]["view_count"]) for r in rows] == [("vid", 12)]
    assert report.done == ["good"] and list(report.failed) == ["bad"]
