"""`a100m run` asks the registry what must run before any service starts, on inputs as people write
them: a folder of videos, a CSV of plain paths (absolute and relative) with a shard whose video is
missing. Only the services of the stages that must run start, in either schedule."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from action100m.devtools.synthetic_video import write_video
from action100m.pipelines.registry import STAGES

from ...refiners import REFINER_WITHOUT_VLLM
from ...support import watch_services

pytestmark = pytest.mark.slow
SERVICES = {spec.service for spec in STAGES}
VTT = "WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nfold the paper in half\n"


def a100m_run(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "action100m.cli", "run", *args]
    # the runner is tested, not the engine: the refiner without vLLM, its answers short
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **REFINER_WITHOUT_VLLM, "A100M_REFINER_MAX_OUTPUT_TOKENS": "24"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def rows(out: Path) -> dict[str, dict]:
    found = {}
    for path in sorted((out / "dataset" / "data").glob("*.parquet")):
        found.update({row["video_uid"]: row for row in pq.read_table(path).to_pylist()})
    return found


def dataset(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "dataset" / "data").glob("*.parquet"))}


@pytest.fixture(scope="module")
def models(tiny_models):
    return str(next(iter(tiny_models.values())).parent)


@pytest.fixture(scope="module")
def folder_run(models, tmp_path_factory):
    """`a100m run FOLDER` on two videos (no subtitles: the transcriber runs on both)."""
    root = tmp_path_factory.mktemp("folder-run")
    videos = root / "videos"
    videos.mkdir()
    for i in range(2):
        write_video(videos / f"clip{i}.mp4", frames=60, fps=25, size=(96, 64), scene_starts=(0, 30))
    (videos / "notes.txt").write_text("not a video")
    out = root / "out"
    run = a100m_run(str(videos), "--out", str(out), "--models", models, "--shard-size", "1")
    terminal, snapshots = watch_services(run)
    assert run.returncode == 0, terminal[-4000:]
    return videos, out, terminal, snapshots


def test_a_folder_is_its_video_files(folder_run):
    _, out, terminal, snapshots = folder_run
    assert set().union(*snapshots) == SERVICES
    assert sorted(rows(out)) == ["clip0", "clip1"] and "videos: 2 done, 0 failed of 2" in terminal
    assert f"output: file://{out / 'dataset'}/ (data/*.parquet, the card README.md, report.json)" in terminal
    checked = subprocess.run(
        [sys.executable, "-m", "action100m.cli", "validate", str(out)], capture_output=True, text=True, timeout=300
    )
    assert checked.returncode == 0 and "2 video(s) in 2 file(s): OK" in checked.stderr, checked.stderr


def test_a_rerun_after_a_subtitle_file_is_added_starts_only_the_refiner_in_either_schedule(folder_run, models):
    videos, out, _, _ = folder_run
    copy = out.parent / "out-stagewise"
    shutil.copytree(out, copy)
    (videos / "clip0.vtt").write_text(VTT)
    try:
        for where, schedule in ((out, "together"), (copy, "stagewise")):
            run = a100m_run(
                str(videos), "--out", str(where), "--models", models, "--shard-size", "1", "--schedule", schedule
            )
            terminal, snapshots = watch_services(run)
            assert run.returncode == 0, terminal[-4000:]
            assert set().union(*snapshots) == {"refiner"}, (schedule, terminal[-3000:])
            assert "stages to run: refine;" in terminal, terminal
            assert rows(where)["clip0"]["metadata"]["transcript"] == [{"time": "0.5", "text": "fold the paper in half"}]
        assert dataset(out) == dataset(copy)  # the two schedules made the same dataset
    finally:
        (videos / "clip0.vtt").unlink()


@pytest.fixture(scope="module")
def csv_run(models, tmp_path_factory):
    """A CSV of plain paths: one video by its absolute path, one relative to the CSV's folder, one
    missing; three shards of one video, `--transcribe never`."""
    root = tmp_path_factory.mktemp("csv-run")
    (root / "clips").mkdir()
    write_video(root / "clips" / "a.mp4", frames=60, fps=25, size=(96, 64), scene_starts=(0, 30))
    write_video(root / "b.mp4", frames=60, fps=25, size=(96, 64), scene_starts=(0, 30))
    manifest = root / "clips" / "list.csv"
    manifest.write_text(f"video_uid,uri\na,a.mp4\nb,{root / 'b.mp4'}\ngone,nowhere/gone.mp4\n")
    out = root / "out"
    run = a100m_run(str(manifest), "--out", str(out), "--models", models, "--shard-size", "1", "--transcribe", "never")
    terminal, snapshots = watch_services(run)
    return root, out, run.returncode, terminal, snapshots


def test_a_csv_of_plain_paths_with_a_shard_all_missing_publishes_the_rest(csv_run):
    """The missing video is named before any service starts; the other two are published."""
    root, out, code, terminal, _ = csv_run
    assert code == 1, terminal[-4000:]
    missing = terminal.index("gone (NOT_FOUND)")
    assert "1 of 3 videos failed at plan" in terminal and missing < terminal.index("starting the services")
    assert str(root / "clips" / "nowhere" / "gone.mp4") in terminal.splitlines()[terminal[:missing].count("\n")]
    assert "videos: 2 done, 1 failed of 3" in terminal
    assert sorted(rows(out)) == ["a", "b"]
    card = (out / "dataset" / "README.md").read_text()
    assert "| gone | plan | NOT_FOUND |" in card


def test_transcribe_never_starts_no_transcriber(csv_run):
    _, out, _, terminal, snapshots = csv_run
    assert set().union(*snapshots) == SERVICES - {"transcriber"}, terminal[-3000:]
    assert all(row["metadata"] is None or row["metadata"]["transcript"] is None for row in rows(out).values())


def test_when_no_video_can_run_nothing_starts(models, tmp_path):
    manifest = tmp_path / "list.jsonl"
    manifest.write_text('{"video_uid": "a", "uri": "a.mp4"}\n{"video_uid": "b", "uri": "/nowhere/b.mp4"}\n')
    run = a100m_run(str(manifest), "--out", str(tmp_path / "out"), "--models", models)
    terminal, snapshots = watch_services(run)
    assert run.returncode == 2, terminal
    assert set().union(*snapshots) == set() and "starting the services" not in terminal
    last = terminal.strip().splitlines()[-1]
    assert last == "error: no video left to run: all 2 failed at plan (listed above); nothing was started"
    assert not (tmp_path / "out").exists()  # a refused run leaves no folder behind
    (tmp_path / "mine").mkdir()
    again = a100m_run(str(manifest), "--out", str(tmp_path / "mine"), "--models", models)
    watch_services(again)
    assert again.returncode == 2 and (tmp_path / "mine").is_dir()  # a folder the user made stays
