"""What `a100m run` decides before any service starts: the manifest, the uids, the roots it may read;
and how it says a failure: one line, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from action100m.common.store import ArtifactStore
from action100m.pipelines.local.context import (
    RunSettings,
    input_roots,
    read_roots,
    settle,
    video_inputs,
    write_manifest,
)
from action100m.pipelines.local.kfp_driver import pipeline_failure
from action100m.pipelines.local.record import run_key
from action100m.pipelines.plan import plan_run


def a100m_run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "action100m.cli", "run", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def test_a_manifest_that_cannot_be_planned_stops_the_run_in_one_line_before_any_service(tmp_path):
    (tmp_path / "v.mp4").write_bytes(b"video")
    cases = {
        "twice.jsonl": (
            b'{"video_uid": "a", "uri": "v.mp4"}\n{"video_uid": "a", "uri": "v.mp4"}\n',
            "video_uid 'a' appears on lines 1 and 2",
        ),
        "latin1.jsonl": (
            b'{"video_uid": "a", "uri": "v.mp4"}\n{"video_uid": "caf\xe9", "uri": "v.mp4"}\n',
            "line 2 is not UTF-8 text",
        ),
        "rows.jsonl": (b'{"video_uid": "a"}\n', "line 1 needs 'video_uid' and 'uri'"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        started = time.monotonic()
        done = a100m_run(str(tmp_path / name), "--out", str(tmp_path / f"out-{name}"))
        assert done.returncode == 2, done.stdout + done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
        assert "Traceback" not in done.stdout + done.stderr and "starting the services" not in done.stdout
        assert not (tmp_path / f"out-{name}" / "logs").exists()
        assert time.monotonic() - started < 60


def test_files_with_the_same_name_get_distinct_uids(tmp_path):
    for folder in ("A", "B"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "clip.mp4").write_bytes(folder.encode())
    store = ArtifactStore([f"file://{tmp_path}"])
    manifest = f"file://{tmp_path}/art/inputs/manifest.jsonl"
    write_manifest(store, [str(tmp_path / "A" / "clip.mp4"), str(tmp_path / "B" / "clip.mp4")], manifest)
    rows = [json.loads(line) for line in store.get_bytes(manifest).decode().splitlines()]
    assert [r["video_uid"] for r in rows] == ["A/clip", "B/clip"]


def test_the_videos_a_manifest_names_are_readable_where_they_are_within_what_the_user_allows(tmp_path):
    elsewhere, forbidden = tmp_path / "elsewhere", tmp_path / "forbidden"
    for folder in (elsewhere, forbidden):
        folder.mkdir()
        (folder / "v.mp4").write_bytes(b"video")
    videos = [
        {"uri": f"file://{elsewhere}/v.mp4"},
        {"uri": f"file://{forbidden}/v.mp4"},
        {"uri": "s3://bucket/x/v.mp4"},
    ]
    manifest = f"file://{tmp_path}/lists/m.jsonl"
    assert input_roots([], manifest) == [f"file://{tmp_path}/lists"]
    by_default = read_roots(videos, allowed=None)
    assert by_default == [f"file://{elsewhere}", f"file://{forbidden}", "s3://bucket"]
    limited = [*input_roots([], manifest), *read_roots(videos, allowed=str(elsewhere))]
    assert limited == [f"file://{tmp_path}/lists", f"file://{elsewhere}"]

    # planning with the limited roots: the video outside them fails alone, with the reason
    (tmp_path / "lists").mkdir()
    rows = [{"video_uid": "ok", "uri": videos[0]["uri"]}, {"video_uid": "no", "uri": videos[1]["uri"]}]
    (tmp_path / "lists" / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = ArtifactStore([f"file://{tmp_path}/art"], read_only_roots=limited)
    shard = plan_run(store, manifest, f"file://{tmp_path}/art", 4).shard(store, 0, f"file://{tmp_path}/art")
    assert [v.video_uid for v in shard.active()] == ["ok"]
    assert (
        shard.failed["no"].code == "INVALID_ARGUMENT"
        and "outside the configured artifact roots" in shard.failed["no"].reason
    )


def test_a_failed_pipeline_is_told_by_its_last_error_line(tmp_path):
    log = tmp_path / "pipeline.log"
    log.write_text(
        "Executing task 'export-shard'\n"
        "Traceback (most recent call last):\n"
        '  File "/x/export.py", line 9, in export_shard\n'
        "    store.put_bytes(staged, data)\n"
        "OSError: [Errno 28] No space left on device: '/out/dataset/.staging/r/data/train-00000-of-00001.parquet'\n"
        "Task 'export-shard' finished with status FAILURE\n"
    )
    assert pipeline_failure(log).startswith("OSError: [Errno 28] No space left on device")


def test_a_failed_pipeline_is_told_by_the_failing_steps_own_error_not_kfps_wrapper(tmp_path):
    """As kfp.local writes it: the step's traceback indented under its task, then the driver's own
    "Inner task failed". Before: the user saw only the latter."""
    log = tmp_path / "pipeline.log"
    log.write_text(
        "19:56:07.100 - INFO - Executing task 'publish-dataset'\n"
        "    Traceback (most recent call last):\n"
        '      File "/x/export.py", line 114, in check_claim\n'
        "        raise PublicationRefused(\n"
        "    action100m.pipelines.export.PublicationRefused: file:///out/dataset: run b holds this dataset now\n"
        "    \n"
        "19:56:07.593 - ERROR - Task 'publish-dataset' finished with status FAILURE\n"
        "Traceback (most recent call last):\n"
        '  File "/x/kfp_driver.py", line 160, in main\n'
        "    raise RuntimeError(msg)\n"
        "RuntimeError: Pipeline 'action100m' finished with status FAILURE. Inner task failed: 'publish-dataset'.\n"
    )
    assert pipeline_failure(log) == (
        "action100m.pipelines.export.PublicationRefused: file:///out/dataset: run b holds this dataset now"
    )


def test_a_video_edited_in_place_is_never_taken_as_done(tmp_path):
    """`a100m run` skips a rerun only when its key matches; the key holds every video's signature."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"first take")
    settings = RunSettings(models_dir=str(tmp_path / "models"), env={})
    run = settle([str(video)], str(tmp_path / "out"), settings)
    key = run_key(run)
    assert run_key(settle([str(video)], str(tmp_path / "out"), settings)) == key
    video.write_bytes(b"second, longer take")
    assert run_key(run) != key


def test_a_subtitle_file_added_or_edited_beside_a_video_is_not_taken_as_done(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"a take")
    settings = RunSettings(models_dir=str(tmp_path / "models"), env={})
    run = settle([str(video)], str(tmp_path / "out"), settings)
    without = run_key(run)
    (tmp_path / "clip.en.vtt").write_text("WEBVTT\n\n00:01.000 --> 00:02.000\nhello\n")
    added = run_key(run)
    (tmp_path / "clip.en.vtt").write_text("WEBVTT\n\n00:01.000 --> 00:02.000\nhello again\n")
    assert len({without, added, run_key(run)}) == 3


def test_a_run_settles_its_roots_as_values_and_keeps_the_environments(tmp_path):
    """What the services and the DAG's tasks get: the roots in the environment kept, the run's own
    added; the process environment itself is never written."""
    import os

    video = tmp_path / "videos" / "clip.mp4"
    video.parent.mkdir()
    video.write_bytes(b"video")
    before = dict(os.environ)
    env = {"A100M_ALLOWED_ROOTS": "s3://shared", "A100M_READ_ONLY_ROOTS": "file:///data"}
    run = settle([str(video)], str(tmp_path / "out"), RunSettings(models_dir=str(tmp_path / "models"), env=env))
    assert dict(os.environ) == before
    out = f"file://{tmp_path}/out"
    assert run.allowed_roots == ("s3://shared", f"{out}/artifacts", f"{out}/dataset")
    assert run.read_only_roots == ("file:///data", f"file://{tmp_path}/videos")
    assert run.step_env() == {
        "A100M_ALLOWED_ROOTS": f"s3://shared,{out}/artifacts,{out}/dataset",
        "A100M_READ_ONLY_ROOTS": f"file:///data,file://{tmp_path}/videos",
    }
    assert run.service_env()["A100M_REFINER_MODEL"] == str(tmp_path / "models" / "gpt_oss")
    assert [v["video_uid"] for v in run.videos] == ["clip"]
    assert run.store.exists(f"file://{video}")


def test_a_users_setting_beats_the_presets_and_a_bad_one_stops_the_run_before_any_service(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"video")
    env = {"A100M_CAPTION_BATCH_SIZE": "2"}
    run = settle([str(video)], str(tmp_path / "out"), RunSettings(models_dir=str(tmp_path / "models"), env=env))
    assert run.preset_env["A100M_CAPTION_BATCH_SIZE"] == "16"  # the tiny preset's
    assert run.overridden() == {"A100M_CAPTION_BATCH_SIZE": "2"}
    assert run.service_env()["A100M_CAPTION_BATCH_SIZE"] == "2"

    for variable, value, says in (
        ("A100M_CAPTION_BATCH_SIZE", "abc", "error: A100M_CAPTION_BATCH_SIZE='abc': expected an integer"),
        ("A100M_MAX_CONCURRENT", "0", "error: A100M_MAX_CONCURRENT='0': must be in [1, 1024]"),
    ):
        done = a100m_run(
            str(video), "--out", str(tmp_path / "out"), "--models", str(tmp_path / "models"), env={variable: value}
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.strip().splitlines() == [says] and "starting the services" not in done.stdout


def test_a_second_run_into_a_folder_in_use_stops_at_once_naming_the_first(tmp_path):
    from action100m.pipelines.local.lock import output_lock

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"video")
    out = tmp_path / "out"
    with output_lock(out):
        started = time.monotonic()
        done = a100m_run(str(video), "--out", str(out), "--models", str(tmp_path / "models"))
        assert time.monotonic() - started < 30
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {out} is in use by another a100m run (pid {os.getpid()}, started ")
    assert line.endswith("wait for it to finish, or use another --out")
    assert not (out / "logs").exists()


def test_the_inputs_of_two_runs_never_share_a_manifest(tmp_path):
    from action100m.pipelines.local.context import input_manifest

    one, two = (
        [str(tmp_path / "v1.mp4"), str(tmp_path / "v2.mp4")],
        [str(tmp_path / "v2.mp4"), str(tmp_path / "v3.mp4")],
    )
    assert input_manifest("file:///a", one) != input_manifest("file:///a", two)
    assert input_manifest("file:///a", one) == input_manifest("file:///a", list(one))  # the same inputs: one file


def test_bad_uris_in_a_manifest_do_not_refuse_the_run_and_s3_needs_a_store(tmp_path):
    """Rows naming http://, '..', another host or s3:// without an S3 store are left for planning
    to fail one by one; the run itself is settled. A relative path is the manifest's folder's."""
    video = tmp_path / "v.mp4"
    video.write_bytes(b"video")
    rows = [
        {"video_uid": "good", "uri": f"file://{video}"},
        {"video_uid": "web", "uri": "http://example.com/v.mp4"},
        {"video_uid": "relative", "uri": "v.mp4"},
        {"video_uid": "dots", "uri": "file:///data/../etc/v.mp4"},
        {"video_uid": "otherhost", "uri": "file://otherhost/v.mp4"},
        {"video_uid": "bucket", "uri": "s3://bucket/v.mp4"},
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = settle([str(manifest)], str(tmp_path / "out"), RunSettings(models_dir=str(tmp_path / "models"), env={}))
    assert run.read_only_roots == (f"file://{tmp_path}",)  # the manifest's folder (the good video's too)
    shard = plan_run(run.store, run.manifest, run.artifact_prefix, 10).shard(run.store, 0, run.artifact_prefix)
    assert [v.video_uid for v in shard.active()] == ["good", "relative"]
    assert shard.active()[1].uri == f"file://{video}"
    assert "outside the configured artifact roots" in shard.failed["bucket"].reason  # no S3 store: not reachable


def test_every_missing_input_is_listed_at_once_before_any_service(tmp_path):
    real = tmp_path / "real.mp4"
    real.write_bytes(b"video")
    started = time.monotonic()
    done = a100m_run(str(real), str(tmp_path / "nope.mp4"), str(tmp_path / "gone.mp4"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and time.monotonic() - started < 30
    assert done.stderr.splitlines() == [
        "error: 2 of the inputs do not exist or cannot be read (nothing was started):",
        f"  {tmp_path / 'nope.mp4'}",
        f"  {tmp_path / 'gone.mp4'}",
    ]
    assert "starting the services" not in done.stdout


def test_a_folder_stands_for_its_videos_and_recursive_for_its_subfolders_videos(tmp_path):
    for name in ("b.mp4", "a.MKV", "notes.txt", "clip.vtt", "deeper/c.webm"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert video_inputs([str(tmp_path)]) == [str(tmp_path / "a.MKV"), str(tmp_path / "b.mp4")]
    assert video_inputs([str(tmp_path)], recursive=True)[-1] == str(tmp_path / "deeper" / "c.webm")
    assert video_inputs(["s3://bucket/clip.mp4", str(tmp_path / "b.mp4")]) == [
        "s3://bucket/clip.mp4",
        str(tmp_path / "b.mp4"),
    ]
    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError, match=r"no video files .* \(--recursive looks in its subfolders too\)"):
        video_inputs([str(tmp_path / "empty")])


def test_an_output_that_cannot_be_written_or_is_the_input_stops_at_once_in_one_line(tmp_path, synthetic_release):
    """`--out` on a read-only place, and `--from OUT --out OUT` (before: all the work, then publication refused)."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"video")
    blocked = tmp_path / "a-file"  # a folder cannot be made under a file (as under a read-only mount)
    blocked.write_text("not a folder")
    done = a100m_run(str(video), "--out", str(blocked / "out"))
    assert done.returncode == 2 and done.stderr.splitlines() == [
        f"error: --out {blocked / 'out'}: cannot write there (Not a directory)"
    ]
    out = tmp_path / "out"
    (out / "dataset" / "data").mkdir(parents=True)
    import shutil

    shutil.copy(synthetic_release, out / "dataset" / "data" / "train.json")
    done = a100m_run("--from", str(out), "--out", str(out))
    assert done.returncode == 2 and "is this run's own output (--out" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
