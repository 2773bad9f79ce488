"""`a100m run` as a user runs it: progress that tells the truth, and a rerun with nothing to do."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from action100m.devtools.synthetic_video import write_video

from ...support import need_vllm_env

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def a100m_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "action100m.cli", "run", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def test_progress_counts_this_runs_videos_and_a_finished_rerun_starts_nothing(tiny_models, tmp_path):
    vllm = need_vllm_env()
    videos = [
        write_video(tmp_path / f"clip{i}.mp4", frames=60, fps=25, size=(96, 64), scene_starts=(0, 30)) for i in range(3)
    ]
    out, models = tmp_path / "out", str(next(iter(tiny_models.values())).parent)
    common = ["--out", str(out), "--models", models, "--refiner-python", str(vllm), "--shard-size", "2"]

    first = a100m_run(*map(str, videos), *common)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    lines = [line for line in first.stdout.splitlines() if line.startswith("  progress:")]
    assert lines, first.stdout
    # every line knows the total, and no count ever exceeds it (only this run's videos, current fingerprints)
    for line in lines:
        counts = re.findall(r"\b(?:embed|segment|caption|refine) (\d+)/([^\s,]+)", line)
        assert len(counts) == 4, line
        for done, total in counts:
            assert total == "3" and int(done) <= 3, line
    assert re.search(r"refine 3/3", lines[-1]), first.stdout
    assert "videos: 3 done, 0 failed of 3" in first.stdout
    assert sorted(p.name for p in (out / "dataset" / "data").iterdir()) == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    logs = {p.name: p.stat().st_mtime_ns for p in (out / "logs").iterdir()}

    again = a100m_run(*map(str, videos), *common)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.startswith("nothing to do: all 3 videos are published"), again.stdout
    assert "starting the services" not in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (out / "logs").iterdir()} == logs  # no service ran
