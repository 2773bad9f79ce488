"""`a100m models fetch` against a local Hugging Face cache: the tiny models published there under the
paper's hub ids (the Hub itself cannot be reached from here, so the cache is the source: this is
the resumed fetch, where everything is already present), then a service started from it offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from action100m.common.healthcheck import is_serving

from ..support import free_port, wait_for

PAPER = {  # in stage order
    "openai/whisper-large-v3": "whisper",
    "facebook/vjepa2-vitg-fpc64-384": "vjepa2",
    "facebook/Perception-LM-3B": "perception_lm",
    "meta-llama/Llama-3.2-11B-Vision-Instruct": "mllama",
    "openai/gpt-oss-120b": "gpt_oss",
}


def publish(hf_home: Path, repo_id: str, folder: Path, commit: str = "0" * 40) -> None:
    """`folder` as the cache holds a downloaded snapshot of `repo_id` (refs/main -> snapshots/<commit>)."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(folder, repo / "snapshots" / commit, dirs_exist_ok=True)


def fetch(hf_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home)}
    return subprocess.run(
        [sys.executable, "-m", "action100m.cli", "models", "fetch", str(hf_home), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_a_preset_already_in_the_cache_is_found_whole(tiny_models, tmp_path):
    hf_home = tmp_path / "hf"
    for repo_id, role in PAPER.items():
        publish(hf_home, repo_id, tiny_models[role])
    done = fetch(hf_home, "--preset", "paper")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == list(PAPER)
    assert all(f"in {hf_home / 'hub'}" in line for line in lines)


def test_a_missing_model_is_one_line(tiny_models, tmp_path):
    hf_home = tmp_path / "hf"
    publish(hf_home, "openai/whisper-large-v3", tiny_models["whisper"])
    publish(hf_home, "facebook/vjepa2-vitg-fpc64-384", tiny_models["vjepa2"])
    done = fetch(hf_home, "--preset", "paper")
    assert done.returncode == 2
    assert (
        done.stderr.strip() == f"error: facebook/Perception-LM-3B is not in {hf_home / 'hub'} and HF_HUB_OFFLINE is set"
    )


def test_a_service_starts_offline_from_the_fetched_cache(tiny_models, tmp_path):
    hf_home = tmp_path / "hf"
    publish(hf_home, "facebook/vjepa2-vitg-fpc64-384", tiny_models["vjepa2"])
    assert fetch(hf_home, "--model", "facebook/vjepa2-vitg-fpc64-384").returncode == 0
    port = free_port()
    log = tmp_path / "embedder.log"
    env = {
        **os.environ,
        "HF_HOME": str(hf_home),
        "HF_HUB_OFFLINE": "1",
        "A100M_PORT": str(port),
        "A100M_METRICS_PORT": "-1",
        "A100M_ALLOWED_ROOTS": f"file://{tmp_path}",
        "A100M_EMBEDDER_MODEL": "facebook/vjepa2-vitg-fpc64-384",  # a hub id, found in the cache
        "A100M_DEVICE": "cpu",
    }
    with open(log, "w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "action100m.embedder"], env=env, stdout=sink, stderr=sink)
    try:
        wait_for(lambda: is_serving(f"127.0.0.1:{port}"), process, 120, log)
    finally:
        process.terminate()
        process.wait(30)
    # and the memory plan reads the cached weights, not the documented sizes
    planned = subprocess.run(
        [
            sys.executable,
            "-c",
            "from action100m.pipelines.memory.facts import model_facts; "
            "print(model_facts('facebook/vjepa2-vitg-fpc64-384').source)",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert planned.returncode == 0 and "Hugging Face cache" in planned.stdout, planned.stderr
