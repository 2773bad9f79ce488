"""How a one-machine run starts its services: all at once ("together") or one stage at a time
("stagewise"), each service's GPUs and memory share, and which service starts first, from the
memory plan when there are GPUs; which stages run elsewhere (`--services`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from ..memory.plan import MemoryPlan, TargetGpus, format_plan, plan_memory
from ..registry import STAGES, stage

SCHEDULES = ("auto", "together", "stagewise")


def parse_services(text: str | None) -> dict[str, str]:
    """`embed=host:port,caption=host:port` -> {stage: address}; stages by stage or service name."""
    services: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, _, address = part.partition("=")
        try:
            spec = stage(name)
        except ValueError:
            spec = None
        if spec is None or ":" not in address:
            raise ValueError(
                f"--services {part!r}: expected STAGE=HOST:PORT with STAGE one of {', '.join(s.name for s in STAGES)}"
            )
        services[spec.name] = address
    return services


@dataclass
class RunSchedule:
    """How this run starts its services: all at once or one stage at a time, each service's extra
    env (GPUs, memory share), the services that start alone first, and the memory plan behind it."""

    kind: str  # together | stagewise
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    first: list[str] = field(default_factory=list)
    plan: MemoryPlan | None = None


class PlanError(RuntimeError):
    """The models do not fit the GPUs in any schedule; the message is the plan."""


def decide_schedule(
    asked: str,
    elsewhere: Mapping[str, str],
    env: Mapping[str, str],
    target: TargetGpus,
    gpus_named: bool = False,
    running: Collection[str] | None = None,
) -> RunSchedule:
    """The schedule for this machine: from the memory plan when there are GPUs (or --gpus says so),
    else the one `asked` for (on a CPU every service runs at once unless --schedule stagewise).
    `elsewhere`: the stages whose services already run elsewhere; `env`: the services' settings;
    `running`: the stages that must run (`registry.stages_to_run`; None: all), the others start nothing."""
    gpus, gpu_bytes = target.gpus, target.gpu_bytes
    if gpus_named and not gpu_bytes:
        raise ValueError("--gpus: no CUDA GPU is visible here to measure; say each GPU's memory (--gpu-memory-gib)")
    remote = [spec.service for spec in STAGES if spec.name in elsewhere]
    idle = [spec.service for spec in STAGES if running is not None and spec.name not in running]
    if not gpus or not gpu_bytes or not set(s.service for s in STAGES) - {*remote, *idle}:
        return RunSchedule("stagewise" if asked == "stagewise" else "together")
    plan = plan_memory(env, gpus, gpu_bytes, asked, remote, idle)
    if plan.schedule.kind == "none":
        raise PlanError(format_plan(plan))
    service_env = {p.service: p.env for p in plan.schedule.placements}
    return RunSchedule(plan.schedule.kind, service_env, first=plan.starts_first(), plan=plan)
