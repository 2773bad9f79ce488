"""The KFP components: each is a few lines that call the step functions of this package.

They run in the pipeline image (docker/pipeline.Dockerfile, `action100m[pipelines]` installed),
or, in the one-machine run, in this environment. Everything heavy happens in the services.
(No `from __future__ import annotations` here: KFP reads the real type hints.)
"""

from kfp import dsl

PIPELINE_IMAGE = "ghcr.io/action100m/pipeline:0.1.0"


@dsl.component(base_image=PIPELINE_IMAGE)
def plan_shards(videos: str, artifact_prefix: str, shard_size: int, allowed_roots: str, s3_endpoint: str) -> list[str]:
    """Reads the manifest or lists the prefix; one JSON shard state per `shard_size` videos."""
    from action100m.pipelines.shards import plan_shards as plan
    from action100m.pipelines.steps import store_for

    return plan(store_for(allowed_roots, s3_endpoint), videos, artifact_prefix, shard_size)


@dsl.component(base_image=PIPELINE_IMAGE)
def run_stage(
    stage: str, shard: str, address: str, options_json: str, overwrite: bool, allowed_roots: str, s3_endpoint: str
) -> str:
    """Embed, segment, caption or refine one shard through the stage's service."""
    from action100m.pipelines.steps import run_stage as run
    from action100m.pipelines.steps import store_for

    return run(stage, shard, address, options_json, overwrite, store=store_for(allowed_roots, s3_endpoint))


@dsl.component(base_image=PIPELINE_IMAGE)
def export_shard(shard: str, output_prefix: str, allowed_roots: str, s3_endpoint: str) -> str:
    """One parquet file in the release format for the shard's finished videos."""
    from action100m.pipelines.export import export_shard as export
    from action100m.pipelines.steps import store_for

    return export(shard, output_prefix, store_for(allowed_roots, s3_endpoint))


@dsl.component(base_image=PIPELINE_IMAGE)
def collect_reports(reports: list[str], output_prefix: str, allowed_roots: str, s3_endpoint: str) -> str:
    """The run report (also written next to the parquet files as report.json)."""
    from action100m.pipelines.export import collect_reports as collect
    from action100m.pipelines.steps import store_for

    return collect(reports, output_prefix, store_for(allowed_roots, s3_endpoint))
