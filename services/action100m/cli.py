"""`a100m`: the command line of action100m.

Each subcommand imports what it needs when it runs, so `a100m --help` is instant and a service
image without (say) torch still runs the subcommands that do not need it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .common import paper
from .common.version import __version__


def _cmd_validate(args: argparse.Namespace) -> int:
    from .common.release.validate import Validation, validate_file

    result = Validation()
    for path in args.files:
        for problem in validate_file(path, result, args.min_leaf_seconds, args.min_gpt_seconds, args.strict_ids):
            print(problem)
    verdict = "OK" if result.problems == 0 else f"{result.problems} problem(s)"
    if result.warnings:
        verdict += f", {result.warnings} warning(s)"
    print(f"checked {result.videos} video(s) in {result.files} file(s): {verdict}", file=sys.stderr)
    return 0 if result.problems == 0 else 1


def _cmd_stats(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .common.release import iter_dataset
    from .common.release.stats import dataset_figures, figures_rows, figures_table

    columns = {}
    try:  # one file in memory at a time, however large the dataset
        for location in args.datasets:
            columns[Path(location).name or location] = dataset_figures(iter_dataset(location))
        if args.against:
            reference = (row for location in args.against for row in iter_dataset(location))
            columns["reference"] = dataset_figures(reference)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"rows": figures_rows(columns)}, indent=1))
    else:
        print(figures_table(columns))
    return 0


def _cmd_models_fetch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from action100m.pipelines.local import preset_env
    from action100m.pipelines.preflight import configured_models, environment

    from .devtools.model_fetch import FetchError, fetch_models

    models = list(args.model)
    if args.preset:
        by_service = configured_models(environment(preset_env(args.preset, Path(args.dir))))
        models += [model for names in by_service.values() for model in names]
    if not models:
        print("error: name the models: --preset single-gpu|paper, or --model ID (repeatable)", file=sys.stderr)
        return 2
    try:
        for found in fetch_models(models, Path(args.dir)):
            print(f"{found.model}: {found.bytes / 1024**3:.2f} GiB in {found.path}", flush=True)
    except FetchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _cmd_build_tiny(args: argparse.Namespace) -> int:
    from .devtools.tiny_models import build_tiny_models

    paths = build_tiny_models(args.dir, seed=args.seed)
    for role, path in paths.items():
        print(f"{role}: {path}")
    return 0


def _services() -> list[str]:
    """The services, in pipeline order, from the stage registry."""
    from action100m.pipelines.stages import STAGES

    return [spec.service for spec in STAGES]


def _cmd_serve(args: argparse.Namespace) -> int:
    import importlib

    service = args.service or os.environ.get("A100M_SERVICE", "")
    if service not in _services():
        print(f"error: which service? name one ({', '.join(_services())}) or set A100M_SERVICE", file=sys.stderr)
        return 2
    return importlib.import_module(f"action100m.{service}.service").serve_from_env()


def _cmd_render_prompt(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from .refiner.prompts import PromptLimits
    from .refiner.render import print_messages, render_prompt

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    limits = PromptLimits(subtree_token_budget=args.budget)
    try:
        messages = render_prompt(args.file, args.video_uid, args.node_id, count, limits, args.templates, args.prompt)
    except KeyError as err:
        print(err.args[0], file=sys.stderr)
        return 1
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print_messages(messages, args.json)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from action100m.pipelines.run import RunSettings, parse_services, run_main

    try:
        services = parse_services(args.services)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = RunSettings(
        preset=args.preset,
        store_root=args.store,
        shard_size=args.shard_size,
        parallelism=args.parallelism,
        models_dir=args.models,
        vllm_python=args.refiner_python,
        allowed_roots=args.allowed_roots,
        schedule=args.schedule,
        gpus=args.gpus,
        gpu_memory_gib=args.gpu_memory_gib,
        services=services,
    )
    return run_main(args.inputs, args.out, settings)


def _cmd_plan(args: argparse.Namespace) -> int:
    from pathlib import Path

    from action100m.pipelines.local import preset_env
    from action100m.pipelines.memory.facts import UnknownModel
    from action100m.pipelines.memory.plan import format_plan, plan_memory, target_gpus
    from action100m.pipelines.preflight import environment

    try:
        target = target_gpus(args.gpus, args.gpu_memory_gib)
        if not target.gpus or not target.gpu_bytes:
            raise ValueError("no CUDA GPU is visible here: say which GPUs to plan for (--gpus 0 --gpu-memory-gib 80)")
        env = environment(preset_env(args.preset, Path(args.models)) if args.preset else {})
        plan = plan_memory(env, target.gpus, target.gpu_bytes, args.schedule)
    except (ValueError, UnknownModel) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(plan.to_dict(), indent=2) if args.json else format_plan(plan))
    return 0 if plan.schedule.kind != "none" else 1


def _cmd_view(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .viewer.catalog import load_catalog

    try:
        catalog = load_catalog(args.datasets, args.videos)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.export:
        from .viewer.site import export_site

        page = export_site(catalog, Path(args.export), copy_videos=args.copy_videos)
        print(f"{page} ({len(catalog.videos)} videos): open it in a browser, or serve the folder")
        return 0
    from .viewer.server import serve

    serve(catalog, args.host, args.port)
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .viewer.catalog import load_catalog
    from .viewer.plot import plot_stats, plot_timeline

    try:
        catalog = load_catalog([args.dataset])
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.stats:
        for path in plot_stats(catalog.videos, Path(args.out)):
            print(path)
        return 0
    matches = [video for video in catalog.videos if video.uid == args.video_uid]
    if not matches:
        known = ", ".join(v.uid for v in catalog.videos[:5])
        print(f"error: no video {args.video_uid!r} in {args.dataset} (it has {known}...)", file=sys.stderr)
        return 2
    print(plot_timeline(matches[0], Path(args.out)))
    return 0


def _cmd_pipeline_compile(args: argparse.Namespace) -> int:
    from action100m.pipelines.dag import compile_pipeline

    path = compile_pipeline(args.output, args.parallelism, args.s3_secret or None, args.release, args.image)
    print(path)
    return 0


def _videos_root(videos: str) -> str:
    """The folder the videos are read from: the prefix itself, or the folder of a manifest."""
    is_manifest = videos.endswith((".jsonl", ".json", ".parquet"))
    return videos.rsplit("/", 1)[0] if is_manifest else videos.rstrip("/")


def _cmd_pipeline_submit(args: argparse.Namespace) -> int:
    from action100m.pipelines.dag import build_pipeline
    from action100m.pipelines.stages import STAGES

    roots = args.allowed_roots or ",".join(dict.fromkeys([args.artifact_prefix, args.output_prefix]))
    arguments: dict[str, object] = {
        "videos": args.videos,
        "artifact_prefix": args.artifact_prefix,
        "output_prefix": args.output_prefix,
        "allowed_roots": roots,
        "read_only_roots": args.read_only_roots or _videos_root(args.videos),
        "s3_endpoint": args.s3_endpoint,
        "shard_size": args.shard_size,
    }
    for spec in STAGES:
        arguments[f"{spec.name}_address"] = getattr(args, spec.service) or spec.default_address(
            args.release, args.release_namespace
        )
    try:
        client = _kfp_client(args)
        run = client.create_run_from_pipeline_func(
            build_pipeline(args.parallelism, args.s3_secret or None, args.release, args.image),
            arguments=arguments,
            experiment_name=args.experiment,
        )
        print(f"run {run.run_id} started: {args.host.rstrip('/')}/#/runs/details/{run.run_id}", flush=True)
        if not args.wait:
            return 0
        finished = client.wait_for_run_completion(run.run_id, timeout=args.wait_timeout)
    except Exception as error:  # the KFP client raises urllib3, HTTP and API errors alike
        print(f"error: KFP at {args.host}: {_first_line(error)}", file=sys.stderr)
        return 2
    state = str(getattr(finished, "state", "") or "")
    print(f"run {run.run_id} {state.lower() or 'finished'}")
    return 0 if state.upper() == "SUCCEEDED" else 1


def _kfp_client(args: argparse.Namespace) -> Any:
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


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    reason = getattr(error, "reason", None)
    return f"{type(error).__name__}: {reason or (text[0] if text else '')}"[:300]


def _cmd_sample_videos(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .devtools.synthetic_video import write_video

    folder = Path(args.dir)
    samples = {"kitchen": (360, (0, 120, 250)), "workshop": (300, (0, 150)), "garden": (240, (0, 80, 160))}
    for name, (frames, scenes) in samples.items():
        print(write_video(folder / f"{name}.mp4", frames=frames, fps=25, size=(320, 180), scene_starts=scenes))
    return 0


PRESETS_HELP = """presets (GPU needs from `a100m plan`):
  tiny        random tiny models built offline: every code path on a CPU, outputs are noise
  single-gpu  V-JEPA 2 ViT-g, Perception-LM-3B, Llama-3.2-11B-Vision, GPT-OSS-20B (caption batch 4):
              about 57 GiB in all; every service together on one 80 GB GPU (A100/H100); stage by
              stage on a 48 GB GPU; a 24 GB GPU cannot hold the captioner's two models
  paper       the paper's models, GPT-OSS-120B as the refiner: about 113 GiB in all; stage by stage on
              one 80 GB GPU, together on two or more (the refiner alone on one 80 GB GPU)
"""


def build_parser() -> argparse.ArgumentParser:
    from action100m.pipelines import PIPELINE_IMAGE

    parser = argparse.ArgumentParser(
        prog="a100m", description="Turn a collection of videos into an Action100M-style dataset."
    )
    parser.add_argument("--version", action="version", version=f"action100m {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser(
        "validate",
        help="check release files (parquet or JSON) against the release's schema, tree rules and ids",
        description="Checks each file against the release's Arrow schema and every video against the "
        "Action100M tree rules, and prints each problem with its file, video and node. Node ids that do "
        "not follow the release's recipe are warnings (errors with --strict-ids). Exits 1 if any problem is found.",
    )
    validate.add_argument(
        "files", nargs="+", metavar="FILE", help="a .parquet file or a .json file in the release layout"
    )
    validate.add_argument(
        "--min-leaf-seconds",
        type=float,
        default=paper.MIN_LEAF_SECONDS,
        help=f"shortest allowed leaf (default {paper.MIN_LEAF_SECONDS})",
    )
    validate.add_argument(
        "--min-gpt-seconds",
        type=float,
        default=paper.MIN_ANNOTATED_SECONDS,
        help=f"shortest node with a gpt annotation (default {paper.MIN_ANNOTATED_SECONDS})",
    )
    validate.add_argument(
        "--strict-ids",
        action="store_true",
        help="node ids that do not follow the release's recipe are errors (default: warnings)",
    )
    validate.set_defaults(run=_cmd_validate)

    stats = commands.add_parser(
        "stats",
        help="the figures of a dataset's trees and texts, beside a reference (the release)",
        description="Prints the figures that characterise an Action100M dataset (videos, hours, nodes and "
        "leaves per video-minute, depth, leaf durations, node duration shares, tubelet-aligned boundaries, gpt "
        "coverage, words per text field), one column per DATASET and, with --against, one for the reference.",
    )
    stats.add_argument("datasets", nargs="+", metavar="DATASET", help="a release file, or a folder of them")
    stats.add_argument("--against", nargs="+", metavar="RELEASE", default=[], help="the reference's files or folders")
    stats.add_argument("--json", action="store_true", help='print {"rows": [...]} instead of the table')
    stats.set_defaults(run=_cmd_stats)

    serve = commands.add_parser(
        "serve",
        help="run one of the services (gRPC, health, metrics) until SIGTERM",
        description="Runs a stage service. Settings come from A100M_* environment variables "
        "(A100M_PORT, A100M_METRICS_PORT, A100M_ALLOWED_ROOTS, A100M_<SERVICE>_MODEL, ...; see README).",
    )
    serve.add_argument(
        "service", nargs="?", choices=_services(), help="which service (default: A100M_SERVICE, as the images set it)"
    )
    serve.set_defaults(run=_cmd_serve)

    run = commands.add_parser(
        "run",
        help="annotate videos on this machine: the four services on loopback, the DAG through kfp.local",
        description="The main job on one machine. Starts the four services on loopback (the refiner in "
        ".venv-vllm), runs the same KFP pipeline through kfp.local with a local artifact store (or --store "
        "s3://...), shows progress, and writes parquet in the release format under OUT/dataset.",
        epilog=PRESETS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "inputs", nargs="+", metavar="VIDEO_OR_MANIFEST", help="video files, or one manifest (.jsonl/.parquet)"
    )
    run.add_argument("--out", required=True, help="output folder (dataset/, artifacts/, logs/, models/)")
    run.add_argument(
        "--preset",
        default="tiny",
        choices=("tiny", "single-gpu", "paper"),
        help="models: tiny random ones built offline (default), single-gpu or the paper's (see below)",
    )
    run.add_argument("--store", default=None, help="artifact prefix, e.g. s3://bucket/run (default: OUT/artifacts)")
    run.add_argument("--models", default=None, help="where the tiny models are (default: OUT/models)")
    run.add_argument("--shard-size", type=int, default=16, help="videos per shard (default 16)")
    run.add_argument("--parallelism", type=int, default=2, help="shards in flight (default 2)")
    run.add_argument(
        "--refiner-python",
        default=None,
        metavar="PYTHON",
        help="the Python of the refiner's vLLM environment (default: A100M_REFINER_PYTHON, else "
        ".venv-vllm/bin/python in the current directory)",
    )
    run.add_argument(
        "--allowed-roots",
        default=None,
        metavar="ROOTS",
        help="comma-separated folders or s3://bucket[/prefix] the manifest's videos may be read from (read "
        "only; default: the folders of the videos it names). A video outside them fails with the reason",
    )
    run.add_argument(
        "--schedule",
        default="auto",
        choices=("auto", "together", "stagewise"),
        help="all services at once, or one stage at a time (each service started, run over every shard, "
        "stopped); auto: what the memory plan says fits the GPUs (on a CPU: together)",
    )
    run.add_argument("--gpus", default=None, metavar="0,1,...", help="the GPUs this run may use (default: all visible)")
    run.add_argument(
        "--gpu-memory-gib", type=float, default=None, metavar="G", help="each GPU's memory (default: measured)"
    )
    run.add_argument(
        "--services",
        default=None,
        metavar="STAGE=HOST:PORT,...",
        help="services already running (embed, segment, caption, refine): used as they are; the others are started",
    )
    run.set_defaults(run=_cmd_run)

    view = commands.add_parser(
        "view",
        help="look at datasets in the browser: each video beside its tree of segments and their texts",
        description="Serves a page over release files (our parquet, the official parquet or JSON, an `a100m run` "
        "output folder): the videos, a search over every text, and per video the player beside its tree as a "
        "timeline (the nodes covering the playing time highlighted). Loopback by default; prints the URL. With "
        "--export, writes the same page as a static site instead.",
    )
    view.add_argument("datasets", nargs="+", metavar="DATASET", help="a release file, or a folder of them")
    view.add_argument(
        "--videos",
        default=None,
        metavar="DIR_OR_S3_PREFIX",
        help="where the video files are, matched by video_uid or file stem (an `a100m run` folder knows its own)",
    )
    view.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    view.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    view.add_argument("--export", default=None, metavar="OUTDIR", help="write a static site here instead of serving")
    view.add_argument("--copy-videos", action="store_true", help="with --export: copy the videos into OUTDIR/videos")
    view.set_defaults(run=_cmd_view)

    plot = commands.add_parser(
        "plot",
        help="PNGs: one video's tree as a timeline, or a dataset's distributions",
        description="Draws one video's tree (--video-uid, one row per level) into the PNG --out, or with --stats "
        "the dataset's distributions (node durations, depth, leaf durations, segments per minute, gpt field "
        "lengths, most frequent action verbs) as PNGs in the folder --out.",
    )
    plot.add_argument("dataset", metavar="DATASET", help="a release file, or a folder of them")
    which = plot.add_mutually_exclusive_group(required=True)
    which.add_argument("--video-uid", default=None, help="the video to draw")
    which.add_argument("--stats", action="store_true", help="the dataset's distributions")
    plot.add_argument("--out", required=True, help="the PNG (--video-uid) or a folder (--stats)")
    plot.set_defaults(run=_cmd_plot)

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
        choices=("tiny", "single-gpu", "paper"),
        help="the models (default paper); A100M_* variables override them as for the services",
    )
    plan.add_argument("--models", default="models", help="where the tiny preset's models are (default ./models)")
    plan.add_argument("--gpus", default=None, metavar="0,1,...", help="the GPUs (default: all visible)")
    plan.add_argument("--gpu-memory-gib", type=float, default=None, metavar="G", help="each GPU's memory")
    plan.add_argument("--schedule", default="auto", choices=("auto", "together", "stagewise"))
    plan.add_argument("--json", action="store_true", help="the plan as JSON (rows per service, the schedule)")
    plan.set_defaults(run=_cmd_plan)

    pipeline = commands.add_parser("pipeline", help="the Kubeflow pipeline", description="The Kubeflow pipeline.")
    pipeline_commands = pipeline.add_subparsers(dest="pipeline_command", metavar="COMMAND", required=True)
    compile_ = pipeline_commands.add_parser(
        "compile", help="write the pipeline YAML", description="Compiles the KFP v2 pipeline to YAML."
    )
    compile_.add_argument("--output", default="action100m-pipeline.yaml", help="YAML path")
    compile_.add_argument("--parallelism", type=int, default=8, help="shards in flight (fixed at compile time)")
    compile_.add_argument(
        "--s3-secret", default="action100m-s3", help="Secret with access-key/secret-key ('' for none)"
    )
    compile_.add_argument("--release", default="action100m", help="the chart's release name (the default addresses)")
    compile_.add_argument("--image", default=PIPELINE_IMAGE, help=f"the steps' image (default {PIPELINE_IMAGE})")
    compile_.set_defaults(run=_cmd_pipeline_compile)
    submit = pipeline_commands.add_parser(
        "submit",
        help="start a run on a KFP cluster",
        description="Starts a pipeline run on a Kubeflow Pipelines cluster.",
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
    submit.add_argument("--experiment", default="action100m")
    submit.add_argument("--videos", required=True, help="manifest URI (.jsonl/.parquet) or an s3:// prefix of videos")
    submit.add_argument("--artifact-prefix", required=True, help="s3://bucket/prefix for intermediate artifacts")
    submit.add_argument("--output-prefix", required=True, help="s3://bucket/prefix for the parquet output")
    submit.add_argument(
        "--allowed-roots",
        default="",
        help="comma-separated roots steps may read and write (default: the artifact and output prefixes)",
    )
    submit.add_argument(
        "--read-only-roots",
        default="",
        help="comma-separated roots steps may only read: the videos (default: the folder of --videos)",
    )
    submit.add_argument("--s3-endpoint", default="", help="S3/MinIO endpoint URL as seen from the pipeline's pods")
    submit.add_argument("--s3-secret", default="action100m-s3", help="Secret with access-key/secret-key ('' for none)")
    submit.add_argument("--shard-size", type=int, default=16)
    submit.add_argument("--parallelism", type=int, default=8)
    submit.add_argument("--release", default="action100m", help="the chart's release name (default action100m)")
    submit.add_argument(
        "--release-namespace", default=None, help="the namespace the chart is installed in (default: the step's own)"
    )
    for service in _services():
        submit.add_argument(
            f"--{service}", default=None, help=f"{service} address (default: the release's headless Service)"
        )
    submit.set_defaults(run=_cmd_pipeline_submit)

    refiner = commands.add_parser("refiner", help="refiner utilities", description="Refiner utilities.")
    refiner_commands = refiner.add_subparsers(dest="refiner_command", metavar="COMMAND", required=True)
    render = refiner_commands.add_parser(
        "render-prompt",
        help="print the exact first-round messages the refiner sends for one node",
        description="Renders the refiner's request for one node of a release file (parquet or JSON): the "
        "shared head (task, metadata, whole-video tree) then the segment and its subtree, cut to the token "
        "budget with the model's tokenizer.",
    )
    render.add_argument("file", metavar="FILE", help="release file, parquet or JSON")
    render.add_argument("--video-uid", required=True)
    render.add_argument("--node-id", required=True)
    render.add_argument(
        "--tokenizer",
        default=os.environ.get("A100M_REFINER_MODEL", "openai/gpt-oss-120b"),
        help="tokenizer (hub id or dir) that counts the budget (default: A100M_REFINER_MODEL)",
    )
    render.add_argument("--budget", type=int, default=6000, help="token budget of the subtree (default 6000)")
    render.add_argument(
        "--templates",
        default=os.environ.get("A100M_REFINER_TEMPLATES"),
        help="YAML file replacing templates (default: A100M_REFINER_TEMPLATES)",
    )
    render.add_argument(
        "--prompt",
        default=os.environ.get("A100M_REFINER_PROMPT", "ours"),
        metavar="PROFILE",
        help="'ours', or 'official:DIR' with DIR a checkout of facebookresearch/Action100M (default: "
        "A100M_REFINER_PROMPT, else ours)",
    )
    render.add_argument("--json", action="store_true", help="print the messages as JSON")
    render.set_defaults(run=_cmd_render_prompt)

    models = commands.add_parser("models", help="model utilities", description="Model utilities.")
    model_commands = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)
    tiny = model_commands.add_parser(
        "build-tiny",
        help="write random-weight tiny models of the four paper architectures",
        description="Writes tiny random-weight VJEPA2, Perception-LM, Mllama and GPT-OSS models with their "
        "processors/tokenizers under DIR, offline, for tests and the offline demo (the `tiny` preset).",
    )
    tiny.add_argument("dir", metavar="DIR", help="output folder (one sub-folder per model)")
    tiny.add_argument("--seed", type=int, default=0, help="random seed of the weights (default 0)")
    tiny.set_defaults(run=_cmd_build_tiny)
    fetch = model_commands.add_parser(
        "fetch",
        help="download a preset's (or the named) models into a Hugging Face cache, resumably",
        description="Downloads the weights the services will load into HF_HOME-style folder DIR (DIR/hub), "
        "skipping what is there and resuming partial files; the token comes from HF_TOKEN. Then start the "
        "services with HF_HOME=DIR and HF_HUB_OFFLINE=1. The chart runs this as a Job on its model cache.",
    )
    fetch.add_argument("dir", metavar="DIR", help="the Hugging Face home (the services' HF_HOME)")
    fetch.add_argument("--preset", default=None, choices=("single-gpu", "paper"), help="the models of a preset")
    fetch.add_argument("--model", action="append", default=[], metavar="ID", help="a hub id (repeatable)")
    fetch.set_defaults(run=_cmd_models_fetch)

    samples = commands.add_parser(
        "sample-videos",
        help="write three short synthetic videos with scene cuts (for the offline demo)",
        description="Writes three synthetic videos (h264, 25 fps, 320x180, 10-15 s) with known scene cuts.",
    )
    samples.add_argument("dir", metavar="DIR")
    samples.set_defaults(run=_cmd_sample_videos)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
