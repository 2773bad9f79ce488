"""The progress watcher in a log: truthful counts, few lines on a long run, and a store that is not
polled harder than it can answer. Timers are compressed (log_every of a fraction of a second)."""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import threading
import time

from kfp.local.logging_utils import indented_print

from action100m.pipelines.local.kfp_driver import builtin_print_restored
from action100m.pipelines.local.progress import POLL_SHARE_INVERSE, ProgressWatcher
from action100m.pipelines.plan import Plan, plan_run
from action100m.pipelines.registry import STAGES, stage

FINGERPRINTS = {spec.name: f"fp-{spec.name}" for spec in STAGES}
EMBED = stage("embed")


def planned_videos(store, root, count):
    for i in range(count):
        store.put_bytes(f"{root}/videos/v{i}.mp4", b"video bytes")
    manifest = "".join(
        json.dumps({"video_uid": f"v{i}", "uri": f"{root}/videos/v{i}.mp4"}) + "\n" for i in range(count)
    )
    store.put_bytes(f"{root}/m.jsonl", manifest.encode())
    plan = plan_run(store, f"{root}/m.jsonl", f"{root}/art", shard_size=4)
    videos = [v for i in range(plan.shards) for v in Plan.load(store, plan.uri).shard(store, i, f"{root}/art").videos]
    return plan, videos


def publish(store, root, stage, video):
    store.put_bytes(stage.artifact(f"{root}/art", FINGERPRINTS, video), b"done")


def test_a_log_gets_a_line_when_counts_move_at_most_once_per_log_every_and_the_last_one(local_store):
    store, root = local_store
    plan, videos = planned_videos(store, root, 8)
    embed = EMBED
    out = io.StringIO()  # not a terminal: plain lines
    with ProgressWatcher(store, f"{root}/art", plan.uri, FINGERPRINTS, out=out, every=0.01, log_every=0.5):
        for video in videos:  # 8 counts moving over ~0.8 s, polled every 10 ms
            publish(store, root, embed, video)
            time.sleep(0.1)
    lines = out.getvalue().splitlines()
    # one line per count change would be 9 (and one per poll ~80); at most one per 0.5 s, plus the last
    assert 2 <= len(lines) <= 4, lines
    assert all(line.startswith("  progress: transcribe 0/8, embed ") for line in lines), lines
    assert "embed 8/8" in lines[-1] and "segment 0/8" in lines[-1], lines[-1]
    counts = [int(line.split("embed ")[1].split("/")[0]) for line in lines]
    assert counts == sorted(counts), "counts never go back"


def test_artifacts_of_other_videos_and_configurations_are_not_counted(local_store):
    store, root = local_store
    plan, videos = planned_videos(store, root, 3)
    embed = EMBED
    publish(store, root, embed, videos[0])
    store.put_bytes(
        embed.artifact(f"{root}/art", {**FINGERPRINTS, "embed": "an-older-fingerprint"}, videos[1]), b"stale"
    )
    store.put_bytes(f"{root}/art/{embed.kind}/{FINGERPRINTS['embed']}/another-video.npz", b"not ours")
    watcher = ProgressWatcher(store, f"{root}/art", plan.uri, FINGERPRINTS, out=io.StringIO())
    assert watcher.poll() is True  # the plan was read: the total is known
    assert watcher.line().startswith("  progress: transcribe 0/3, embed 1/3, segment 0/3"), watcher.line()
    assert watcher.poll() is False  # nothing moved


def test_the_wait_between_polls_grows_with_what_a_poll_costs(local_store):
    store, root = local_store
    plan, _ = planned_videos(store, root, 2)
    watcher = ProgressWatcher(store, f"{root}/art", plan.uri, FINGERPRINTS, out=io.StringIO(), every=0.001)
    slow_list = store.list

    def list_taking_50ms(uri):  # a store far away: each stage's listing takes 50 ms
        time.sleep(0.05)
        return slow_list(uri)

    store.list = list_taking_50ms
    watcher._timed_poll()
    # 5 stages x 50 ms listed: the next wait is at least ten times that, not the 1 ms asked for
    assert watcher.delay >= POLL_SHARE_INVERSE * 5 * 0.05


def test_the_final_counts_come_last_and_a_store_that_stops_answering_is_said(local_store):
    store, root = local_store
    plan, videos = planned_videos(store, root, 2)
    out = io.StringIO()
    with ProgressWatcher(store, f"{root}/art", plan.uri, FINGERPRINTS, out=out, every=0.01, log_every=60):
        publish(store, root, EMBED, videos[0])
        time.sleep(0.2)
        answering = store.list

        def list_failing(uri):  # the store goes away just as the run ends
            raise OSError("connection refused")

        store.list = list_failing
    lines = out.getvalue().splitlines()
    assert (
        lines[-1].startswith("  progress: transcribe 0/2, embed 1/2")
        and "the store did not answer: connection refused" in lines[-1]
    )
    store.list = answering


def test_overlapping_kfp_tasks_leave_print_indented_and_the_run_puts_it_back():
    """kfp.local's own `indented_print`, entered and left by two tasks in the order two overlapping
    tasks of a ParallelFor do (A in, B in, A out, B out): print stays indented for the rest of the
    process, which is what two CI runs printed after their pipeline. The run restores it."""

    def overlapping_tasks() -> None:
        a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

        def task_a() -> None:
            with indented_print():
                a_in.set()
                b_in.wait(5)
            a_out.set()

        def task_b() -> None:
            a_in.wait(5)
            with indented_print():
                b_in.set()
                a_out.wait(5)

        threads = [threading.Thread(target=task_a), threading.Thread(target=task_b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)

    original = builtins.print
    try:
        overlapping_tasks()
        assert builtins.print is not original  # kfp's race, as it is
    finally:
        builtins.print = original
    with builtin_print_restored():
        overlapping_tasks()
    assert builtins.print is original
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print("  progress: as written")
    assert out.getvalue() == "  progress: as written\n"


def test_the_work_inside_a_stage_moves_from_its_services_counters(local_store):
    """A service's /metrics (a registry of its own here, with the counters `common.work` keeps) says
    how much of the work it knows is done: the stage's line shows it while no video is finished."""
    from prometheus_client import CollectorRegistry, Counter, start_http_server

    from ...support import free_port

    store, root = local_store
    plan, _ = planned_videos(store, root, 1)
    registry = CollectorRegistry()
    planned = Counter("a100m_work_planned", "", ["unit"], registry=registry)
    done = Counter("a100m_work_done", "", ["unit"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        watcher = ProgressWatcher(
            store, f"{root}/art", plan.uri, FINGERPRINTS, out=io.StringIO(), metrics={"refine": f"127.0.0.1:{port}"}
        )
        planned.labels("segments").inc(300)
        done.labels("segments").inc(120)
        assert watcher.poll() is True
        assert "refine 0/1 [segments 120/300]" in watcher.line(), watcher.line()
        done.labels("segments").inc(30)
        assert watcher.poll() is True and "[segments 150/300" in watcher.line()
        assert watcher.poll() is False  # nothing moved
    finally:
        server.shutdown()
        thread.join(5)
