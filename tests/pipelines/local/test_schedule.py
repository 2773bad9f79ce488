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
