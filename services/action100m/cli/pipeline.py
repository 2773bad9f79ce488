"""`a100m pipeline compile|submit`: the Kubeflow pipeline, as YAML or as a run on a KFP cluster.

The steps read the store's endpoint and the roots they may touch from the chart's pipeline
ConfigMap (`{release}-pipeline`, made by `helm install`), and the S3 credentials from a Secret.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any


def register(commands: Any) -> None:
    pipeline = commands.add_parser("pipeline", help="the Kubeflow pipeline", description="The Kubeflow pipeline.")
    pipeline_commands = pipeline.add_subparsers(dest="pipeline_command", metavar="COMMAND", required=True)
    _compile_parser(pipeline_commands)
    _submit_parser(pipeline_commands)


def _compile_parser(pipeline_commands: Any) -> None:
    from action100m.pipelines import PIPELINE_IMAGE, S3_SECRET

    compile_ = pipeline_commands.add_parser(
        "compile", help="write the pipeline YAML", description="Compiles the KFP v2 pipeline to YAML."
    )
    compile_.add_argument(
        "--output", default="action100m-pipeline.yaml", help="YAML path (default action100m-pipeline.yaml)"
    )
    compile_.add_argument(
        "--parallelism", type=int, default=8, help="shards in flight, fixed at compile time (default 8)"
    )
    compile_.add_argument("--s3-secret", default=S3_SECRET, help="Secret with access-key/secret-key ('' for none)")
    compile_.add_argument(
        "--release", default="action100m", help="the chart's release name (the default addresses, its ConfigMap)"
    )
    compile_.add_argument(
        "--release-namespace", default=None, help="the namespace the chart is installed in (default: the step's own)"
    )
    compile_.add_argument("--image", default=PIPELINE_IMAGE, help=f"the steps' image (default {PIPELINE_IMAGE})")
    compile_.set_defaults(run=compile_command)


def _submit_parser(pipeline_commands: Any) -> None:
    from action100m.pipelines import PIPELINE_IMAGE, S3_SECRET
    from action100m.pipelines.arguments import add_mode_flags
    from action100m.pipelines.registry import STAGES

    submit = pipeline_commands.add_parser(
        "submit",
        help="start a run on a KFP cluster",
        description="Starts a pipeline run on a Kubeflow Pipelines cluster. The steps take the store's endpoint "
        "and the roots they may read and write from the chart's ConfigMap RELEASE-pipeline (helm values "
        "storage.*), in the namespace the steps run in.",
    )
    submit.add_argument("--host", required=True, help="KFP API URL, e.g. http://ml-pipeline-ui.kubeflow")
    submit.add_argument(
        "--namespace", default=None, help="the KFP namespace (a profile namespace in multi-user Kubeflow)"
    )
    submit.add_argument(
        "--token",
        default=None,
        help="a bearer token for the KFP API (default: A100M_KFP_TOKEN; never on the command line in scripts)",
    )
    submit.add_argument(
        "--service-account-token",
        action="store_true",
        help="authenticate with this pod's projected service-account token (inside the cluster)",
    )
    submit.add_argument("--wait", action="store_true", help="wait for the run; exit 0 only if it succeeded")
    submit.add_argument("--wait-timeout", type=int, default=7 * 24 * 3600, help="seconds --wait waits at most")
    submit.add_argument("--image", default=PIPELINE_IMAGE, help=f"the steps' image (default {PIPELINE_IMAGE})")
    submit.add_argument("--experiment", default="action100m", help="the KFP experiment (default action100m)")
    submit.add_argument(
        "--videos",
        default="",
        help="manifest URI (.jsonl/.parquet) or an s3:// prefix of videos (with --from: the videos' prefix, "
        "files named by video_uid, when caption runs)",
    )
    _start_from_arguments(submit)
    submit.add_argument("--artifact-prefix", required=True, help="s3://bucket/prefix for intermediate artifacts")
    submit.add_argument("--output-prefix", required=True, help="s3://bucket/prefix for the parquet output")
    submit.add_argument(
        "--options",
        default="{}",
        metavar="JSON",
        help='stage options by stage name, e.g. \'{"refine": {"rounds": 1}}\' (default: every service\'s defaults)',
    )
    submit.add_argument("--s3-secret", default=S3_SECRET, help="Secret with access-key/secret-key ('' for none)")
    submit.add_argument(
        "--license", default="", metavar="ID", help="the dataset's license in its card (a Hub license id)"
    )
    submit.add_argument("--shard-size", type=int, default=16, help="videos per shard (default 16)")
    submit.add_argument("--parallelism", type=int, default=8, help="shards in flight (default 8)")
    submit.add_argument("--release", default="action100m", help="the chart's release name (default action100m)")
    submit.add_argument(
        "--release-namespace", default=None, help="the namespace the chart is installed in (default: the step's own)"
    )
    add_mode_flags(submit)  # each optional stage's mode: the videos it runs on
    for spec in STAGES:
        submit.add_argument(
            f"--{spec.service}", default=None, help=f"{spec.service} address (default: the release's headless Service)"
        )
    submit.set_defaults(run=submit_command)


def _start_from_arguments(submit: argparse.ArgumentParser) -> None:
    """`--from`, `--stages`: a run that starts from datasets (pipelines/start_from.py)."""
    from action100m.pipelines.registry import ANNOTATIONS

    submit.add_argument(
        "--from",
        dest="start_from",
        nargs="+",
        default=[],
        metavar="URI",
        help="start from datasets instead of videos: release files (s3://.../train-*.parquet); their tree and "
        "captions are kept and only --stages run",
    )
    submit.add_argument("--stages", default=ANNOTATIONS.name, help="with --from: refine (default) or caption,refine")


def compile_command(args: argparse.Namespace) -> int:
    from action100m.pipelines import PIPELINE_IMAGE
    from action100m.pipelines.dag import compile_pipeline

    path = compile_pipeline(
        args.output, args.parallelism, args.s3_secret or None, args.release, args.image, args.release_namespace
    )
    if args.image == PIPELINE_IMAGE:
        print(f"note: the steps run {PIPELINE_IMAGE}, a placeholder; --image names your build", file=sys.stderr)
    print(path)
    return 0


def stage_options(text: str) -> dict[str, dict[str, Any]]:
    """--options: each stage's fields, checked against its Options message (ValueError naming what is wrong)."""
    from action100m.pipelines.executor import options_dict, parse_options
    from action100m.pipelines.registry import stage

    try:
        given = json.loads(text)
    except ValueError as error:
        raise ValueError(f"--options is not JSON: {error}") from None
    if not isinstance(given, dict):
        raise ValueError('--options: expected an object of stages, e.g. {"refine": {"rounds": 1}}')
    return {stage(name).name: options_dict(parse_options(stage(name), fields)) for name, fields in given.items()}


def submit_command(args: argparse.Namespace) -> int:
    from action100m.pipelines import PIPELINE_IMAGE
    from action100m.pipelines.arguments import PipelineArguments, modes_from_flags
    from action100m.pipelines.dag import build_pipeline
    from action100m.pipelines.registry import STAGES
    from action100m.pipelines.start_from import StartFrom

    try:
        options = stage_options(args.options)
        start = StartFrom(args.start_from, args.stages.split(",")) if args.start_from else None
        if not args.videos and (start is None or start.needs_videos):
            raise ValueError("--videos is needed: a manifest or prefix of videos (with --from: the videos' prefix)")
        if args.image == PIPELINE_IMAGE:
            raise ValueError(
                f"--image: the steps would pull {PIPELINE_IMAGE}, a placeholder; name your build of the pipeline "
                "image (docker/README.md), e.g. --image registry.example.com/action100m/pipeline:TAG"
            )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    arguments = PipelineArguments(
        videos=args.videos,
        artifact_prefix=args.artifact_prefix,
        output_prefix=args.output_prefix,
        addresses={
            spec.name: getattr(args, spec.service) or spec.default_address(args.release, args.release_namespace)
            for spec in STAGES
        },
        options=options,
        shard_size=args.shard_size,
        card={"license": args.license} if args.license else {},
        start_from=start.to_dict() if start else {},
        modes=modes_from_flags(args),
    )
    try:
        client = kfp_client(args)
        run = client.create_run_from_pipeline_func(
            build_pipeline(args.parallelism, args.s3_secret or None, args.release, args.image),
            arguments=arguments.parameters(),
            experiment_name=args.experiment,
        )
        print(f"run {run.run_id} started: {args.host.rstrip('/')}/#/runs/details/{run.run_id}", flush=True)
        if not args.wait:
            return 0
        finished = client.wait_for_run_completion(run.run_id, timeout=args.wait_timeout)
    except Exception as error:  # the KFP client raises urllib3, HTTP and API errors alike
        print(f"error: KFP at {args.host}: {first_line(error)}", file=sys.stderr)
        return 2
    state = str(getattr(finished, "state", "") or "")
    print(f"run {run.run_id} {state.lower() or 'finished'}")
    return 0 if state.upper() == "SUCCEEDED" else 1


def kfp_client(args: argparse.Namespace) -> Any:
    """A KFP client for the host: with a bearer token (multi-user Kubeflow behind its auth), or this
    pod's service-account token, or none (a standalone KFP)."""
    import warnings

    import kfp

    warnings.filterwarnings("ignore", category=FutureWarning, module="kfp")
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # its retries: the error says it once
    token = args.token or os.environ.get("A100M_KFP_TOKEN") or None
    credentials = None
    if args.service_account_token:
        from kfp.client import ServiceAccountTokenVolumeCredentials

        credentials = ServiceAccountTokenVolumeCredentials()
    return kfp.Client(host=args.host, namespace=args.namespace, existing_token=token, credentials=credentials)


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    reason = getattr(error, "reason", None)
    return f"{type(error).__name__}: {reason or (text[0] if text else '')}"[:300]
