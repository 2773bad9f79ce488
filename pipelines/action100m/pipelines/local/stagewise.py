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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..executor import current_config, execute, options_of
from ..export import export_shard, publish_dataset
from ..registry import STAGES, Stage
from ..state import RunReport, ShardState, StageConfig
from .context import RunContext

# Starts the services of the given stages and yields their addresses (stage -> host:port) while they run.
ServiceStarter = Callable[[list[str]], contextlib.AbstractContextManager[dict[str, str]]]
# Called when a stage's service is up, with the configs so far (for progress), and when the stage is done.
StageHook = Callable[[Stage, dict[str, StageConfig]], contextlib.AbstractContextManager[Any]]


def run_stagewise(
    run: RunContext, run_id: str, start_services: ServiceStarter, during_stage: StageHook | None = None
) -> tuple[RunReport, dict[str, StageConfig]]:
    """Plans the run, sends every shard through each stage in turn with only that stage's service
    up, then exports and publishes the dataset; returns the run's report and the stages' configs."""
    store = run.store
    plan = run.plan(run_id)
    states = [plan.shard(store, index, run.artifact_prefix) for index in range(plan.shards)]
    configs: dict[str, StageConfig] = run.imported()
    for spec in (s for s in STAGES if s.name in run.stage_names()):
        with start_services([spec.name]) as addresses:
            configs[spec.name] = current_config(addresses[spec.name], spec, options_of(spec, run.options), configs)
            watching = during_stage(spec, configs) if during_stage else contextlib.nullcontext()
            with watching, ThreadPoolExecutor(max(1, run.settings.parallelism), f"a100m-{spec.name}") as pool:

                def one(state: ShardState, spec: Stage = spec, addresses: dict[str, str] = addresses) -> ShardState:
                    return execute(state, [spec], addresses, run.options, store=store)

                states = list(pool.map(one, states))
    for state in states:
        export_shard(state, run.output_prefix, plan, store)
    return publish_dataset(plan, run.output_prefix, store, facts=run.card_facts()), configs
