"""The benchmarks still run and print their --json rows (tiny sizes; no timing is asserted)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run_json(script: str, *args: str) -> list[dict]:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--json", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["rows"]


def test_segmenter_benchmark_rows():
    rows = run_json("segmenter.py", "--frames", "300", "1200")
    assert [r["frames"] for r in rows] == [300, 1200]
    assert all(r["nodes"] >= 1 and r["share_of_embedder"] > 0 for r in rows)


def test_embedder_benchmark_rows():
    rows = run_json("embedder.py", "--minutes", "0.2", "--sweep", "--size", "96", "64")
    assert [r["path"] for r in rows] == ["decode only", "encode only", "overlapped"]
    overlapped = rows[-1]
    assert overlapped["decoded_per_sampled"] == 4.0
    assert overlapped["windows"] == 5 and {"decode_s", "encode_s", "wall_s"} <= set(overlapped)


def test_captioner_benchmark_rows():
    rows = run_json("captioner.py", "--minutes", "0.2", "--sample", "3", "--size", "96", "64")
    one_pass, per_node = rows
    assert one_pass["path"] == "one pass" and one_pass["frames_decoded"] <= 360
    assert per_node["frames_decoded"] > one_pass["frames_decoded"]


def test_transcriber_benchmark_rows():
    if shutil.which("espeak-ng") is None:
        pytest.skip("no espeak-ng here to say the benchmark's sentences")
    rows = run_json("transcriber.py", "--clips", "2", "--minutes", "0.5", "--sweep", "0.5", "1")
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    assert engines[-1] == "transformers tiny random" and len(engines) == 2  # and the real tiny.en (dev extra)
    for engine in engines:
        one, batched, plain = [r for r in rows if r["engine"] == engine and r["path"] != "length sweep"]
        assert (one["path"], batched["path"], plain["path"]) == ("one at a time", "batched", "no VAD")
        assert one["audio_s"] == batched["audio_s"] == plain["audio_s"] == pytest.approx(60, abs=0.1)
        assert one["batches"] == 2 and batched["batches"] == 1  # two clips' windows share one batch
        assert 0.3 < batched["speech_s"] / batched["audio_s"] < 0.7  # half silence, and the detector hears it
        assert plain["speech_s"] == pytest.approx(plain["audio_s"])  # without it, silence is read too
    real = [r for r in rows if r["engine"] == engines[0] and r["path"] == "batched"]
    assert real[0]["wer"] is not None and real[0]["wer"] <= 0.35  # real words, heard
    sweep = [r for r in rows if r["path"] == "length sweep"]
    assert [r["minutes_each"] for r in sweep] == [0.5, 1] and sweep[-1]["audio_s"] == pytest.approx(60, abs=0.1)


def test_viewer_search_benchmark_rows():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("no chromium / chromedriver here (.ci/run installs them with apt where it can)")
    rows = run_json("viewer_search.py", "--videos", "30", "--nodes-per-video", "40", "--repeats", "1")
    assert [(r["index"], r["hit in"]) for r in rows] == [
        ("one file (baseline)", "first video"),
        ("one file (baseline)", "last video"),
        ("parts of 20,000 nodes", "first video"),
        ("parts of 20,000 nodes", "last video"),
    ]
    assert all(r["first_hit_ms"] > 0 and r["js_heap_mb"] > 0 for r in rows)


@pytest.mark.vllm
@pytest.mark.slow
def test_gpu_check_runs_every_stage_in_its_own_service_at_tiny_shapes():
    """The GPU check on this machine's CPU: each service started alone (the refiner with vLLM),
    one video then all, its peak memory beside the plan's prediction."""
    rows = run_json("gpu_check.py", "--shapes", "tiny", "--videos", "2", "--seconds", "4")
    assert [r["service"] for r in rows] == ["transcriber", "embedder", "segmenter", "captioner", "refiner"]
    assert all(r["videos_failed"] == 0 and r["peak_gib"] > 0 and r["first_s"] > 0 for r in rows)
    assert all(
        r["throughput"] > 0 for r in rows if r["service"] != "transcriber"
    )  # silence-free speech needs espeak-ng
    gpu_services = {r["service"]: r["plan_gib"] for r in rows if r["plan_gib"] is not None}
    assert set(gpu_services) == {"transcriber", "embedder", "captioner", "refiner"}


def test_sampling_benchmark_rows():
    rows = run_json("sampling.py", "--sizes", "2000", "20000", "--k", "20")
    assert [r["segments"] for r in rows] == [2000, 20000]
    assert all(0 < r["unique_texts"] < r["segments"] and r["peak_rss_mib"] > 0 for r in rows)
    assert rows[1]["unique_texts"] > rows[0]["unique_texts"] and rows[1]["segments_over_first"] == 10
