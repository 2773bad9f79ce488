"""Export: one bad row fails its video, never the shard; the good rows are written and reported."""

from __future__ import annotations

import contextlib
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


def staged_run(store, root: str, run: str, shards: int) -> Plan:
    """A run whose `shards` parquet files are staged and whose shard reports are written."""
    from action100m.pipelines.export import data_file, staging_prefix

    plan = Plan(run, Plan.uri_for(f"{root}/art", run), videos=shards, shards=shards)
    for index in range(shards):
        store.put_bytes(
            f"{staging_prefix(f'{root}/dataset', run)}/{data_file(index, shards)}", f"{run}:{index}".encode()
        )
        state = ShardState(run=run, shard=index, shards=shards, prefix=f"{root}/art", videos=[])
        store.put_bytes(plan.report_uri(index), state.to_json().encode())
    return plan


def data_folder(root: str):
    from action100m.common.uris import parse_uri

    return parse_uri(f"{root}/dataset/data").path


def test_a_reader_sees_the_old_dataset_or_the_new_one_never_a_mix(local_store):
    """Publication of a 4-file dataset over a 1-file one while a reader lists data/ again and again."""
    import threading

    store, root = local_store
    publish_dataset(staged_run(store, root, "old", 1), f"{root}/dataset", store)
    folder, seen, done = data_folder(root), set(), threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                names = list(folder.iterdir())  # data/ is always there ...
            except FileNotFoundError:
                seen.add(frozenset({"no data/"}))
                continue
            # ... and what one listing holds is one run's (a file of the old run may be gone by the
            # time it is opened: its dataset was replaced meanwhile, so it is not read)
            with contextlib.suppress(FileNotFoundError):
                seen.add(frozenset(p.read_text().split(":")[0] for p in names))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        publish_dataset(staged_run(store, root, "new", 4), f"{root}/dataset", store)
    finally:
        done.set()
        reader.join()
    # an empty listing is the old folder read through a handle opened before the swap, as its
    # removal empties it (the path data/ already names the new one): never a mix of the two runs
    assert seen <= {frozenset({"old"}), frozenset({"new"}), frozenset()}, seen
    assert frozenset({"new"}) in seen
    assert sorted(p.name for p in folder.iterdir()) == [f"train-0000{i}-of-00004.parquet" for i in range(4)]
    assert not (data_folder(root).parent / ".staging").exists()  # nothing left behind


def test_a_publication_stopped_at_any_moment_leaves_the_old_dataset_or_the_new_one(local_store):
    """Ctrl-C (KeyboardInterrupt) at each store call of the publication: data/ is never mixed."""
    from action100m.common.store import ArtifactStore

    store, root = local_store

    class StoppedAt(ArtifactStore):
        def __init__(self, roots, at: int):
            super().__init__(roots)
            self.calls, self.at = 0, at

        def _tick(self):
            self.calls += 1
            if self.calls == self.at:
                raise KeyboardInterrupt

        def swap_folder(self, source, dest):
            self._tick()
            return super().swap_folder(source, dest)

        def move(self, source, dest):
            self._tick()
            return super().move(source, dest)

        def delete(self, uri):
            self._tick()
            return super().delete(uri)

    for at in range(1, 8):
        case = f"{root}/case{at}"
        publish_dataset(staged_run(store, case, "old", 1), f"{case}/dataset", store)
        plan = staged_run(store, case, "new", 4)
        with contextlib.suppress(KeyboardInterrupt):
            publish_dataset(plan, f"{case}/dataset", StoppedAt([root], at))
        runs = {p.read_text().split(":")[0] for p in data_folder(case).iterdir()}
        assert runs in ({"old"}, {"new"}), (at, runs)
        assert len(list(data_folder(case).iterdir())) == (1 if runs == {"old"} else 4)


def test_a_run_that_no_longer_holds_the_dataset_never_publishes_into_it(local_store):
    """Run "old" was killed and run "new" took the folder over: old's late publication is refused
    and the dataset stays new's; new publishes."""
    import pytest

    from action100m.pipelines.export import PublicationRefused, claim_output

    store, root = local_store
    claim_output(store, f"{root}/dataset", "old")
    old = staged_run(store, root, "old", 6)
    claim_output(store, f"{root}/dataset", "new")
    publish_dataset(staged_run(store, root, "new", 2), f"{root}/dataset", store, claimed=True)
    with pytest.raises(PublicationRefused, match="run new holds this dataset now, not run old"):
        publish_dataset(old, f"{root}/dataset", store, claimed=True)
    assert sorted(p.read_text() for p in data_folder(root).iterdir()) == ["new:0", "new:1"]
