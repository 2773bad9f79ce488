"""`a100m run --from DATASET --stages refine`: re-annotating a release with the tiny GPT-OSS (the
session's vLLM refiner), no other service started, every upstream field kept byte for byte."""

from __future__ import annotations

import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from action100m.common.release import read_rows, write_json

from ...support import watch_services

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
KEPT = ("node_id", "parent_id", "level", "start", "end", "plm_caption", "plm_action", "llama3_caption")
DEPTH = 4  # the release's tree cut here: a few dozen segments prove what all 917 nodes did, minutes faster


@pytest.fixture
def cut_release(release_file, tmp_path):
    """The release file's video with its tree cut at DEPTH: deeper nodes dropped, the nodes at DEPTH
    now leaves (so without gpt). Still a release row by every rule, with far fewer segments."""
    (row,) = read_rows(release_file)
    nodes = [dict(node) for node in row["nodes"] if node["level"] <= DEPTH]
    for node in nodes:
        if node["level"] == DEPTH:
            node["gpt"] = None
    return write_json([{**row, "nodes": nodes}], tmp_path / f"cut-{release_file.stem}.json")


def a100m(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "action100m.cli", *args], capture_output=True, text=True, timeout=900)


def test_refine_only_from_a_release_starts_nothing_else_and_keeps_every_upstream_field(
    cut_release, vllm_refiner, tiny_models, tmp_path
):
    release_file = cut_release
    out = tmp_path / "out"
    command = [sys.executable, "-m", "action100m.cli", "run", "--from", str(release_file), "--stages", "refine"]
    command += ["--out", str(out), "--models", str(tiny_models["gpt_oss"].parent)]
    command += ["--services", f"refine={vllm_refiner.address}"]
    started = time.monotonic()
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    terminal, snapshots = watch_services(run)
    assert run.returncode == 0, terminal[-4000:]
    print(f"refine-only run: {time.monotonic() - started:.0f} s")
    assert set().union(*snapshots) == set()  # no embedder, segmenter or captioner (the refiner given was used)
    assert "refiner (already running)" in terminal and "progress: refine" in terminal
    (source,) = read_rows(release_file)
    (row,) = pq.read_table(next((out / "dataset" / "data").glob("*.parquet"))).to_pylist()
    assert row["video_uid"] == source["video_uid"] and row["metadata"] == source["metadata"]
    assert [[n[k] for k in KEPT] for n in row["nodes"]] == [[n[k] for k in KEPT] for n in source["nodes"]]
    eligible = {n["node_id"] for n in source["nodes"] if n["gpt"] is not None}  # the release annotates exactly those
    assert {n["node_id"] for n in row["nodes"] if n["gpt"] is not None} == eligible
    card = (out / "dataset" / "README.md").read_text()
    assert "## Where the fields came from" in card and "| gpt | refine | this run |" in card
    checked = a100m("validate", *map(str, (out / "dataset" / "data").glob("*.parquet")), "--strict-ids")
    assert checked.returncode == 0 and checked.stderr.strip().endswith("OK"), checked.stdout + checked.stderr
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and rerun.stdout.startswith("nothing to do"), rerun.stdout + rerun.stderr
