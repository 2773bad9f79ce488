"""`a100m plan`: the GPU memory each service needs, and the schedule that fits these GPUs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .presets_help import PRESETS_HELP


def register(commands: Any) -> None:
    from action100m.pipelines.local.presets import PRESETS
    from action100m.pipelines.local.schedule import SCHEDULES

    plan = commands.add_parser(
        "plan",
        help="the GPU memory each service needs, and the schedule that fits these GPUs",
        description="For each service: its models' weights (from their files when downloaded, else documented "
        "sizes), the activations of its batch and the refiner's KV cache; then the schedule that fits: "
        "together (each service's GPUs and memory share), stagewise, or what to change when nothing fits. "
        "Exits 1 when nothing fits.",
        epilog=PRESETS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan.add_argument(
        "--preset",
        default="paper",
        choices=PRESETS,
        help="the models (default paper); A100M_* variables override them as for the services",
    )
    plan.add_argument("--models", default="models", help="where the tiny preset's models are (default ./models)")
    plan.add_argument("--gpus", default=None, metavar="0,1,...", help="the GPUs (default: all visible)")
    plan.add_argument("--gpu-memory-gib", type=float, default=None, metavar="G", help="each GPU's memory")
    plan.add_argument("--schedule", default="auto", choices=SCHEDULES)
    plan.add_argument("--json", action="store_true", help="the plan as JSON (rows per service, the schedule)")
    plan.set_defaults(run=plan_command)


def plan_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from action100m.pipelines.local.preflight import environment
    from action100m.pipelines.local.presets import preset_env
    from action100m.pipelines.memory.facts import UnknownModel
    from action100m.pipelines.memory.plan import format_plan, plan_memory, target_gpus

    try:
        target = target_gpus(args.gpus, args.gpu_memory_gib)
        if not target.gpus or not target.gpu_bytes:
            raise ValueError("no CUDA GPU is visible here: say which GPUs to plan for (--gpus 0 --gpu-memory-gib 80)")
        if args.preset == "tiny" and not (Path(args.models) / "gpt_oss" / "config.json").exists():
            print(f"building the tiny models into {args.models}/ (a few MB, once)", flush=True)
        env = environment(preset_env(args.preset, Path(args.models)) if args.preset else {})
        plan = plan_memory(env, target.gpus, target.gpu_bytes, args.schedule)
    except (ValueError, UnknownModel) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(plan.to_dict(), indent=2) if args.json else format_plan(plan))
    return 0 if plan.schedule.kind != "none" else 1
