"""The stage-by-stage one-machine run (`a100m run --schedule stagewise`): for GPUs that cannot hold
every model at once.

One service at a time: it starts, every shard goes through its stage (`executor.execute`), it
stops (its process group killed, its GPU memory freed), then the next. The steps are the
pipeline's own functions (plan, the executor, export, publish), called in stage-major order
instead of through kfp.local in shard-major order, so the artifacts, their keys and the dataset
are the same, and a rerun resumes from what is published, as the DAG does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..executor import current_config, execute, options_of
from ..export import export_shard, publish_dataset
from ..plan import Plan
from ..registry import STAGES, Stage
from ..state import RunReport, ShardState, StageConfig
from .context import RunContext

# Starts the services of the given stages and yields their addresses (stage -> host:port) while they run.
ServiceStarter = Callable[[list[str]], contextlib.AbstractContextManager[dict[str, str]]]
# Called when a stage's service is up, with the configs so far (for progress), and when the stage is done.
StageHook = Callable[[Stage, dict[str, StageConfig]], contextlib.AbstractContextManager[Any]]


def run_stagewise(
    run: RunContext,
    plan: Plan,
    stages: Sequence[str],
    start_services: ServiceStarter,
    during_stage: StageHook | None = None,
) -> tuple[RunReport, dict[str, StageConfig]]:
    """Sends every shard of the `plan` through each of `stages` in turn with only that stage's
    service up, then exports and publishes the dataset; returns the run's report and the stages'
    configs (those of the plan for the stages that do not run)."""
    store = run.store
    states = [plan.shard(store, index, run.artifact_prefix) for index in range(plan.shards)]
    configs: dict[str, StageConfig] = plan_configs(plan)
    for spec in (s for s in STAGES if s.name in stages):
        with start_services([spec.name]) as addresses:
            configs[spec.name] = current_config(addresses[spec.name], spec, options_of(spec, run.options), configs)
            watching = during_stage(spec, configs) if during_stage else contextlib.nullcontext()
            with watching, ThreadPoolExecutor(max(1, run.settings.parallelism), f"a100m-{spec.name}") as pool:

                def one(state: ShardState, spec: Stage = spec, addresses: dict[str, str] = addresses) -> ShardState:
                    return execute(state, [spec], addresses, run.options, store=store)

                states = list(pool.map(one, states))
    for state in states:
        export_shard(state, run.output_prefix, plan, store)
    return publish_dataset(plan, run.output_prefix, store, facts=run.card_facts(), claimed=True), configs


def plan_configs(plan: Plan) -> dict[str, StageConfig]:
    """The configs the plan carries: the stages that do not run (imported, skipped or reused)."""
    return {name: StageConfig(**config) for name, config in plan.imported.items()}
