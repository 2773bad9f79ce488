"""The KFP components: each is a few lines that call this package's functions.

They run in the pipeline image (docker/pipeline.Dockerfile, `action100m[pipelines]` installed),
or, in the one-machine run, in this environment. Everything heavy happens in the services. What
passes between them stays small whatever the run's size: the plan's URI, shard indices, and one
URI of a shard's state. Where the store is and what a step may touch (A100M_ALLOWED_ROOTS,
A100M_READ_ONLY_ROOTS, A100M_S3_ENDPOINT) come from the step's environment: the chart's pipeline
ConfigMap on a cluster, the run's own values in the one-machine run.
(No `from __future__ import annotations` here: KFP reads the real type hints.)
"""

from types import SimpleNamespace
from typing import Any, Dict, List

from kfp import dsl

from action100m.pipelines import PIPELINE_IMAGE


def plan_run(
    videos: str,
    artifact_prefix: str,
    shard_size: int,
    run: str,
    job_id: str,
    start_from: Dict[str, Any],
    modes: Dict[str, str],
) -> str:
    """Reads the manifest or lists the prefix; writes the plan (one file per shard) to the store; its
    URI. With `start_from` (datasets and the stages to run) the videos come from the datasets' rows,
    their tree and captions imported, and `videos` is the folder of the video files (when caption runs).
    `modes`: the videos each optional stage runs on (e.g. {"transcribe": "missing"})."""
    from action100m.common.store import ArtifactStore
    from action100m.pipelines.start_from import make_plan

    store = ArtifactStore.from_env()
    return make_plan(store, videos, artifact_prefix, shard_size, run or job_id, start_from, modes).uri


def shard_indices(plan_uri: str) -> List[int]:
    """The plan's shard indices: what the ParallelFor iterates over (a few bytes per shard)."""
    from action100m.common.store import ArtifactStore
    from action100m.pipelines.plan import Plan

    return list(range(Plan.load(ArtifactStore.from_env(), plan_uri).shards))


def run_stage(
    stage: str,
    artifact_prefix: str,
    run: str,
    job_id: str,
    shard: int,
    addresses: Dict[str, str],
    options: Dict[str, Dict[str, Any]],
    overwrite: bool,
) -> str:
    """One stage of the registry on one shard through its service (its address in `addresses`, its
    Options fields in `options`, both by stage name). It starts from the shard's states the tasks
    it follows left in the store (merged; the plan's shard for a stage that reads only the video)
    and leaves its own there; returns that state's URI (what passes through KFP stays a short string)."""
    from action100m.common.store import ArtifactStore
    from action100m.pipelines.executor import execute, parse_options
    from action100m.pipelines.plan import Plan
    from action100m.pipelines.registry import follows
    from action100m.pipelines.registry import stage as stage_named

    store = ArtifactStore.from_env()
    spec = stage_named(stage)
    shard = int(shard)  # JSON numbers may arrive as floats
    current = Plan.load(store, Plan.uri_for(artifact_prefix, run or job_id)).shard_state(
        store, shard, artifact_prefix, follows(spec)
    )
    stage_options = {spec.name: parse_options(spec, options.get(spec.name))}
    done = execute(current, [spec], addresses, stage_options, store=store, overwrite=overwrite)
    uri = Plan.state_uri(artifact_prefix, run or job_id, shard, spec.name)
    store.put_bytes(uri, done.to_json().encode(), "application/json")
    return uri


def export_shard(
    artifact_prefix: str,
    run: str,
    job_id: str,
    shard: int,
    output_prefix: str,
) -> int:
    """Stages the shard's parquet file in the release format and writes its report; its row count.
    It starts from the shard's states the last stages left in the store (merged)."""
    from action100m.common.store import ArtifactStore
    from action100m.pipelines.export import export_shard as export
    from action100m.pipelines.plan import Plan
    from action100m.pipelines.registry import last_stages

    store = ArtifactStore.from_env()
    plan = Plan.load(store, Plan.uri_for(artifact_prefix, run or job_id))
    state = plan.shard_state(store, int(shard), artifact_prefix, last_stages())
    done = export(state, output_prefix, plan, store)
    return done.export.rows if done.export else 0


def publish_dataset(
    plan_uri: str,
    rows: list[int],
    output_prefix: str,
    card_facts: Dict[str, str],
    claimed: bool,
    dataset: dsl.Output[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
    card: dsl.Output[dsl.Markdown],
) -> str:
    """Swaps the run's files into the dataset, writes report.json and the card; a one-line summary.
    With `claimed`, only while the run still holds the dataset folder (export.claim_output).
    In the KFP UI: the dataset (an artifact naming the output prefix), its counts, and its card."""
    from action100m.common.store import ArtifactStore
    from action100m.pipelines.card import CardFacts
    from action100m.pipelines.export import publish_dataset as publish
    from action100m.pipelines.plan import Plan

    store = ArtifactStore.from_env()
    plan = Plan.load(store, plan_uri)
    report = publish(plan, output_prefix, store, facts=CardFacts.from_dict(card_facts), claimed=claimed)
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
    """The steps as KFP components that run in `image`. The image has kfp (action100m[pipelines]):
    no `pip install kfp` before every step (0.8 s a task here, and a package index on the cluster)."""
    return SimpleNamespace(
        **{step.__name__: dsl.component(base_image=image, install_kfp_package=False)(step) for step in STEPS}
    )
