"""The package as standard tools see it: mypy resolves `action100m` with real types, and
`python -m build` makes an sdist and a wheel from that sdist that installs and runs in a clean venv."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from .support import REPO


def test_mypy_reads_the_installed_package_with_its_types(tmp_path):
    """No custom settings: a user's script, checked from outside the repository."""
    script = tmp_path / "use.py"
    script.write_text(
        "from action100m.common.store import ArtifactStore\n"
        "from action100m.pipelines.plan import Plan\n"
        "store = ArtifactStore(['file:///tmp'])\n"
        "reveal_type(store.get_bytes('file:///tmp/x'))\n"
        "reveal_type(Plan.uri_for('s3://b/p', 'run'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", str(script)], capture_output=True, text=True, cwd=tmp_path
    )
    assert 'Revealed type is "bytes"' in done.stdout, done.stdout + done.stderr
    assert 'Revealed type is "str"' in done.stdout
    assert "Any" not in done.stdout and "import-untyped" not in done.stdout


@pytest.mark.slow
def test_sdist_then_wheel_from_it_installs_and_runs_in_a_clean_venv(tmp_path):
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], capture_output=True, text=True, timeout=600
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (sdist,) = dist.glob("action100m-*.tar.gz")
    (wheel,) = dist.glob("action100m-*.whl")  # `build` makes the wheel from the sdist
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "action100m/cli/__init__.py",
        "action100m/pipelines/registry/__init__.py",
        "action100m/v1/refiner_pb2.pyi",
        "action100m/pipelines/dag.py",
        "action100m/py.typed",
        "action100m/common/store.py",
    ):
        assert module in names, module
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-c", str(REPO / ".ci" / "constraints-dev.txt"), str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    helped = subprocess.run([str(env_dir / "bin" / "a100m"), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert helped.returncode == 0 and "validate" in helped.stdout, helped.stderr
    version = subprocess.run([str(env_dir / "bin" / "a100m"), "--version"], capture_output=True, text=True)
    assert version.stdout.strip().startswith("action100m 0."), version.stdout + version.stderr
    assert Path(sdist).stat().st_size > 0
