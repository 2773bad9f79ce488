"""The stage-by-stage one-machine run (`a100m run --schedule stagewise`): for GPUs that cannot hold
every model at once.

One service at a time: it starts, every shard goes through its stage, it stops (its process group
killed, its GPU memory freed), then the next. The steps are the pipeline's own functions (plan,
`steps.run_stage`, export, publish), called here in stage-major order instead of through kfp.local
in shard-major order, so the artifacts, their keys and the dataset are the same, and a rerun
resumes from what is published, as the DAG does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from action100m.common.store import ArtifactStore

from .export import export_shard, publish_dataset
from .plan import plan_run
from .stages import STAGES, Stage
from .state import RunReport, ShardState, StageConfig
from .steps import run_stage

# Starts the services of the given stages and yields their addresses (stage -> host:port) while they run.
ServiceStarter = Callable[[list[str]], contextlib.AbstractContextManager[dict[str, str]]]
# Called when a stage's service is up, with its config (for progress), and when the stage is done.
StageHook = Callable[[Stage, StageConfig], contextlib.AbstractContextManager[Any]]


def run_stagewise(
    store: ArtifactStore,
    manifest: str,
    artifact_prefix: str,
    output_prefix: str,
    start_services: ServiceStarter,
    current_config: Callable[[str, Stage, dict[str, StageConfig]], StageConfig],
    shard_size: int = 16,
    parallelism: int = 2,
    options: Mapping[str, str] | None = None,
    run: str = "",
    during_stage: StageHook | None = None,
) -> RunReport:
    """Plans the run, sends every shard through each stage in turn with only that stage's service
    up, then exports and publishes the dataset; returns the run's report."""
    options = options or {}
    plan = plan_run(store, manifest, artifact_prefix, shard_size, run)
    states = [plan.shard(store, index, artifact_prefix) for index in range(plan.shards)]
    configs: dict[str, StageConfig] = {}
    for spec in STAGES:
        with start_services([spec.name]) as addresses:
            address = addresses[spec.name]
            configs[spec.name] = current_config(address, spec, configs)
            watching = during_stage(spec, configs[spec.name]) if during_stage else contextlib.nullcontext()
            with watching, ThreadPoolExecutor(max(1, parallelism), thread_name_prefix=f"a100m-{spec.name}") as pool:

                def one(state: ShardState, spec: Stage = spec, address: str = address) -> ShardState:
                    return run_stage(spec.name, state, address, options.get(spec.name, "{}"), store=store)

                states = list(pool.map(one, states))
    for state in states:
        export_shard(state, output_prefix, plan, store)
    return publish_dataset(plan, output_prefix, store)
