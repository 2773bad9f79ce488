"""The KFP components: each is a few lines that call this package's functions.

They run in the pipeline image (docker/pipeline.Dockerfile, `action100m[pipelines]` installed),
or, in the one-machine run, in this environment. Everything heavy happens in the services. What
passes between them stays small whatever the run's size: the plan's URI, shard indices, and one
shard's state (a few KB).
(No `from __future__ import annotations` here: KFP reads the real type hints.)
"""

from types import SimpleNamespace
from typing import List

from kfp import dsl

from action100m.pipelines import PIPELINE_IMAGE


def plan_run(
    videos: str,
    artifact_prefix: str,
    shard_size: int,
    run: str,
    job_id: str,
    allowed_roots: str,
    read_only_roots: str,
    s3_endpoint: str,
) -> str:
    """Reads the manifest or lists the prefix; writes the plan (one file per shard) to the store; its URI."""
    from action100m.pipelines.plan import plan_run as plan
    from action100m.pipelines.steps import store_for

    return plan(
        store_for(allowed_roots, s3_endpoint, read_only_roots), videos, artifact_prefix, shard_size, run or job_id
    ).uri


def shard_indices(plan_uri: str, allowed_roots: str, read_only_roots: str, s3_endpoint: str) -> List[int]:
    """The plan's shard indices: what the ParallelFor iterates over (a few bytes per shard)."""
    from action100m.pipelines.plan import Plan
    from action100m.pipelines.steps import store_for

    return list(range(Plan.load(store_for(allowed_roots, s3_endpoint, read_only_roots), plan_uri).shards))


def run_stage(
    stage: str,
    artifact_prefix: str,
    run: str,
    job_id: str,
    shard: int,
    state: str,
    address: str,
    options_json: str,
    overwrite: bool,
    allowed_roots: str,
    read_only_roots: str,
    s3_endpoint: str,
) -> str:
    """Embed, segment, caption or refine one shard through the stage's service; the shard's new state."""
    from action100m.pipelines.plan import Plan
    from action100m.pipelines.state import ShardState
    from action100m.pipelines.steps import run_stage as run_one_stage
    from action100m.pipelines.steps import store_for

    store = store_for(allowed_roots, s3_endpoint, read_only_roots)
    shard = int(shard)  # JSON numbers may arrive as floats
    if state:
        current = ShardState.from_json(state)
    else:  # the first stage starts from the plan
        plan = Plan.load(store, Plan.uri_for(artifact_prefix, run or job_id))
        current = plan.shard(store, shard, artifact_prefix)
    return run_one_stage(stage, current, address, options_json, overwrite, store=store).to_json()


def export_shard(
    artifact_prefix: str,
    run: str,
    job_id: str,
    state: str,
    output_prefix: str,
    allowed_roots: str,
    read_only_roots: str,
    s3_endpoint: str,
) -> int:
    """Stages the shard's parquet file in the release format and writes its report; its row count."""
    from action100m.pipelines.export import export_shard as export
    from action100m.pipelines.plan import Plan
    from action100m.pipelines.state import ShardState
    from action100m.pipelines.steps import store_for

    store = store_for(allowed_roots, s3_endpoint, read_only_roots)
    plan = Plan.load(store, Plan.uri_for(artifact_prefix, run or job_id))
    done = export(ShardState.from_json(state), output_prefix, plan, store)
    return done.export.rows if done.export else 0


def publish_dataset(
    plan_uri: str,
    rows: list[int],
    output_prefix: str,
    allowed_roots: str,
    read_only_roots: str,
    s3_endpoint: str,
    dataset: dsl.Output[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
    card: dsl.Output[dsl.Markdown],
) -> str:
    """Swaps the run's files into the dataset, writes report.json and the card; a one-line summary.
    In the KFP UI: the dataset (an artifact naming the output prefix), its counts, and its card."""
    from action100m.pipelines.export import publish_dataset as publish
    from action100m.pipelines.plan import Plan
    from action100m.pipelines.steps import store_for

    store = store_for(allowed_roots, s3_endpoint, read_only_roots)
    report = publish(Plan.load(store, plan_uri), output_prefix, store)
    data = output_prefix.rstrip("/") + "/data/"
    dataset.metadata.update({"location": data, "rows": report.export.rows, "files": len(report.files)})
    with open(dataset.path, "w") as handle:
        handle.write(data + "\n")
    for name, value in (
        ("videos", report.videos),
        ("videos_done", len(report.done)),
        ("videos_failed", len(report.failed)),
        ("nodes", report.export.nodes),
        ("segments_annotated", report.export.segments_annotated),
    ):
        metrics.log_metric(name, value)
    with open(card.path, "w") as handle:
        handle.write(store.get_bytes(output_prefix.rstrip("/") + "/README.md").decode())
    return (
        f"{report.export.rows} rows of {report.videos} videos ({len(report.failed)} failed), "
        f"{sum(rows)} exported: {output_prefix.rstrip('/')}/README.md"
    )


STEPS = (plan_run, shard_indices, run_stage, export_shard, publish_dataset)


def components(image: str = PIPELINE_IMAGE) -> SimpleNamespace:
    """The steps as KFP components that run in `image`."""
    return SimpleNamespace(**{step.__name__: dsl.component(base_image=image)(step) for step in STEPS})
