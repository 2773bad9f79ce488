"""The `a100m` command: help on every subcommand, validate, build-tiny."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

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


def test_validate_accepts_the_released_sample(released_sample):
    done = a100m("validate", str(released_sample))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "checked 1 video(s) in 1 file(s): OK" in done.stderr


def test_validate_prints_each_violation_and_fails(released_sample, tmp_path):
    data = json.loads(released_sample.read_text())
    broken = copy.deepcopy(data)
    nodes = broken["nodes"][0]
    nodes[0]["llama3_caption"] = "not on a root"
    nodes[2]["level"] = 5
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    done = a100m("validate", str(released_sample), str(path))
    assert done.returncode == 1
    root_id, bad_level_id = nodes[0]["node_id"], nodes[2]["node_id"]
    assert f"{path}: video=hySSAAw4t24 node={root_id} [llama3_caption]" in done.stdout
    assert f"{path}: video=hySSAAw4t24 node={bad_level_id} [level]" in done.stdout
    assert "checked 2 video(s) in 2 file(s): " in done.stderr and "violation(s)" in done.stderr


def test_validate_reads_parquet_too(released_sample, tmp_path):
    from action100m.common.release import read_rows, write_parquet

    path = write_parquet(read_rows(released_sample), tmp_path / "sample.parquet")
    assert main(["validate", str(path)]) == 0


def test_validate_reports_an_unreadable_file(tmp_path):
    path = tmp_path / "garbage.json"
    path.write_text("{not json")
    done = a100m("validate", str(path))
    assert done.returncode == 1 and "cannot read" in done.stderr


def test_build_tiny_writes_four_loadable_models_offline(tmp_path):
    done = a100m("models", "build-tiny", str(tmp_path / "m"))
    assert done.returncode == 0, done.stderr
    for role in ("vjepa2", "perception_lm", "mllama", "gpt_oss"):
        assert f"{role}: {tmp_path / 'm' / role}" in done.stdout
        assert (tmp_path / "m" / role / "config.json").exists()
        assert list((tmp_path / "m" / role).glob("*.safetensors"))
