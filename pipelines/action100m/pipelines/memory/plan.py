"""The GPU memory plan of a one-machine run (`a100m plan`, and `a100m run` on a GPU machine).

For each service: its models' weights (`memory.facts`), the activations of its configured
batch, the refiner's KV cache; then the schedule that fits the GPUs:

- `together`: every service at once, each with an explicit budget: its own GPU(s) when there are
  enough ("spread"), else sharing (the refiner's vLLM `gpu_memory_utilization` computed from its
  budget, the torch services capped with their per-process memory fraction);
- `stagewise`: one service at a time, each with every GPU it can use;
- nothing: a service does not fit even alone; the plan says which and what to change.

Every estimate is an upper bound built from the model's shapes, documented in `Need.parts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from ..registry import STAGES, stage
from .facts import GIB
from .needs import Need

# Of each GPU's memory, the share a plan hands out (the rest: the driver, fragmentation, other users).
USABLE_SHARE = 0.95
# Budget a torch service gets above its estimate when sharing a GPU.
TORCH_HEADROOM = 1.15


@dataclass
class Placement:
    service: str
    gpus: list[int]
    budget_bytes: int  # per GPU
    env: dict[str, str]


@dataclass
class Schedule:
    kind: str  # together | stagewise | none
    placements: list[Placement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class MemoryPlan:
    gpus: list[int]
    gpu_bytes: int
    needs: list[Need]
    schedule: Schedule

    def starts_first(self) -> list[str]:
        """The services to start alone before the others: those that size themselves from the memory
        free at their start (vLLM) and share a GPU with another."""
        if self.schedule.kind != "together":
            return []
        placed = {p.service: set(p.gpus) for p in self.schedule.placements}
        return [
            name
            for name, mine in placed.items()
            if stage(name).sizes_from_free_memory and any(mine & gpus for s, gpus in placed.items() if s != name)
        ]

    def to_dict(self) -> dict[str, object]:
        return {
            "gpus": self.gpus,
            "gpu_gib": round(self.gpu_bytes / GIB, 2),
            "rows": [
                {
                    "service": need.service,
                    "models": need.models,
                    **{f"{name}_gib": round(size / GIB, 2) for name, size in need.parts.items()},
                    "total_gib": round(need.total / GIB, 2),
                    "on_gpu": need.on_gpu,
                }
                for need in self.needs
            ],
            "schedule": asdict(self.schedule),
        }


def service_needs(env: Mapping[str, str]) -> list[Need]:
    """Every service's need with these settings, in stage order."""
    return [spec.need(env) for spec in STAGES]


def _gpu_env(service: str, gpus: Sequence[int], budget: int, gpu_bytes: int) -> dict[str, str]:
    return stage(service).gpu_settings(gpus, f"{min(budget / gpu_bytes, USABLE_SHARE):.3f}")


def _smallest_split(need: Need, usable: int, available: int) -> int | None:
    """The fewest GPUs (a tensor-parallel size) on which `need` fits; torch services use one."""
    for size in stage(need.service).gpu_splits:
        if size <= available and size >= need.gpus and need.per_gpu(size) <= usable:
            return size
    return None


def _takes_the_rest(need: Need) -> bool:
    """An engine that sizes its KV cache from what is left of its budget (vLLM)."""
    return stage(need.service).sizes_from_free_memory


def _order(service: str) -> int:
    return STAGES.index(stage(service))


def _kv_cache_note(need: Need, budget: int, gpus: int) -> str:
    left = budget - need.per_gpu(gpus) + need.parts["kv_cache"] // gpus
    sequences = left * gpus // max(need.kv_bytes_per_token * need.typical_sequence, 1)
    return (
        f"{need.service}: {left * gpus / GIB:.1f} GiB of KV cache over {gpus} GPU(s): about {sequences} requests of "
        f"{need.typical_sequence} tokens at once"
    )


def _together(needs: list[Need], gpus: list[int], gpu_bytes: int) -> Schedule | None:
    usable = int(gpu_bytes * USABLE_SHARE)
    on_gpu = sorted((n for n in needs if n.on_gpu), key=lambda n: n.total, reverse=True)
    found = {n.service: _smallest_split(n, usable, len(gpus)) for n in on_gpu}
    splits = {name: split for name, split in found.items() if split is not None}
    if len(splits) < len(found):
        return None
    free = {gpu: usable for gpu in gpus}
    assigned: dict[str, list[int]] = {}
    if sum(splits.values()) <= len(gpus):  # spread: each service on GPUs of its own
        remaining = list(gpus)
        for need in on_gpu:
            size = splits[need.service]
            assigned[need.service], remaining = remaining[:size], remaining[size:]
            for gpu in assigned[need.service]:
                free[gpu] -= need.per_gpu(size)
    else:  # share: largest service first, onto the GPUs with the most room left
        for need in on_gpu:
            size = splits[need.service]
            fitting = sorted((g for g in gpus if free[g] >= need.per_gpu(size)), key=lambda g: -free[g])
            if len(fitting) < size:
                return None
            assigned[need.service] = fitting[:size]
            for gpu in fitting[:size]:
                free[gpu] -= need.per_gpu(size)
    placements, notes = [], []
    # torch services get headroom out of what is free; the LLM engine then takes what is left (its KV cache)
    for need in sorted(on_gpu, key=lambda n: (_takes_the_rest(n), _order(n.service))):
        mine = assigned[need.service]
        alone = not any(other != need.service and set(owned) & set(mine) for other, owned in assigned.items())
        per = need.per_gpu(len(mine))
        if alone:
            budget = usable
        else:
            extra = min(free[g] for g in mine)
            if not _takes_the_rest(need):
                extra = min(extra, int(per * (TORCH_HEADROOM - 1)))
            budget = per + extra
            for gpu in mine:
                free[gpu] -= extra
        placements.append(Placement(need.service, mine, budget, _gpu_env(need.service, mine, budget, gpu_bytes)))
        if _takes_the_rest(need):
            notes.append(_kv_cache_note(need, budget, len(mine)))
    placements.sort(key=lambda p: _order(p.service))
    shared = {g: [p.service for p in placements if g in p.gpus] for g in gpus}
    shared = {g: names for g, names in shared.items() if len(names) > 1}
    if not shared:
        notes.insert(0, "spread: no two services share a GPU")
    for gpu, names in shared.items():
        engines = [name for name in names if stage(name).sizes_from_free_memory]
        first = (
            f" (the {engines[0]} starts first: vLLM sizes itself from the memory free at its start)" if engines else ""
        )
        notes.insert(0, f"GPU {gpu} shared by {', '.join(names)}, each within its budget{first}")
    unused = [g for g in gpus if not any(g in p.gpus for p in placements)]
    if unused:
        notes.append(f"GPU(s) {','.join(map(str, unused))} unused: `a100m run` starts one replica per service")
    return Schedule("together", placements, notes)


def _stagewise(needs: list[Need], gpus: list[int], gpu_bytes: int) -> Schedule:
    usable = int(gpu_bytes * USABLE_SHARE)
    placements, problems, notes = [], [], []
    for need in (n for n in needs if n.on_gpu):
        split = _smallest_split(need, usable, len(gpus))
        if split is None:
            problems.append(
                f"the {need.service} needs {need.per_gpu(1) / GIB:.1f} GiB "
                + (
                    f"(at least {need.per_gpu(min(len(gpus), 8)) / GIB:.1f} GiB per GPU over {min(len(gpus), 8)}) "
                    if len(stage(need.service).gpu_splits) > 1 and len(gpus) > 1
                    else ""
                )
                + f"and a GPU has {usable / GIB:.1f} GiB to give"
            )
            continue
        mine = gpus[:split]
        placements.append(Placement(need.service, mine, usable, _gpu_env(need.service, mine, usable, gpu_bytes)))
        if _takes_the_rest(need):
            notes.append(_kv_cache_note(need, usable, split))
    if problems:
        return Schedule("none", [], problems + _advice(needs, usable))
    return Schedule(
        "stagewise", placements, ["one service at a time, in stage order, each with the GPUs above", *notes]
    )


def _advice(needs: list[Need], usable: int) -> list[str]:
    """What to change, for each service that does not fit one GPU."""
    too_big = [need for need in needs if need.on_gpu and need.per_gpu(1) > usable]
    return ["what to change:", *(f"  - {stage(need.service).too_big_advice(need)}" for need in too_big)]


def plan_memory(
    env: Mapping[str, str],
    gpus: Sequence[int],
    gpu_bytes: int,
    schedule: str = "auto",
    elsewhere: Sequence[str] = (),
    idle: Sequence[str] = (),
) -> MemoryPlan:
    """The needs of the services configured by `env`, and the schedule that fits `gpus` of `gpu_bytes`;
    services in `elsewhere` run on another machine and take nothing here, those in `idle` do not run
    at all (nothing of theirs is left to do: `registry.stages_to_run`)."""
    needs = [
        Need([*n.models, "(running elsewhere)"], {}, on_gpu=False, service=n.service) if n.service in elsewhere else n
        for n in service_needs(env)
        if n.service not in idle
    ]
    gpus = list(gpus)
    chosen: Schedule | None = None
    if schedule in ("auto", "together"):
        chosen = _together(needs, gpus, gpu_bytes)
        if chosen is None and schedule == "together":
            fallback = _stagewise(needs, gpus, gpu_bytes)
            reason = "the services do not fit the GPUs together"
            return MemoryPlan(gpus, gpu_bytes, needs, Schedule("none", [], [reason, *fallback.notes]))
    if chosen is None:
        chosen = _stagewise(needs, gpus, gpu_bytes)
        if chosen.kind == "stagewise" and schedule == "auto":
            total = sum(n.total for n in needs if n.on_gpu)
            chosen.notes.insert(
                0,
                f"together they need {total / GIB:.1f} GiB, more than {len(gpus)} GPU(s) of "
                f"{gpu_bytes * USABLE_SHARE / GIB:.1f} GiB usable hold; each fits alone",
            )
    return MemoryPlan(gpus, gpu_bytes, needs, chosen)


def detected_gpus() -> tuple[list[int], int]:
    """This machine's CUDA GPUs (as CUDA_VISIBLE_DEVICES numbers them) and the smallest one's memory."""
    try:
        import torch
    except ImportError:
        return [], 0
    if not torch.cuda.is_available():
        return [], 0
    count = torch.cuda.device_count()
    return list(range(count)), min(torch.cuda.get_device_properties(i).total_memory for i in range(count))


@dataclass(frozen=True)
class TargetGpus:
    gpus: list[int]  # what to plan for: --gpus, else every visible GPU
    gpu_bytes: int  # each one's memory: --gpu-memory-gib, else the smallest visible (0: unknown)
    visible: int  # CUDA GPUs this machine has


def target_gpus(gpus: str | None = None, gpu_memory_gib: float | None = None) -> TargetGpus:
    """The GPUs a plan is for, from the options where given and from this machine otherwise."""
    visible, measured = detected_gpus()
    chosen = parse_gpus(gpus) if gpus else visible
    return TargetGpus(chosen, int(gpu_memory_gib * GIB) if gpu_memory_gib else measured, len(visible))


def format_plan(plan: MemoryPlan) -> str:
    columns = ("weights", "activations", "inputs", "kv_cache", "runtime", "process")
    header = ["service", *columns, "total GiB", "models"]
    rows = [
        [
            need.service,
            *[f"{need.parts[c] / GIB:.2f}" if c in need.parts else "-" for c in columns],
            f"{need.total / GIB:.2f}" if need.on_gpu else "-",
            ", ".join(need.models),
        ]
        for need in plan.needs
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        f"GPUs {','.join(map(str, plan.gpus))}: {plan.gpu_bytes / GIB:.1f} GiB each, {USABLE_SHARE:.0%} of it planned",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
        *["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows],
        "",
        f"schedule: {plan.schedule.kind}",
    ]
    for p in plan.schedule.placements:
        settings = " ".join(f"{k}={v}" for k, v in p.env.items())
        lines.append(
            f"  {p.service:<10} GPU {','.join(map(str, p.gpus)):<8} {p.budget_bytes / GIB:6.1f} GiB  {settings}"
        )
    lines += [f"  {note}" for note in plan.schedule.notes]
    return "\n".join(lines)


def parse_gpus(text: str) -> list[int]:
    try:
        gpus = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--gpus {text!r}: expected GPU numbers separated by commas (0,1,2)") from None
    if not gpus or len(set(gpus)) != len(gpus) or min(gpus) < 0:
        raise ValueError(f"--gpus {text!r}: expected distinct GPU numbers (0,1,2)")
    return gpus
