"""The chart, loaded once for the chart tests and the wiring test."""

from __future__ import annotations

from pathlib import Path

import pytest

CHART = Path(__file__).resolve().parents[2] / "helm" / "action100m"


@pytest.fixture(scope="session")
def chart():
    from helm_python.chart import Chart

    return Chart.load(CHART)
