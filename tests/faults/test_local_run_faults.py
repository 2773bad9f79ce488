"""`a100m run` under faults, as a user meets them: a service killed in the middle of its stage, the
whole run stopped by SIGTERM or Ctrl-C (with more shards waiting than run at once). What was
published before a fault stays byte-identical, no process is left behind, and the run (or its
rerun) finishes every video.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from action100m.common.store import PARTIAL_SUFFIX
from action100m.devtools.synthetic_video import write_video
from action100m.pipelines.registry import STAGES

from ..refiners import REFINER_WITHOUT_VLLM
from ..support import descendants, eventually, processes

pytestmark = pytest.mark.slow


def start_run(videos: list[Path], out: Path, models: Path) -> subprocess.Popen[str]:
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "action100m.cli", "run", *map(str, videos), "--out", str(out)]
    command += ["--models", str(models), "--shard-size", "1", "--parallelism", "2"]
    terminal = open(out / "terminal.txt", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        command,
        stdout=terminal,
        stderr=subprocess.STDOUT,
        text=True,
        # the runner is tested, not the engine: the refiner without vLLM, its answers short
        env={**os.environ, "HF_HUB_OFFLINE": "1", **REFINER_WITHOUT_VLLM, "A100M_REFINER_MAX_OUTPUT_TOKENS": "24"},
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )


def service_pid(run: subprocess.Popen[str], service: str) -> int:
    (pid,) = [p for p, (parent, cmd) in processes().items() if parent == run.pid and f"action100m.{service}" in cmd]
    return pid


def published(artifacts: Path) -> dict[str, str]:
    """The published artifacts and their digests (a `.a100m-partial` file still being written is not one)."""
    return {
        str(p.relative_to(artifacts)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in artifacts.rglob("*")
        if p.is_file() and p.parent.parent.name in {s.kind for s in STAGES} and not p.name.endswith(PARTIAL_SUFFIX)
    }


def count(artifacts: Path, kind: str) -> int:
    return sum(1 for _ in (artifacts / kind).rglob("*.*")) if (artifacts / kind).exists() else 0


@pytest.fixture
def inputs(tiny_models, tmp_path):
    videos = [
        write_video(tmp_path / f"clip{i}.mp4", frames=60, fps=25, size=(96, 64), scene_starts=(0, 30)) for i in range(3)
    ]
    return videos, next(iter(tiny_models.values())).parent


def test_each_service_killed_during_its_stage_is_restarted_and_the_run_finishes(inputs, tmp_path):
    videos, models = inputs
    out = tmp_path / "out"
    run = start_run(videos, out, models)
    artifacts, snapshots = out / "artifacts", []
    try:
        for spec in STAGES:  # in pipeline order: kill the service as its first video is published
            eventually(lambda kind=spec.kind: count(artifacts, kind) >= 1 or run.poll() is not None, timeout=600)
            assert run.poll() is None, (out / "terminal.txt").read_text()[-3000:]
            if count(artifacts, spec.kind) == len(videos):
                pytest.fail(f"{spec.service} finished all videos before the test could kill it")
            snapshots.append(published(artifacts))
            os.kill(service_pid(run, spec.service), signal.SIGKILL)
        assert run.wait(900) == 0, (out / "terminal.txt").read_text()[-4000:]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    terminal = (out / "terminal.txt").read_text()
    for spec in STAGES:
        assert f"! the {spec.service} died (killed by SIGKILL); restarting it once." in terminal
    assert "videos: 3 done, 0 failed of 3" in terminal
    final = published(artifacts)
    for snapshot in snapshots:  # everything published before each kill is unchanged
        assert {name: final.get(name) for name in snapshot} == snapshot


@pytest.fixture
def many(tiny_models, tmp_path):
    """Eight one-video shards for two shards in flight: six wait when the run is stopped."""
    videos = [
        write_video(tmp_path / f"clip{i}.mp4", frames=40, fps=25, size=(96, 64), scene_starts=(0, 20)) for i in range(8)
    ]
    return videos, next(iter(tiny_models.values())).parent


def run_until_captioned(videos: list[Path], out: Path, models: Path) -> subprocess.Popen[str]:
    """A run started, once its first captions are published: mid-pipeline, shards still waiting."""
    run = start_run(videos, out, models)
    try:
        eventually(lambda: count(out / "artifacts", "captions") >= 1 or run.poll() is not None, timeout=600)
    except AssertionError:
        os.killpg(run.pid, signal.SIGKILL)
        raise
    assert run.poll() is None, (out / "terminal.txt").read_text()[-3000:]
    return run


@pytest.mark.parametrize("how", ["SIGTERM to the run", "Ctrl-C to its process group"])
def test_stopping_the_run_leaves_no_process_and_a_rerun_finishes(many, tmp_path, how):
    videos, models = many
    out = tmp_path / "out"
    run = run_until_captioned(videos, out, models)
    artifacts = out / "artifacts"
    try:
        before, family = published(artifacts), descendants(run.pid)
        assert len(family) >= 5  # four services and the task processes
        if how == "SIGTERM to the run":
            run.send_signal(signal.SIGTERM)
        else:
            os.killpg(run.pid, signal.SIGINT)
        assert run.wait(10) == 130  # within seconds, however many shards wait
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    terminal = (out / "terminal.txt").read_text()
    assert "interrupted: stopped every service" in terminal and "rerun the same command to resume" in terminal
    eventually(lambda: not (family & set(processes())), timeout=10)  # nothing left behind

    if how == "SIGTERM to the run":
        rerun = start_run(videos, out, models)
        assert rerun.wait(900) == 0, (out / "terminal.txt").read_text()[-4000:]
        assert "videos: 8 done, 0 failed of 8" in (out / "terminal.txt").read_text()
        final = published(artifacts)
        assert {name: final.get(name) for name in before} == before


def test_two_runs_into_one_folder_never_mix_and_each_reports_its_own_videos(many, tmp_path):
    """Run A (v0-v2) and run B (v1-v3) into one --out, B started while A runs: B stops at once (the
    folder is A's), A reports and publishes only its own videos; B then runs alone, and A's command
    again is not "nothing to do" (the dataset now holds B's videos)."""
    import pyarrow.parquet as pq

    videos, models = many
    out = tmp_path / "out"
    first, second = videos[0:3], videos[1:4]
    a = start_run(first, out, models)
    try:
        eventually(lambda: "starting the services" in (out / "terminal.txt").read_text(), timeout=120)
        b = subprocess.run(
            [
                sys.executable,
                "-m",
                "action100m.cli",
                "run",
                *map(str, second),
                "--out",
                str(out),
                "--models",
                str(models),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert b.returncode == 2 and f"{out} is in use by another a100m run (pid {a.pid}" in b.stderr, b.stderr
        assert a.wait(900) == 0, (out / "terminal.txt").read_text()[-4000:]
    finally:
        if a.poll() is None:
            os.killpg(a.pid, signal.SIGKILL)

    def published_uids() -> list[str]:
        return sorted(
            r["video_uid"] for f in (out / "dataset" / "data").glob("*.parquet") for r in pq.read_table(f).to_pylist()
        )

    assert "videos: 3 done, 0 failed of 3" in (out / "terminal.txt").read_text()
    assert published_uids() == ["clip0", "clip1", "clip2"]
    b = start_run(second, out, models)
    assert b.wait(900) == 0, (out / "terminal.txt").read_text()[-4000:]
    assert published_uids() == ["clip1", "clip2", "clip3"]
    again = start_run(first, out, models)
    try:
        eventually(
            lambda: "starting the services" in (out / "terminal.txt").read_text() or again.poll() is not None,
            timeout=120,
        )
        assert "nothing to do" not in (out / "terminal.txt").read_text()
    finally:
        os.killpg(again.pid, signal.SIGINT)
        again.wait(30)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGHUP], ids=["kill -9 of the run", "SIGHUP to the run"])
def test_a_killed_run_leaves_nothing_running_and_the_next_run_owns_the_folder(many, tmp_path, signum):
    """Every process the first run started dies with it within seconds (its services and the DAG's
    driver watch their parent), so the dataset the next run into the folder makes is its own."""
    import pyarrow.parquet as pq

    videos, models = many
    out = tmp_path / "out"
    run = run_until_captioned(videos, out, models)
    try:
        family = descendants(run.pid)
        assert len(family) >= 5  # four services and the DAG's driver and tasks
        os.kill(run.pid, signum)
        run.wait(60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    eventually(lambda: not (family & set(processes())), timeout=30)  # nothing of the first run is left
    if signum == signal.SIGHUP:  # stopped as Ctrl-C stops it (the next run is the kill -9 case's)
        assert run.returncode == 130 and "interrupted: stopped every service" in (out / "terminal.txt").read_text()
        return
    second = start_run(videos[:2], out, models)
    assert second.wait(900) == 0, (out / "terminal.txt").read_text()[-4000:]
    uids = sorted(
        r["video_uid"] for f in (out / "dataset" / "data").glob("*.parquet") for r in pq.read_table(f).to_pylist()
    )
    assert uids == ["clip0", "clip1"]
