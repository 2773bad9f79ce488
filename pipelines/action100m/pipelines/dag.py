"""The DAG: plan shards -> ParallelFor over shards (embed -> segment -> caption -> refine -> export)
-> collect. It fans out over shards, never single videos (a huge ParallelFor breaks the Kubernetes
object size limit). ParallelFor's parallelism is fixed when the pipeline is built, hence a factory.
"""

from pathlib import Path

from kfp import compiler, dsl

from .components import collect_reports, export_shard, plan_shards, run_stage

STAGE_ORDER = ("embed", "segment", "caption", "refine")
DEFAULT_ADDRESSES = {
    "embed": "dns:///action100m-embedder-headless:50051",
    "segment": "dns:///action100m-segmenter-headless:50051",
    "caption": "dns:///action100m-captioner-headless:50051",
    "refine": "dns:///action100m-refiner-headless:50051",
}
RETRIES = 3
# Secret with the S3 credentials, mounted as env vars in every step (Kubernetes runs only).
S3_SECRET = "action100m-s3"
S3_SECRET_KEYS = {"access-key": "AWS_ACCESS_KEY_ID", "secret-key": "AWS_SECRET_ACCESS_KEY"}


def build_pipeline(parallelism: int = 8, s3_secret: "str | None" = S3_SECRET):
    """The pipeline function, with `parallelism` shards in flight at once."""

    def configure(task, retries: int = RETRIES, cache: bool = False):
        task.set_retry(num_retries=retries, backoff_duration="60s", backoff_factor=2.0)
        # The artifact store, not KFP's cache, knows what is finished: a rerun asks the services
        # only for missing outputs, and a changed parameter changes the fingerprints downstream.
        task.set_caching_options(cache)
        if s3_secret:
            from kfp import kubernetes

            kubernetes.use_secret_as_env(task, secret_name=s3_secret, secret_key_to_env=S3_SECRET_KEYS)
        return task

    @dsl.pipeline(name="action100m", description="Annotate videos into an Action100M-style dataset.")
    def action100m(
        videos: str,
        artifact_prefix: str,
        output_prefix: str,
        allowed_roots: str,
        s3_endpoint: str = "",
        embedder: str = DEFAULT_ADDRESSES["embed"],
        segmenter: str = DEFAULT_ADDRESSES["segment"],
        captioner: str = DEFAULT_ADDRESSES["caption"],
        refiner: str = DEFAULT_ADDRESSES["refine"],
        shard_size: int = 16,
        embed_options: str = "{}",
        segment_options: str = "{}",
        caption_options: str = "{}",
        refine_options: str = "{}",
        overwrite: bool = False,
    ) -> str:
        store = {"allowed_roots": allowed_roots, "s3_endpoint": s3_endpoint}
        plan = configure(plan_shards(videos=videos, artifact_prefix=artifact_prefix, shard_size=shard_size, **store))
        with dsl.ParallelFor(plan.output, parallelism=parallelism) as shard:
            state = shard
            for stage, address, options in (
                ("embed", embedder, embed_options),
                ("segment", segmenter, segment_options),
                ("caption", captioner, caption_options),
                ("refine", refiner, refine_options),
            ):
                task = configure(
                    run_stage(
                        stage=stage, shard=state, address=address, options_json=options, overwrite=overwrite, **store
                    )
                )
                task.set_display_name(stage)
                state = task.output
            exported = configure(export_shard(shard=state, output_prefix=output_prefix, **store))
        report = configure(
            collect_reports(reports=dsl.Collected(exported.output), output_prefix=output_prefix, **store)
        )
        return report.output

    return action100m


def compile_pipeline(path, parallelism: int = 8, s3_secret: "str | None" = S3_SECRET) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(parallelism, s3_secret), str(path))
    return path
