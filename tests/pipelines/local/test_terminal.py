"""`a100m run` as a user sees it in a real terminal (`script` gives it a pseudo-terminal), started
from a folder that is not the project: the bars are drawn while the run goes, and it succeeds."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from action100m.devtools.synthetic_video import write_video

from ...refiners import REFINER_WITHOUT_VLLM

pytestmark = pytest.mark.slow


def test_the_bars_move_in_a_real_terminal_from_any_folder(tiny_models, tmp_path):
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    videos = [
        write_video(tmp_path / f"clip{i}.mp4", frames=60, fps=25, size=(96, 64), scene_starts=(0, 30)) for i in range(3)
    ]
    models = next(iter(tiny_models.values())).parent
    command = [sys.executable, "-m", "action100m.cli", "run", *map(str, videos), "--out", str(tmp_path / "out")]
    command += ["--models", str(models), "--shard-size", "1"]
    env = {**os.environ, **REFINER_WITHOUT_VLLM, "A100M_REFINER_MAX_OUTPUT_TOKENS": "24", "TERM": "xterm-256color"}
    env.pop("A100M_REFINER_PYTHON", None)
    done = subprocess.run(
        ["script", "-qefc", shlex.join(command), "/dev/null"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    screen = done.stdout
    assert done.returncode == 0, screen[-3000:]
    assert "videos: 3 done, 0 failed of 3" in screen
    redraws = screen.count("\x1b[")
    assert redraws > 30, f"{redraws} escape sequences: the bars were not drawn while the run went"
    refine = set(re.findall(r"refine[^\n\r]*?(\d)/3", screen))
    assert {"0", "3"} <= refine and len(refine) >= 3, refine  # the refine bar moved through its counts
    # the work inside a stage, from the captioner's counters (2.4 s videos have no segment to annotate)
    assert re.search(r"captions \d+/\d+", screen)
    log = (tmp_path / "out" / "logs" / "pipeline.log").read_text()
    assert "==== a100m run " in log and "\x1b[" not in log  # the tasks' log: plain text, a header per run
    assert "Cleaned up workspace" not in screen  # kfp.local's own lines stay in the log
