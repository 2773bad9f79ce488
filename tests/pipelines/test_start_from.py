"""Starting from a dataset: its rows become the imported stages' artifacts (tree, captions) keyed by
its content, the stages not run are skipped, and only what is asked runs (on the synthetic release
and the real released sample where present)."""

from __future__ import annotations

import json

import pytest

from action100m.common.artifacts import Captions, SegmentTree
from action100m.common.release import read_rows, write_json
from action100m.common.store import ArtifactStore
from action100m.common.uris import to_uri
from action100m.devtools.synthetic_video import write_video
from action100m.pipelines.plan import ManifestError, Plan
from action100m.pipelines.registry import stage
from action100m.pipelines.start_from import StartFrom, plan_from_dataset

from ..support import synthetic_release_row


def local_store(tmp_path, *read_only):
    return ArtifactStore([to_uri(tmp_path)], read_only_roots=[to_uri(p) for p in read_only])


def test_the_rows_tree_and_captions_become_the_imported_stages_artifacts(release_file, tmp_path):
    store = local_store(tmp_path, release_file.parent)
    prefix = to_uri(tmp_path / "art")
    start = StartFrom([to_uri(release_file)], ["refine"])
    plan = plan_from_dataset(store, start, prefix, shard_size=4, run="r1")
    state = Plan.load(store, plan.uri).shard(store, 0, prefix)
    assert {name: bool(c.fingerprint) for name, c in state.stages.items()} == {
        "transcribe": False,  # skipped: the rows carry their transcripts
        "embed": False,  # skipped: nothing reads it
        "segment": True,
        "caption": True,
    }
    assert all(config.source for config in state.stages.values())
    (row,) = read_rows(release_file)
    (video,) = state.videos
    assert video.video_uid == row["video_uid"] and not video.error
    tree = SegmentTree.from_json(store.get_bytes(state.artifact(stage("segment"), video)))
    assert [(n.node_id, n.parent_id, n.level, n.start, n.end) for n in tree.nodes] == [
        (n["node_id"], n["parent_id"], n["level"], n["start"], n["end"]) for n in row["nodes"]
    ]
    captions = Captions.from_json(store.get_bytes(state.artifact(stage("caption"), video)))
    for node in row["nodes"]:
        got = captions.nodes[node["node_id"]]
        assert (got.plm_caption, got.plm_action, got.llama3_caption) == (
            node["plm_caption"],
            node["plm_action"],
            node["llama3_caption"],
        )
    assert json.loads(store.get_bytes(video.metadata_uri))["title"] == row["metadata"]["title"]
    # keyed by the dataset's content: planned again, the same keys; an edited copy, others
    again = Plan.load(store, plan_from_dataset(store, start, prefix, 4, "r2").uri).shard(store, 0, prefix)
    assert {n: c.fingerprint for n, c in again.stages.items()} == {n: c.fingerprint for n, c in state.stages.items()}
    row["nodes"][0]["plm_caption"] = "edited"
    edited = write_json([row], tmp_path / "edited.json")
    other = plan_from_dataset(store, StartFrom([to_uri(edited)]), prefix, 4, "r3")
    changed = Plan.load(store, other.uri).shard(store, 0, prefix)
    assert changed.stages["segment"].fingerprint != state.stages["segment"].fingerprint


def test_recaptioning_matches_videos_by_uid_and_a_missing_one_fails_alone_at_plan(tmp_path):
    rows = [synthetic_release_row(uid, seconds=40.0, seed=n) for n, uid in enumerate(("kitchen", "garden"))]
    dataset = write_json(rows, tmp_path / "data" / "two.json")
    videos = tmp_path / "videos"
    write_video(videos / "kitchen.mp4", frames=25, fps=25, size=(64, 48))
    store = local_store(tmp_path, dataset.parent, videos)
    prefix = to_uri(tmp_path / "art")
    start = StartFrom([to_uri(dataset)], ["caption", "refine"])
    plan = plan_from_dataset(store, start, prefix, 8, "r", videos=to_uri(videos))
    state = plan.shard(store, 0, prefix)
    assert set(state.stages) == {"transcribe", "embed", "segment"}  # caption runs: its fields are not imported
    kitchen, garden = state.videos
    assert kitchen.uri == to_uri(videos / "kitchen.mp4") and not kitchen.error
    assert store.exists(state.artifact(stage("segment"), kitchen))
    assert garden.error_code == "NOT_FOUND" and "no video file for 'garden'" in garden.error
    assert state.failed["garden"].stage == "plan" and "kitchen" not in state.failed
    with pytest.raises(ManifestError, match="--videos"):
        plan_from_dataset(store, start, prefix, 8, "r")


@pytest.mark.parametrize("stages", [["embed"], ["segment", "caption", "refine"], ["caption"], []])
def test_only_the_stages_after_what_a_dataset_holds_can_run(stages):
    with pytest.raises(ValueError, match="must be refine or caption,refine"):
        StartFrom(["file:///x.json"], stages)


def test_a_file_that_is_not_release_rows_is_refused_with_its_name(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps({"run": "x", "videos": 3}))
    store = local_store(tmp_path)
    with pytest.raises(ManifestError, match=r"report\.json: not a release file"):
        plan_from_dataset(store, StartFrom([to_uri(tmp_path / "report.json")]), to_uri(tmp_path / "art"), 4, "r")


def test_a_hub_dataset_that_cannot_be_reached_is_one_line_before_anything_starts(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}  # an empty cache, no network
    command = [sys.executable, "-m", "action100m.cli", "run", "--out", str(tmp_path / "out")]
    command += ["--from", "hf://datasets/facebook/Action100M-preview/data/train-00000-of-00010.parquet"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: hf://datasets/facebook/Action100M-preview/data/train-00000-of-00010.parquet")
    assert "download it where the network allows" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "starting the services" not in done.stdout


def test_a_parquet_dataset_is_imported_a_row_group_at_a_time(tmp_path):
    import pyarrow.parquet as pq

    from action100m.common.release.files import to_table

    rows = [synthetic_release_row(f"v{i}", seconds=30.0, seed=i) for i in range(3)]
    path = tmp_path / "data" / "train-00000-of-00001.parquet"
    path.parent.mkdir()
    pq.write_table(to_table(rows), path, row_group_size=1)
    assert pq.ParquetFile(path).num_row_groups == 3
    store = local_store(tmp_path, path.parent)
    prefix = to_uri(tmp_path / "art")
    plan = plan_from_dataset(store, StartFrom([to_uri(path)]), prefix, shard_size=2, run="r")
    videos = [v for i in range(plan.shards) for v in plan.shard(store, i, prefix).videos]
    assert [v.video_uid for v in videos] == ["v0", "v1", "v2"] and not any(v.error for v in videos)
    state = plan.shard(store, 1, prefix)
    tree = SegmentTree.from_json(store.get_bytes(state.artifact(stage("segment"), state.videos[0])))
    assert [n.node_id for n in tree.nodes] == [n["node_id"] for n in rows[2]["nodes"]]


def test_recaptioning_with_none_of_the_videos_stops_before_any_service(tmp_path):
    import subprocess
    import sys

    dataset = write_json([synthetic_release_row("kitchen", seconds=20.0)], tmp_path / "d" / "one.json")
    (tmp_path / "videos").mkdir()
    command = [sys.executable, "-m", "action100m.cli", "run", "--from", str(dataset), "--out", str(tmp_path / "out")]
    command += ["--stages", "caption,refine", "--videos", str(tmp_path / "videos")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "starting the services" not in done.stdout
    assert done.stderr.startswith("error: none of the 1 videos is in") and "kitchen.mp4" in done.stderr
    blind = subprocess.run(command[:-2], capture_output=True, text=True, timeout=120)
    assert blind.returncode == 2 and "--videos DIR" in blind.stderr


def broken_trees() -> dict[str, dict]:
    """One release row per way a tree can break, each named by the rule it breaks."""
    import copy

    def variant(uid: str, change) -> dict:
        row = copy.deepcopy(synthetic_release_row(video_uid=uid))
        change(row["nodes"])
        return row

    def nan_span(nodes):
        nodes[3]["end"] = float("nan")

    def cycle(nodes):  # two nodes each other's parent, cut off from the root
        nodes[3]["parent_id"], nodes[4]["parent_id"] = nodes[4]["node_id"], nodes[3]["node_id"]

    return {
        "ids": variant("dup", lambda nodes: nodes[2].update(node_id=nodes[1]["node_id"])),
        "parent": variant("dangling", lambda nodes: nodes[3].update(parent_id="nobody")),
        "cycle": variant("cycle", cycle),
        "span": variant("nan", nan_span),
        "root": variant("roots", lambda nodes: nodes[1].update(parent_id=None)),
    }


def test_an_imported_tree_that_breaks_a_release_rule_fails_its_video_at_plan_naming_the_rule(tmp_path):
    """Before: duplicate ids, dangling parents, cycles, NaN spans and two roots were all imported and
    published as done, and `a100m validate` found 26 problems in the result."""
    broken = broken_trees()
    good = synthetic_release_row(video_uid="good")
    source = write_json([good, *broken.values()], tmp_path / "mixed.json")
    store = local_store(tmp_path)
    plan = plan_from_dataset(store, StartFrom([to_uri(source)], ["refine"]), to_uri(tmp_path / "art"), 10, "r")
    (state,) = [Plan.load(store, plan.uri).shard(store, 0, to_uri(tmp_path / "art"))]
    assert [v.video_uid for v in state.active()] == ["good"]
    for rule, row in broken.items():
        failure = state.failed[row["video_uid"]]
        rule_named = {"cycle": "parent"}.get(rule, rule)
        assert failure.stage == "plan" and f"its tree breaks the release's rule [{rule_named}]" in failure.reason, (
            rule,
            failure,
        )
