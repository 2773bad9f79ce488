"""How `a100m run` names the services already running, and decides its schedule on a CPU."""

from __future__ import annotations

import pytest

from action100m.pipelines.local.schedule import decide_schedule, parse_services
from action100m.pipelines.memory.plan import TargetGpus


def test_services_are_named_by_stage_or_service():
    assert parse_services("embed=h:1,captioner=h:2") == {"embed": "h:1", "caption": "h:2"}
    with pytest.raises(ValueError, match="expected STAGE=HOST:PORT"):
        parse_services("embedding=h:1")
    with pytest.raises(ValueError, match="expected STAGE=HOST:PORT"):
        parse_services("embed=nohost")


def test_without_gpus_the_schedule_is_the_one_asked_for():
    cpu = TargetGpus(gpus=[], gpu_bytes=0, visible=0)
    assert decide_schedule("auto", {}, {}, cpu).kind == "together"
    assert decide_schedule("stagewise", {}, {}, cpu).kind == "stagewise"
    with pytest.raises(ValueError, match="--gpu-memory-gib"):
        decide_schedule("auto", {}, {}, TargetGpus(gpus=[0], gpu_bytes=0, visible=0), gpus_named=True)


def test_the_memory_plan_sizes_only_the_stages_that_run():
    """A refine-only run (`--from ... --stages refine`, or a rerun whose other artifacts are all
    published) plans the refiner's memory alone: the paper's refiner fits one 80 GB GPU by itself."""
    from pathlib import Path

    from action100m.pipelines.local.presets import preset_env
    from action100m.pipelines.memory.facts import GIB

    paper, gpu = preset_env("paper", Path("unused")), TargetGpus(gpus=[0], gpu_bytes=80 * GIB, visible=1)
    everything = decide_schedule("auto", {}, paper, gpu)
    refine_only = decide_schedule("auto", {}, paper, gpu, running=["refine"])
    assert everything.kind == "stagewise" and everything.plan is not None
    assert refine_only.plan is not None and [n.service for n in refine_only.plan.needs] == ["refiner"]
    assert refine_only.kind == "together" and [p.service for p in refine_only.plan.schedule.placements] == ["refiner"]
