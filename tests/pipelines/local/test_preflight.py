"""Before any service starts: a GPU, a token for gated models, disk for weights; one line each."""

from __future__ import annotations

from pathlib import Path

from action100m.pipelines.local.preflight import hardware_problems
from action100m.pipelines.local.presets import preset_env

SERVICES = ["embedder", "segmenter", "captioner", "refiner"]


def online_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The paper's models, nothing downloaded (an empty HF_HOME), the Hub reachable, no token."""
    return {**preset_env("paper", tmp_path), "HF_HOME": str(tmp_path / "hf"), **extra}


def test_the_paper_preset_without_a_gpu_is_one_line(tmp_path):
    env = online_env(tmp_path, HF_TOKEN="x")
    problems = hardware_problems(env, SERVICES, needs_gpu=True, gpu_count=0, free_bytes=2**50)
    assert problems == [
        "the embedder, captioner, refiner need a CUDA GPU for these models and none is visible here "
        "(torch.cuda.is_available() is False): use --preset tiny, or --services to use services running elsewhere"
    ]


def test_services_running_elsewhere_need_nothing_here(tmp_path):
    assert hardware_problems(online_env(tmp_path), ["segmenter"], needs_gpu=True, gpu_count=0) == []


def test_gated_models_not_downloaded_need_a_token(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no token file there either
    problems = hardware_problems(online_env(tmp_path), ["captioner"], needs_gpu=True, gpu_count=1, free_bytes=2**50)
    (line,) = problems
    assert line.startswith("facebook/Perception-LM-3B, meta-llama/Llama-3.2-11B-Vision-Instruct are gated")
    assert "HF_TOKEN" in line
    assert hardware_problems(online_env(tmp_path, HF_TOKEN="x"), ["captioner"], True, 1, free_bytes=2**50) == []


def test_weights_that_do_not_fit_the_disk_are_named_with_the_room_needed(tmp_path):
    problems = hardware_problems(online_env(tmp_path, HF_TOKEN="x"), ["refiner"], True, 1, free_bytes=10 * 1024**3)
    assert problems == [
        f"the weights still to download (61 GiB: openai/gpt-oss-120b) do not fit the 10 GiB free under "
        f"{tmp_path / 'hf' / 'hub'}: free space, or set HF_HOME to a larger disk"
    ]


def test_local_model_folders_need_nothing(tiny_models, tmp_path):
    env = preset_env("tiny", next(iter(tiny_models.values())).parent)
    assert hardware_problems(env, SERVICES, needs_gpu=False, gpu_count=0, free_bytes=0) == []
