"""The GPU memory plan: what each service needs, and the schedule that fits the GPUs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from action100m.pipelines.local.presets import preset_env
from action100m.pipelines.memory.facts import GIB
from action100m.pipelines.memory.plan import USABLE_SHARE, plan_memory

PAPER = preset_env("paper", Path("unused"))
SINGLE_GPU = preset_env("single-gpu", Path("unused"))


def gib(value: float) -> int:
    return int(value * GIB)


def need(plan, service: str) -> int:
    return next(n for n in plan.needs if n.service == service).total


def test_the_paper_on_one_80gb_gpu_runs_stage_by_stage():
    plan = plan_memory(PAPER, [0], gib(80))
    usable = gib(80) * USABLE_SHARE
    on_gpu = [n.total for n in plan.needs if n.on_gpu]
    assert sum(on_gpu) > usable and all(total <= usable for total in on_gpu)  # not together; each alone
    assert plan.schedule.kind == "stagewise"
    assert [p.service for p in plan.schedule.placements] == ["transcriber", "embedder", "captioner", "refiner"]
    assert all(p.gpus == [0] for p in plan.schedule.placements)
    refiner = next(n for n in plan.needs if n.service == "refiner")
    assert refiner.parts["weights"] == int(65e9)  # gpt-oss-120b's MXFP4 weights, the largest part


def test_the_paper_on_eight_80gb_gpus_runs_together_each_service_on_its_own_gpu():
    plan = plan_memory(PAPER, list(range(8)), gib(80))
    assert plan.schedule.kind == "together"
    gpus = [gpu for p in plan.schedule.placements for gpu in p.gpus]
    assert len(gpus) == len(set(gpus)) == 4  # spread: no two services share a GPU
    refiner = next(p for p in plan.schedule.placements if p.service == "refiner")
    assert refiner.env["A100M_REFINER_TENSOR_PARALLEL_SIZE"] == "1"  # it fits one 80 GB GPU
    assert all(p.env["CUDA_VISIBLE_DEVICES"] == ",".join(map(str, p.gpus)) for p in plan.schedule.placements)


def test_single_gpu_shares_one_80gb_gpu_within_explicit_budgets():
    plan = plan_memory(SINGLE_GPU, [0], gib(80))
    assert plan.schedule.kind == "together" and plan.starts_first() == ["refiner"]
    budgets = {p.service: p.budget_bytes for p in plan.schedule.placements}
    assert sum(budgets.values()) <= gib(80) * USABLE_SHARE
    assert all(budgets[s] >= need(plan, s) for s in budgets)  # each gets at least its estimate
    by_service = {p.service: p.env for p in plan.schedule.placements}
    utilization = float(by_service["refiner"]["A100M_REFINER_GPU_MEMORY_UTILIZATION"])
    assert abs(utilization - budgets["refiner"] / gib(80)) < 0.001  # vLLM's share, from its budget
    assert float(by_service["captioner"]["A100M_GPU_MEMORY_FRACTION"]) < 1 - utilization


def test_a_refiner_too_large_for_one_gpu_is_split_over_several():
    plan = plan_memory(PAPER, [0, 1, 2, 3], gib(48))
    refiner = next(p for p in plan.schedule.placements if p.service == "refiner")
    assert plan.schedule.kind == "together" and refiner.gpus == [0, 1]
    assert refiner.env["A100M_REFINER_TENSOR_PARALLEL_SIZE"] == "2"


def test_nothing_fits_one_24gb_gpu_with_the_120b_refiner_and_the_plan_says_what_to_change():
    plan = plan_memory(PAPER, [0], gib(24))
    assert plan.schedule.kind == "none" and not plan.schedule.placements
    text = "\n".join(plan.schedule.notes)
    assert "the refiner needs 64.3 GiB" in text and "a GPU has 22.8 GiB to give" in text
    assert "--preset single-gpu" in text and "A100M_REFINER_BACKEND=openai" in text


def test_a_service_running_elsewhere_takes_nothing_here():
    plan = plan_memory(PAPER, [0], gib(80), elsewhere=["refiner"])
    assert plan.schedule.kind == "together"  # without gpt-oss-120b the rest fits one GPU
    assert "refiner" not in {p.service for p in plan.schedule.placements}


def a100m(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "action100m.cli", *args], capture_output=True, text=True, timeout=120)


def test_the_plan_command_prints_a_table_or_json():
    table = a100m("plan", "--preset", "paper", "--gpus", "0", "--gpu-memory-gib", "80")
    assert table.returncode == 0, table.stderr
    assert "schedule: stagewise" in table.stdout and "openai/gpt-oss-120b" in table.stdout
    nothing = a100m("plan", "--preset", "paper", "--gpus", "0", "--gpu-memory-gib", "24", "--json")
    assert nothing.returncode == 1
    answer = json.loads(nothing.stdout)
    assert answer["schedule"]["kind"] == "none" and {r["service"] for r in answer["rows"]} >= {"refiner"}


def test_the_plan_command_without_a_gpu_asks_for_one_in_a_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the plan measures it")
    answer = a100m("plan", "--preset", "paper")  # this machine has no CUDA GPU
    assert answer.returncode == 2
    assert answer.stderr.strip().startswith("error: no CUDA GPU is visible here") and "Traceback" not in answer.stderr
