"""`stream_videos`, the batch call of every stage: per-video results as they come, cached videos,
and a second call for a video in flight joining the first call's work instead of redoing it.

`process` here is a test double of a stage's computation (a real stage decodes and runs models):
it records what it computed and waits on an event so two calls can overlap.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from action100m.common.inflight import InFlight
from action100m.common.stage import stream_videos
from action100m.common.store import ArtifactStore
from action100m.v1 import common_pb2


@dataclass(frozen=True)
class Item:
    video_uid: str
    output_uri: str


class GatedWork:
    """Test double of a stage's `process`: computes each video as `uid.upper()` once `gate` opens."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.computed: list[str] = []
        self.started = threading.Event()

    def __call__(self, todo, keep_going):
        self.started.set()
        for uid, _ in todo:
            while not self.gate.wait(0.05):
                keep_going()
            self.computed.append(uid)
            yield uid, uid.upper()


def call(store, inflight, items, work, alive=lambda: True):
    return [
        (item.video_uid, common_pb2.Outcome.Name(run.outcome), value)
        for item, run, value in stream_videos(
            items,
            store=store,
            overwrite=False,
            inflight=inflight,
            alive=alive,
            prepare=lambda item, files: item,
            process=work,
            publish=lambda item, value: store.put_bytes(item.output_uri, value.encode()),
        )
    ]


def test_a_second_call_for_a_video_in_flight_joins_it_and_it_is_computed_once(tmp_path):
    store = ArtifactStore([f"file://{tmp_path}"])
    inflight = InFlight()
    a, b = (Item(uid, f"file://{tmp_path}/{uid}.txt") for uid in ("a", "b"))
    store.put_bytes(f"file://{tmp_path}/done.txt", b"DONE")
    first_work, second_work = GatedWork(), GatedWork()
    second_work.gate.set()
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(call, store, inflight, [a, b], first_work)
        assert first_work.started.wait(5)
        cached = Item("done", f"file://{tmp_path}/done.txt")
        second = pool.submit(call, store, inflight, [b, cached], second_work)
        first_work.gate.set()
        first_results, second_results = first.result(10), second.result(10)
    assert first_results == [("a", "OUTCOME_DONE", "A"), ("b", "OUTCOME_DONE", "B")]
    assert second_results == [("done", "OUTCOME_CACHED", None), ("b", "OUTCOME_JOINED", "B")]
    assert first_work.computed == ["a", "b"] and second_work.computed == []  # b computed once
    assert store.get_bytes(b.output_uri) == b"B"


def test_the_owner_keeps_going_for_a_joiner_after_its_own_caller_left(tmp_path):
    store = ArtifactStore([f"file://{tmp_path}"])
    inflight = InFlight()
    item = Item("v", f"file://{tmp_path}/v.txt")
    owner_work = GatedWork()
    owner_alive = threading.Event()
    owner_alive.set()
    with ThreadPoolExecutor(2) as pool:
        owner = pool.submit(call, store, inflight, [item], owner_work, owner_alive.is_set)
        assert owner_work.started.wait(5)
        joiner = pool.submit(call, store, inflight, [item], GatedWork())
        while not inflight.wanted([item.output_uri]):
            pass
        owner_alive.clear()  # the first caller disconnects; someone else still wants the video
        owner_work.gate.set()
        assert joiner.result(10) == [("v", "OUTCOME_JOINED", "V")]
        assert owner.result(10) == [("v", "OUTCOME_DONE", "V")]
    assert owner_work.computed == ["v"]


def test_work_nobody_wants_any_more_stops_and_its_joiners_are_told_to_retry(tmp_path):
    store = ArtifactStore([f"file://{tmp_path}"])
    inflight = InFlight()
    item = Item("v", f"file://{tmp_path}/v.txt")
    work = GatedWork()
    alive = threading.Event()
    alive.set()
    with ThreadPoolExecutor(1) as pool:
        owner = pool.submit(call, store, inflight, [item], work, alive.is_set)
        assert work.started.wait(5)
        alive.clear()  # the only caller left: the computation stops between units
        try:
            owner.result(10)
            raise AssertionError("the abandoned call should have stopped")
        except Exception as error:
            assert "no other call waits" in str(error)
    assert not store.exists(item.output_uri) and work.computed == []
    assert not inflight.wanted([item.output_uri])  # the registry forgot it: a retry computes it afresh
