"""One version, one place: the package's (pyproject.toml). The chart's appVersion (the images'
default tag), the tag `make images` builds and the pipeline steps' default image follow it."""

from __future__ import annotations

import re
import subprocess
import tomllib

import yaml

from .support import REPO


def package_version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def test_the_charts_images_are_the_ones_make_images_builds():
    chart = yaml.safe_load((REPO / "helm" / "action100m" / "Chart.yaml").read_text())
    assert chart["appVersion"] == package_version()
    tag = subprocess.run(
        ["make", "-s", "-C", str(REPO), "--eval", "print-tag: ; @echo $(TAG)", "print-tag"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert tag == package_version()


def test_the_pipeline_steps_run_the_packages_own_image():
    from action100m.common.version import __version__
    from action100m.pipelines import PIPELINE_IMAGE

    assert __version__ == package_version()
    assert re.fullmatch(rf"ghcr\.io/action100m/pipeline:{re.escape(package_version())}", PIPELINE_IMAGE)
