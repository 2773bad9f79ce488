"""The refiner (vLLM inside) starts under the chart's read-only root filesystem: its HOME is a
read-only mount here, and the only writable places are those the chart mounts as emptyDirs (the
cache variables the workload sets, and /tmp). The suite's second refiner is started that way
(tests/refiners.py); mounting needs root (skipped otherwise)."""

from __future__ import annotations

import pytest

from action100m.common.healthcheck import is_serving
from action100m.pipelines.registry.stage import chart_fullname

from .test_wiring import RELEASE, render, workloads

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def test_the_refiner_starts_with_an_unwritable_home_and_the_charts_cache_paths(chart, vllm_refiner_as_in_the_chart):
    refiner = vllm_refiner_as_in_the_chart
    deployment = workloads(render(chart, {}))[f"{chart_fullname(RELEASE)}-refiner"]
    settings = {
        e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e
    }
    assert settings["HOME"] == "/home/app" and settings["VLLM_CACHE_ROOT"].startswith(settings["HOME"])
    if refiner.home is None:
        pytest.skip("a read-only mount needs root: the chart's refiner started with a writable HOME")
    with pytest.raises(OSError):
        (refiner.home / "probe").write_text("x")  # even root cannot write there
    assert is_serving(refiner.address)
    assert refiner.caches is not None and any(refiner.caches.rglob("*")), (
        "the engine wrote nothing where the chart lets it"
    )
