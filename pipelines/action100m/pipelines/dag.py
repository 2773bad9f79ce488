"""The DAG: plan -> ParallelFor over shard indices (the registry's stages, each after the stages it
reads, so the transcriber runs beside the embedder -> export) -> publish. It fans out over shards, never single videos (a huge ParallelFor breaks the Kubernetes
object size limit), and iterates over shard indices while the plan itself stays in the store.
ParallelFor's parallelism is fixed when the pipeline is built, hence a factory.

What every step needs of the cluster (the store's endpoint and the roots a step may read and
write) is not a parameter: each step reads it from its environment, filled from the chart's
pipeline ConfigMap (`{release}-pipeline`) on a cluster, or from `step_env` in the one-machine run.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Dict

from kfp import compiler, dsl

from . import PIPELINE_IMAGE, S3_SECRET
from .components import components
from .registry import STAGES, chart_fullname, default_modes, follows, last_stages

# A step pod that dies (evicted, OOM-killed) is retried by KFP; a transient gRPC error inside a step
# is retried by the step itself; a failed video is never retried (README, "Retries").
POD_RETRIES = 2
S3_SECRET_KEYS = {"access-key": "AWS_ACCESS_KEY_ID", "secret-key": "AWS_SECRET_ACCESS_KEY"}
# The chart's pipeline ConfigMap: its keys become the steps' environment, under the same names.
STEP_SETTINGS = ("A100M_ALLOWED_ROOTS", "A100M_READ_ONLY_ROOTS", "A100M_S3_ENDPOINT", "AWS_REGION")


def pipeline_config_map(release: str = "action100m") -> str:
    """The name of the ConfigMap the chart installed as `release` makes for the pipeline's steps."""
    return f"{chart_fullname(release)}-pipeline"


# What a step pod asks of its node: the steps are thin clients, planning and export read and write
# a shard's files (export holds one shard's rows in memory).
STEP_RESOURCES = {"cpu": ("500m", "2"), "memory": ("1G", "4G")}


def configure_task(
    task: Any, retries: int, step_env: "Mapping[str, str] | None", config_map: str, s3_secret: "str | None"
) -> Any:
    """A step's retries, resources and environment: `step_env` (the one-machine run) or the chart's
    ConfigMap (a cluster), and the S3 credentials' Secret."""
    task.set_retry(num_retries=retries, backoff_duration="30s", backoff_factor=2.0)
    task.set_cpu_request(STEP_RESOURCES["cpu"][0]).set_cpu_limit(STEP_RESOURCES["cpu"][1])
    task.set_memory_request(STEP_RESOURCES["memory"][0]).set_memory_limit(STEP_RESOURCES["memory"][1])
    # The artifact store, not KFP's cache, knows what is finished: a rerun asks the services
    # only for missing outputs, and a changed parameter changes the fingerprints downstream.
    task.set_caching_options(False)
    from kfp import kubernetes

    if step_env is not None:
        for name, value in step_env.items():
            task.set_env_variable(name, value)
    else:
        kubernetes.use_config_map_as_env(
            task, config_map_name=config_map, config_map_key_to_env={name: name for name in STEP_SETTINGS}
        )
    if s3_secret:
        kubernetes.use_secret_as_env(task, secret_name=s3_secret, secret_key_to_env=S3_SECRET_KEYS)
    return task


def build_pipeline(
    parallelism: int = 8,
    s3_secret: "str | None" = S3_SECRET,
    release: str = "action100m",
    image: str = PIPELINE_IMAGE,
    step_env: "Mapping[str, str] | None" = None,
    release_namespace: "str | None" = None,
) -> Any:
    """The pipeline function, with `parallelism` shards in flight at once, its steps running in
    `image`; the services' default addresses are those of the chart installed as `release` (in
    `release_namespace`, when the steps run in another namespace).
    Without `step_env` the steps take their settings from that release's pipeline ConfigMap (a
    cluster); with it, from these values (the one-machine run, where tasks are local processes)."""
    steps = components(image)

    def configure(task: Any, retries: int = POD_RETRIES) -> Any:
        return configure_task(task, retries, step_env, pipeline_config_map(release), s3_secret)

    default_addresses = {spec.name: spec.default_address(release, release_namespace) for spec in STAGES}

    @dsl.pipeline(name="action100m", description="Annotate videos into an Action100M-style dataset.")
    def action100m(
        videos: str,
        artifact_prefix: str,
        output_prefix: str,
        run: str = "",
        addresses: Dict[str, str] = default_addresses,  # stage -> its service's address
        options: Dict[str, Dict[str, Any]] = {},  # noqa: B006  (stage -> its Options fields, e.g. {"refine": {"rounds": 1}})
        shard_size: int = 16,
        overwrite: bool = False,
        card: Dict[str, str] = {},  # noqa: B006  (the dataset card's license and notice, see card.CardFacts)
        start_from: Dict[str, Any] = {},  # noqa: B006  ({"datasets": [URI...], "stages": ["refine"]}: see start_from.py)
        # optional stage -> the videos it runs on, e.g. {"transcribe": "missing"}
        modes: Dict[str, str] = default_modes(),
        claimed: bool = False,  # publish only while this run holds the dataset folder (export.claim_output)
    ) -> str:
        # Tasks in the loop find the plan from the run's id (the `run` parameter, else KFP's job id),
        # never from an upstream task's output.
        run_id = {"artifact_prefix": artifact_prefix, "run": run, "job_id": dsl.PIPELINE_JOB_ID_PLACEHOLDER}
        # Planning is deterministic: a failure there is the input's, and retrying cannot help.
        plan = configure(
            steps.plan_run(videos=videos, shard_size=shard_size, start_from=start_from, modes=modes, **run_id),
            0,
        )
        plan_uri = plan.output
        shards = configure(steps.shard_indices(plan_uri=plan_uri))
        with dsl.ParallelFor(shards.output, parallelism=parallelism) as shard:
            tasks: dict[str, Any] = {}
            for stage in STAGES:
                task = configure(
                    steps.run_stage(
                        stage=stage.name,
                        **run_id,
                        shard=shard,
                        addresses=addresses,
                        options=options,
                        overwrite=overwrite,
                    )
                )
                # it reads the states those tasks leave in the store (no list of task outputs: KFP
                # resolves those badly in ParallelFor)
                task.after(*(tasks[name] for name in follows(stage)))
                task.set_display_name(stage.name)
                tasks[stage.name] = task
            exported = configure(steps.export_shard(**run_id, shard=shard, output_prefix=output_prefix))
            exported.after(*(tasks[name] for name in last_stages()))
        published = configure(
            steps.publish_dataset(
                plan_uri=plan_uri,
                rows=dsl.Collected(exported.output),
                output_prefix=output_prefix,
                card_facts=card,
                claimed=claimed,
            )
        )
        return published.outputs["Output"]  # type: ignore[no-any-return]

    return action100m


def compile_pipeline(
    path: "str | Path",
    parallelism: int = 8,
    s3_secret: "str | None" = S3_SECRET,
    release: str = "action100m",
    image: str = PIPELINE_IMAGE,
    release_namespace: "str | None" = None,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pipeline = build_pipeline(parallelism, s3_secret, release, image, release_namespace=release_namespace)
    compiler.Compiler().compile(pipeline, str(path))
    return path
