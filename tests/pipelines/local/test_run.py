"""`a100m run` schedules on this CPU, with the tiny models: together with GPUs assigned from the plan
and one service already running, then stage by stage; the datasets are byte-identical.

Without CUDA the GPU numbers are only assigned, not used (the tiny preset runs on the CPU): what is
checked is that each service gets the GPUs the plan gives it, in its environment and in its Info.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import json_format

from action100m.common.grpc_client import open_channel
from action100m.devtools.synthetic_video import write_video
from action100m.pipelines.local.presets import preset_env
from action100m.pipelines.memory.facts import GIB
from action100m.pipelines.memory.plan import plan_memory
from action100m.pipelines.registry import BY_SERVICE, STAGES
from action100m.v1 import common_pb2

from ...refiners import REFINER_WITHOUT_VLLM
from ...support import free_port, watch_services

pytestmark = pytest.mark.slow
SERVICES = {spec.service for spec in STAGES}


def a100m_run(videos: list[Path], out: Path, models: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "action100m.cli", "run", *map(str, videos), "--out", str(out)]
    command += ["--models", str(models), "--shard-size", "1", *extra]
    env = {**os.environ, **REFINER_WITHOUT_VLLM}  # the schedule is what is tested, not the engine
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env)


def dataset(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "dataset" / "data").glob("*.parquet"))}


@pytest.fixture(scope="module")
def inputs(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("schedule-videos")
    videos = [
        write_video(folder / f"clip{i}.mp4", frames=60, fps=25, size=(96, 64), scene_starts=(0, 30)) for i in (0, 1)
    ]
    return videos, next(iter(tiny_models.values())).parent


@pytest.fixture(scope="module")
def embedder_elsewhere(inputs, tmp_path_factory):
    """An embedder started by hand (as on a GPU box or a cluster), for `--services embed=...`."""
    _, models = inputs
    root = tmp_path_factory.getbasetemp()
    port = free_port()
    log = root / "embedder-elsewhere.log"
    env = {
        **os.environ,
        "A100M_PORT": str(port),
        "A100M_METRICS_PORT": "-1",
        "A100M_ALLOWED_ROOTS": f"file://{root}",
        "A100M_EMBEDDER_MODEL": str(models / "vjepa2"),
        "A100M_DEVICE": "cpu",
    }
    with open(log, "w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "action100m.embedder"], env=env, stdout=sink, stderr=sink)
    try:
        yield f"127.0.0.1:{port}", log
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="module")
def together(inputs, embedder_elsewhere, tmp_path_factory):
    """A together run over two GPUs (assigned from the plan) using the embedder already running;
    while it runs, each service it started is asked for its Info."""
    videos, models = inputs
    address, _ = embedder_elsewhere
    out = tmp_path_factory.mktemp("together")
    run = a100m_run(videos, out, models, "--gpus", "0,1", "--gpu-memory-gib", "8", "--services", f"embed={address}")
    lines, runtimes = [], {}
    assert run.stdout is not None
    for line in run.stdout:
        lines.append(line)
        ready = re.match(r"\s+(\w+) ready on (\S+)", line)
        if ready:
            with open_channel(ready.group(2)) as channel:
                info = BY_SERVICE[ready.group(1)].stub(channel).Info(common_pb2.InfoRequest(), timeout=60)
            runtimes[ready.group(1)] = json_format.MessageToDict(info.runtime)
    assert run.wait(900) == 0, "".join(lines)[-4000:]
    return out, "".join(lines), runtimes


def test_gpus_from_the_plan_reach_each_service_and_a_running_service_is_used(together, inputs, embedder_elsewhere):
    out, terminal, runtimes = together
    _, models = inputs
    _, embedder_log = embedder_elsewhere
    assert "embedder (already running) on" in terminal and "schedule: together" in terminal
    assert not (out / "logs" / "embedder.log").exists()  # not started: the one given was used
    assert all((out / "logs" / f"{name}.log").exists() for name in ("transcriber", "segmenter", "captioner", "refiner"))
    assert re.search(r"Embed code=OK videos=", embedder_log.read_text())
    plan = plan_memory({**os.environ, **preset_env("tiny", models)}, [0, 1], 8 * GIB, elsewhere=["embedder"])
    planned = {p.service: p.env for p in plan.schedule.placements}
    assert set(planned) == {"transcriber", "captioner", "refiner"}
    for service, env in planned.items():
        assert {k: runtimes[service][k] for k in env} == env  # CUDA_VISIBLE_DEVICES and its memory share
    assert runtimes["captioner"]["CUDA_VISIBLE_DEVICES"] != runtimes["refiner"]["CUDA_VISIBLE_DEVICES"]
    assert "CUDA_VISIBLE_DEVICES" not in runtimes["segmenter"]  # no GPU for scikit-learn
    assert "videos: 2 done, 0 failed of 2" in terminal


def test_stagewise_runs_one_service_at_a_time_and_makes_the_same_dataset(together, inputs, tmp_path):
    videos, models = inputs
    out = tmp_path / "stagewise"
    run = a100m_run(videos, out, models, "--schedule", "stagewise")
    terminal, alive_together = watch_services(run)
    assert run.returncode == 0, terminal[-4000:]
    seen = set().union(*alive_together)
    assert seen == SERVICES  # every service ran ...
    assert max(len(alive) for alive in alive_together) == 1, [a for a in alive_together if len(a) > 1][:3]  # ... alone
    order = re.findall(r"^stage (\w+): the \w+ alone$", terminal, re.MULTILINE)
    assert order == [spec.name for spec in STAGES]
    assert dataset(out) == dataset(together[0]) and dataset(out)  # byte for byte
