"""The `a100m` command: help on every subcommand, validate, build-tiny."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time

import pytest

from action100m.cli import build_parser, main


def a100m(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "action100m.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )


def _subcommand_paths(parser, prefix=()):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _subcommand_paths(sub, (*prefix, name))


def test_help_lists_subcommands_and_every_subcommand_has_help():
    top = a100m("--help")
    assert top.returncode == 0 and "validate" in top.stdout and "models" in top.stdout
    paths = list(_subcommand_paths(build_parser()))
    assert ("models", "build-tiny") in paths
    for path in paths:
        with pytest.raises(SystemExit) as done:
            main([*path, "--help"])
        assert done.value.code == 0


def test_validate_accepts_a_release_file(release_file):
    done = a100m("validate", str(release_file))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "checked 1 video(s) in 1 file(s): OK" in done.stderr


def test_validate_prints_each_violation_and_fails(release_file, tmp_path):
    data = json.loads(release_file.read_text())
    uid = data["video_uid"][0]
    data["video_uid"][0] = f"{uid}-copy"  # the broken copy is another video
    broken = copy.deepcopy(data)
    nodes = broken["nodes"][0]
    nodes[0]["llama3_caption"] = "not on a root"
    nodes[2]["level"] = 5
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    done = a100m("validate", str(release_file), str(path))
    assert done.returncode == 1
    root_id, bad_level_id = nodes[0]["node_id"], nodes[2]["node_id"]
    assert f"{path}: video={uid}-copy node={root_id} [llama3_caption]" in done.stdout
    assert f"{path}: video={uid}-copy node={bad_level_id} [level]" in done.stdout
    assert "checked 2 video(s) in 2 file(s): " in done.stderr and "problem(s)" in done.stderr


def test_validate_reads_parquet_too(release_file, tmp_path):
    from action100m.common.release import read_rows, write_parquet

    path = write_parquet(read_rows(release_file), tmp_path / "sample.parquet")
    assert main(["validate", str(path)]) == 0


def test_validate_reports_an_unreadable_file(tmp_path):
    path = tmp_path / "garbage.json"
    path.write_text("{not json")
    done = a100m("validate", str(path))
    assert done.returncode == 1 and f"{path}: not a release file (not JSON or parquet" in done.stdout


def test_build_tiny_writes_four_loadable_models_offline(tmp_path):
    done = a100m("models", "build-tiny", str(tmp_path / "m"))
    assert done.returncode == 0, done.stderr
    for role in ("vjepa2", "perception_lm", "mllama", "gpt_oss"):
        assert f"{role}: {tmp_path / 'm' / role}" in done.stdout
        assert (tmp_path / "m" / role / "config.json").exists()
        assert list((tmp_path / "m" / role).glob("*.safetensors"))


def test_validate_finds_a_video_in_two_files_and_names_a_non_release_file(tmp_path):
    from action100m.common.release import write_parquet

    row = {
        "video_uid": "v",
        "metadata": None,
        "nodes": [{"node_id": "r", "parent_id": None, "level": 0, "start": 0.0, "end": 3.0}],
    }
    write_parquet([row], tmp_path / "a.parquet")
    write_parquet([row], tmp_path / "b.parquet")
    (tmp_path / "report.json").write_text(json.dumps({"run": "x", "videos": 1, "done": ["v"]}))
    done = a100m("validate", str(tmp_path / "a.parquet"), str(tmp_path / "report.json"), str(tmp_path / "b.parquet"))
    assert done.returncode == 1
    assert f"{tmp_path / 'b.parquet'}: video v appears twice (also in {tmp_path / 'a.parquet'})" in done.stdout
    assert f"{tmp_path / 'report.json'}: not a release file: row 1 needs a video_uid and a list of nodes" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert "checked 2 video(s) in 3 file(s): 2 problem(s)" in done.stderr


def test_validate_checks_every_file_against_the_release_schema_without_a_traceback(release_file, tmp_path):
    """A wrong value, a wrong Arrow schema, garbage: each is a line naming its file, and the files
    after them are still checked."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from action100m.common.release import read_rows

    bad_value = tmp_path / "bad_value.json"
    bad_value.write_text(json.dumps({"video_uid": "a", "nodes": [{"node_id": "x", "level": "zero", "start": "a"}]}))
    wrong_types = tmp_path / "float64.parquet"  # what pandas or a hand-made table gives: float64 times, int64 level
    rows = read_rows(release_file)
    pq.write_table(
        pa.Table.from_pylist([{"video_uid": r["video_uid"], "nodes": r["nodes"]} for r in rows]), wrong_types
    )
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet")

    done = a100m("validate", str(bad_value), str(wrong_types), str(garbage), str(release_file))
    out = done.stdout
    assert done.returncode == 1 and "Traceback" not in out + done.stderr
    assert f"{bad_value}: row 1 (video a) does not fit the release schema: Could not convert 'zero'" in out
    assert f"{wrong_types}: schema: column metadata is missing" in out
    assert f"{wrong_types}: schema: nodes.start: double, the release has float" in out
    assert f"{wrong_types}: schema: nodes.level: int64, the release has int16" in out
    assert f"{garbage}: schema: not a readable parquet file" in out
    assert str(release_file) not in out  # checked after the bad ones, and fine
    assert "in 4 file(s)" in done.stderr


def test_a_second_viewer_takes_a_free_port_and_says_so(tmp_path):
    import socket

    from action100m.cli.view import DEFAULT_PORT, free_port

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        other = free_port("127.0.0.1", busy)
        assert other != busy
    assert free_port("127.0.0.1", other) == other  # free again once the other one is gone
    assert DEFAULT_PORT == 8765


def test_view_of_a_video_folder_that_does_not_exist_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "action100m.cli", "view", str(tmp_path), "--videos", str(tmp_path / "nope_dir")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stderr.strip() == f"error: --videos {tmp_path / 'nope_dir'}: no such folder"


def test_stats_into_a_closed_pipe_is_quiet(tmp_path, release_file):
    command = f"{sys.executable} -m action100m.cli stats {release_file} {release_file} | head -1"
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr


def test_render_prompt_says_a_missing_node_before_loading_any_tokenizer(release_file):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "action100m.cli", "refiner", "render-prompt", str(release_file)]
    command += ["--video-uid", "nope", "--node-id", "x", "--tokenizer", "openai/gpt-oss-120b"]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1 and "no video 'nope'" in done.stderr and time.monotonic() - started < 30


def test_render_prompt_without_a_reachable_tokenizer_is_one_line(release_file):
    from action100m.common.release import read_rows

    row = next(iter(read_rows(str(release_file))))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "action100m.cli", "refiner", "render-prompt", str(release_file)]
    command += [
        "--video-uid",
        row["video_uid"],
        "--node-id",
        row["nodes"][0]["node_id"],
        "--tokenizer",
        "no/such-model",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: cannot load the tokenizer 'no/such-model'") and line.endswith("--tokenizer DIR")
