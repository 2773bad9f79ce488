"""The vLLM engines the suite shares: starting vLLM costs 25-45 s here, so the whole suite starts
it at most four times (the session's refiner, the refiner as the chart runs it, the OpenAI-style
server of tests/refiner/test_openai_backend.py, and the one `a100m run` of
tests/pipelines/local/test_local_run.py starts itself). Runs that test the runner's mechanics
(kills, stops, schedules) use the refiner's transformers backend, which starts in a second.

`pytest_terminal_summary` in conftest.py counts the starts from the services' logs.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from action100m.common.grpc_client import open_channel
from action100m.common.healthcheck import is_serving
from action100m.v1 import refiner_pb2_grpc

from .support import free_port, vllm_env, wait_for

# What the refiner's vLLM engine and vLLM's OpenAI server log once per engine start.
ENGINE_STARTS = ("vLLM engine started:", "Starting vLLM server on")
# `a100m run` with this in its environment runs the refiner without vLLM (the transformers backend).
REFINER_WITHOUT_VLLM = {"A100M_REFINER_BACKEND": "transformers"}


@dataclass
class RunningRefiner:
    """A refiner service with a vLLM engine, for every test that needs one."""

    address: str
    stub: Any
    log: Path
    profile: str  # the prompt profile: "ours" or "official"
    metrics_port: int
    home: Path | None = None  # the read-only HOME it started under (as the chart's pod), if one was mounted
    caches: Path | None = None  # where the chart lets it write (the cache variables' emptyDir)


@contextlib.contextmanager
def refiner_process(
    python: Path, settings: Mapping[str, str], folder: Path, profile: str, unset: tuple[str, ...] = ()
) -> Iterator[RunningRefiner]:
    """Starts the refiner with `settings` (and without the variables in `unset`) in `python`'s
    environment; yields it once it serves."""
    port, metrics_port = free_port(), free_port()
    log = folder / "refiner.log"
    env = vllm_env(**settings, A100M_PORT=str(port), A100M_METRICS_PORT=str(metrics_port))
    for name in unset:
        env.pop(name, None)
    with open(log, "w") as sink:
        process = subprocess.Popen([str(python), "-m", "action100m.refiner"], env=env, stdout=sink, stderr=sink)
    channel = open_channel(f"127.0.0.1:{port}")
    try:
        wait_for(lambda: is_serving(f"127.0.0.1:{port}"), process, 420, log)
        yield RunningRefiner(f"127.0.0.1:{port}", refiner_pb2_grpc.RefinerStub(channel), log, profile, metrics_port)
    finally:
        channel.close()
        process.terminate()
        process.wait(60)


@contextlib.contextmanager
def read_only_home(chart_settings: Mapping[str, str], folder: Path) -> Iterator[tuple[dict[str, str], Path | None]]:
    """The chart's arrangement: HOME a read-only mount, the cache variables in a writable emptyDir.
    Yields the settings (HOME and caches) and the read-only HOME, or ({}, None) where nothing can be
    mounted (not root)."""
    home, empty_dir = folder / "home", folder / "emptydir"
    home.mkdir()
    empty_dir.mkdir()
    mounted = os.geteuid() == 0 and (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(home)], capture_output=True).returncode
        == 0
    )
    if not mounted:
        yield {}, None
        return
    try:
        caches = {
            k: v.replace(chart_settings["HOME"], str(empty_dir)) for k, v in chart_settings.items() if k != "HOME"
        }
        yield {"HOME": str(home), **caches}, home
    finally:
        subprocess.run(["umount", str(home)], check=False)


def engine_starts(folder: Path) -> int:
    """How many vLLM engines the logs under `folder` say were started."""
    count = 0
    for log in folder.rglob("*.log"):
        with contextlib.suppress(OSError):
            count += sum(log.read_text(errors="replace").count(marker) for marker in ENGINE_STARTS)
    return count
