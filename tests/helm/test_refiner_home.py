"""The refiner (vLLM inside) starts under the chart's read-only root filesystem: its HOME is a
read-only mount here, and the only writable places are those the chart mounts as emptyDirs (the
cache variables the Deployment sets, and /tmp). Needs root to mount (skipped otherwise)."""

from __future__ import annotations

import os
import subprocess

import pytest

from action100m.common.healthcheck import is_serving

from ..support import free_port, need_vllm_env, vllm_env, wait_for
from .test_wiring import by_kind, render

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def chart_env(chart) -> dict[str, str]:
    """The plain env entries the chart gives the refiner's container (HOME and the cache roots)."""
    deployment = by_kind(render(chart, {}), "Deployment")["a100m-action100m-refiner"]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e["value"] for e in env if "value" in e}


def test_the_refiner_starts_with_an_unwritable_home_and_the_charts_cache_paths(chart, tiny_models, tmp_path):
    python = need_vllm_env()
    if os.geteuid() != 0:
        pytest.skip("a read-only mount needs root")
    settings = chart_env(chart)
    assert settings["HOME"] == "/home/app" and settings["VLLM_CACHE_ROOT"].startswith(settings["HOME"])
    home, empty_dir = tmp_path / "home", tmp_path / "emptydir"
    home.mkdir()
    empty_dir.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(home)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount here: {mounted.stderr.decode().strip()}")
    try:
        with pytest.raises(OSError):
            (home / "probe").write_text("x")  # even root cannot write there
        # The chart's cache paths live in its emptyDir mounted at HOME: here, a writable folder.
        caches = {k: v.replace(settings["HOME"], str(empty_dir)) for k, v in settings.items() if k != "HOME"}
        port = free_port()
        log = tmp_path / "refiner.log"
        env = vllm_env(
            HOME=str(home),
            **caches,
            A100M_PORT=str(port),
            A100M_METRICS_PORT="-1",
            A100M_ALLOWED_ROOTS=f"file://{tmp_path}",
            A100M_REFINER_MODEL=str(tiny_models["gpt_oss"]),
            A100M_REFINER_REASONING_PARSER="",
            A100M_REFINER_MAX_MODEL_LEN="4096",
            A100M_REFINER_KV_CACHE_GIB="1",
            A100M_REFINER_ENFORCE_EAGER="1",
        )
        env.pop("XDG_CONFIG_HOME", None)
        with open(log, "w") as sink:
            process = subprocess.Popen([str(python), "-m", "action100m.refiner"], env=env, stdout=sink, stderr=sink)
        try:
            wait_for(lambda: is_serving(f"127.0.0.1:{port}"), process, 420, log)
            assert any(empty_dir.rglob("*")), "the engine wrote nothing where the chart lets it"
        finally:
            process.terminate()
            process.wait(60)
    finally:
        subprocess.run(["umount", str(home)], check=False)
