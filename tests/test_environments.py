"""The refiner's engine environment (.venv-vllm) made by `make env` next to .venv."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

VLLM_PYTHON = Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python"


@pytest.mark.vllm
def test_vllm_environment_has_the_engine_and_our_package_but_no_torchvision():
    if not VLLM_PYTHON.exists():
        pytest.skip(f"{VLLM_PYTHON} does not exist: run `make env`")
    probe = (
        "import importlib.util, torch, vllm, action100m.v1.refiner_pb2, transformers;"
        "print(torch.__version__, vllm.__version__, transformers.__version__);"
        "print([m for m in ('torchvision', 'torchaudio', 'torchcodec') if importlib.util.find_spec(m)])"
    )
    done = subprocess.run([str(VLLM_PYTHON), "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    versions, leftovers = done.stdout.strip().splitlines()[-2:]
    assert versions.startswith("2.13.0+cpu 0.32.0"), versions
    assert leftovers == "[]"
