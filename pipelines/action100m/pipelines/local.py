"""The one-machine run (`a100m run`): the four services on loopback, the same DAG through kfp.local.

The artifact store is a local folder (or `--store s3://...`); the refiner runs in its vLLM
environment when its backend is vLLM. Progress (the run's videos published by each stage under the
current fingerprints) is read from the artifact store as the run goes; the run ends with the
output path and a summary. A rerun whose settings and inputs match the last finished run, with
everything still published, says so and starts no service.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from action100m.common.store import ArtifactStore
from action100m.common.uris import parse_uri, split_roots, to_uri

from .plan import Plan, plan_entries, uids_for
from .stages import FINAL, STAGES, Stage
from .stages import stage as stage_spec
from .state import RunReport, StageConfig
from .steps import RetryPolicy, stage_config
from .supervisor import Supervisor, log_tail

# Where the refiner's vLLM environment is, unless --refiner-python or A100M_REFINER_PYTHON says: the
# checkout's own `.venv-vllm` (made by `make env`), relative to the directory `a100m run` starts in.
DEFAULT_REFINER_PYTHON = Path(".venv-vllm") / "bin" / "python"


def refiner_python(explicit: str | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """The Python that runs the refiner when its backend is vLLM (the engine lives in its own environment)."""
    return Path(explicit or env.get("A100M_REFINER_PYTHON") or DEFAULT_REFINER_PYTHON).absolute()


def preset_env(preset: str, models_dir: Path) -> dict[str, str]:
    """Service settings of a preset. `tiny` builds random models offline; `paper` names the paper's models."""
    if preset == "paper":
        return {}  # each service's defaults are the paper's models
    if preset == "single-gpu":
        return {
            "A100M_REFINER_MODEL": "openai/gpt-oss-20b",
            "A100M_CAPTIONER_IMAGE_MODEL": "meta-llama/Llama-3.2-11B-Vision-Instruct",
            "A100M_CAPTION_BATCH_SIZE": "4",
        }
    if preset != "tiny":
        raise ValueError(f"unknown preset {preset!r} (tiny, single-gpu, paper)")
    from action100m.devtools.tiny_models import build_tiny_models

    roles = ("vjepa2", "perception_lm", "mllama", "gpt_oss")
    if not all((models_dir / r / "config.json").exists() for r in roles):
        build_tiny_models(models_dir)
    return {
        "A100M_EMBEDDER_MODEL": str(models_dir / "vjepa2"),
        "A100M_CAPTIONER_VIDEO_MODEL": str(models_dir / "perception_lm"),
        "A100M_CAPTIONER_IMAGE_MODEL": str(models_dir / "mllama"),
        "A100M_REFINER_MODEL": str(models_dir / "gpt_oss"),
        # random weights: short strings so every answer ends; a small CPU engine
        "A100M_REFINER_REASONING_PARSER": "",
        "A100M_REFINER_MAX_STRING_CHARS": "40",
        "A100M_REFINER_MAX_OUTPUT_TOKENS": "400",
        "A100M_REFINER_MAX_MODEL_LEN": "8192",
        "A100M_REFINER_KV_CACHE_GIB": "1",
        "A100M_REFINER_ENFORCE_EAGER": "1",
        "A100M_REFINER_MAX_NUM_SEQS": "32",
        "A100M_DEVICE": "cpu",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "A100M_CAPTION_BATCH_SIZE": "16",
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalServices:
    addresses: dict[str, str]  # stage -> host:port
    supervisor: Supervisor
    logs: Path


@contextlib.contextmanager
def local_services(
    env: Mapping[str, str],
    logs: Path,
    startup_timeout: float = 600,
    vllm_python: Path | None = None,
    supervisor: Supervisor | None = None,
    only: Sequence[str] | None = None,
    service_env: Mapping[str, Mapping[str, str]] | None = None,
    external: Mapping[str, str] | None = None,
    refiner_first: bool = False,
) -> Iterator[LocalServices]:
    """Starts the services on loopback (all four, or the stages in `only`), waits until each says
    SERVING, and watches them (see `Supervisor`); stops every process they started on exit.

    `service_env` adds settings per service (its GPUs and memory share from the plan); `external`
    names stages already served elsewhere (stage -> host:port): those are checked, not started.
    `refiner_first` starts the refiner alone before the others (vLLM sizes itself from the GPU's
    free memory at start, so on a shared GPU it must come first).
    """
    logs.mkdir(parents=True, exist_ok=True)
    external = dict(external or {})
    wanted = [spec for spec in STAGES if only is None or spec.name in only]
    addresses = {spec.name: external[spec.name] for spec in wanted if spec.name in external}
    to_start = [spec for spec in wanted if spec.name not in external]
    if refiner_first:
        to_start.sort(key=lambda spec: spec.service != "refiner")
    deadline = time.monotonic() + startup_timeout
    for stage_name, address in addresses.items():
        wait_serving(stage_spec(stage_name).service, address, None, deadline, logs)
        print(f"  {stage_spec(stage_name).service} (already running) on {address}", flush=True)
    with supervisor or Supervisor() as supervisor:
        started: list[Stage] = []
        for spec in to_start:
            name = spec.service
            port = _free_port()
            python = sys.executable
            if name == "refiner" and env.get("A100M_REFINER_BACKEND", "vllm") == "vllm":
                vllm = vllm_python or refiner_python()
                if not vllm.exists():
                    raise RuntimeError(
                        f"the refiner's vLLM backend needs the Python of a vLLM environment; {vllm} "
                        "does not exist (run `make env`, or set --refiner-python / A100M_REFINER_PYTHON)"
                    )
                python = str(vllm)
            process_env = {
                **os.environ,
                **env,
                **(service_env or {}).get(name, {}),
                "A100M_PORT": str(port),
                "A100M_METRICS_PORT": "-1",
                "A100M_HOST": "127.0.0.1",
            }
            supervisor.start(name, [python, "-m", f"action100m.{name}"], process_env, logs / f"{name}.log")
            addresses[spec.name] = f"127.0.0.1:{port}"
            started.append(spec)
            if refiner_first and name == "refiner":
                _ready(spec, addresses, supervisor, deadline, logs)
        for spec in started:
            if not (refiner_first and spec.service == "refiner"):
                _ready(spec, addresses, supervisor, deadline, logs)
        supervisor.watch()
        yield LocalServices(addresses, supervisor, logs)


def _ready(spec: Stage, addresses: Mapping[str, str], supervisor: Supervisor, deadline: float, logs: Path) -> None:
    wait_serving(spec.service, addresses[spec.name], supervisor.services[spec.service].process, deadline, logs)
    print(f"  {spec.service} ready on {addresses[spec.name]}", flush=True)


def wait_serving(name: str, address: str, process: subprocess.Popen[bytes] | None, deadline: float, logs: Path) -> None:
    """Until the service at `address` says SERVING; a started process that exits, or the deadline,
    raises ServiceFailed with the reason."""
    from action100m.common.healthcheck import is_serving

    while not is_serving(address):
        if process is not None and process.poll() is not None:
            raise ServiceFailed(
                f"the {name} exited with {process.returncode} while starting; its log ends:\n"
                + log_tail(logs / f"{name}.log")
            )
        if time.monotonic() > deadline:
            where = f"log: {logs / name}.log" if process is not None else "started elsewhere"
            raise ServiceFailed(f"the {name} at {address} was not serving in time ({where})")
        time.sleep(0.5)


class ServiceFailed(RuntimeError):
    """A service that could not start, or died and stopped the run."""


def write_manifest(store: ArtifactStore, inputs: Sequence[str], artifact_prefix: str) -> str:
    """A manifest URI for the inputs: a given manifest as it is, or one written for a list of videos
    (uids from the file names, see `plan.uids_for`)."""
    if len(inputs) == 1 and inputs[0].endswith((".jsonl", ".parquet")):
        return to_uri(inputs[0])
    uris = [to_uri(item) for item in inputs]
    rows = [{"video_uid": uid, "uri": uri} for uid, uri in zip(uids_for(uris), uris, strict=True)]
    manifest = f"{artifact_prefix.rstrip('/')}/inputs/manifest.jsonl"
    store.put_bytes(manifest, "".join(json.dumps(r) + "\n" for r in rows).encode())
    return manifest


def preflight(store: ArtifactStore, manifest: str) -> list[dict[str, object]]:
    """The manifest's videos, read before any service starts: a manifest that cannot be planned
    (ManifestError: file and line) stops the run in a second, not after the services' start."""
    return plan_entries(store, manifest)


def current_stage(
    address: str, spec: Stage, options: Mapping[str, str], upstream: dict[str, StageConfig]
) -> StageConfig:
    """A stage's models, options and fingerprint, asked of its running service as the steps ask."""
    from google.protobuf import json_format

    from action100m.common.grpc_client import open_channel

    with open_channel(address) as channel:
        stage_options = json_format.Parse(options.get(spec.name, "{}"), spec.options())
        return stage_config(spec.stub(channel), spec, stage_options, upstream, RetryPolicy())


def current_stages(addresses: Mapping[str, str], options: Mapping[str, str]) -> dict[str, StageConfig]:
    """Every stage's config, in stage order (a stage's fingerprint holds its upstream ones)."""
    configs: dict[str, StageConfig] = {}
    for spec in STAGES:
        configs[spec.name] = current_stage(addresses[spec.name], spec, options, configs)
    return configs


@dataclass(frozen=True)
class RunRecord:
    """What the last finished run of an output folder was: enough to see that a rerun has nothing to do."""

    key: str  # hash of the inputs (with their content signatures), the preset's settings, options, shard size
    fingerprints: dict[str, str]
    videos: list[str]
    artifacts: list[str]  # each finished video's final artifact

    @staticmethod
    def path(out_dir: Path) -> Path:
        return out_dir / "run.json"

    def save(self, out_dir: Path) -> None:
        self.path(out_dir).write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, out_dir: Path) -> RunRecord | None:
        try:
            return cls(**json.loads(cls.path(out_dir).read_text()))
        except (OSError, ValueError, TypeError):
            return None


def run_key(
    store: ArtifactStore,
    manifest: str,
    videos: Sequence[dict[str, object]],
    env: Mapping[str, str],
    options: Mapping[str, str],
    shard_size: int,
) -> str:
    """What decides that a rerun has nothing to do; the videos' content signatures are part of it, so
    a video edited in place is never taken as done."""
    from action100m.common.version import __version__

    def signature(uri: str) -> str:
        try:
            return store.signature(uri)
        except Exception as error:  # planning will fail this video and say why
            return f"unreadable: {type(error).__name__}"

    blob = json.dumps(
        {
            "manifest": hashlib.sha256(store.get_bytes(manifest)).hexdigest(),
            "inputs": [signature(str(video["uri"])) for video in videos],
            "env": dict(env),
            "options": dict(options),
            "shard_size": shard_size,
            "version": __version__,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def nothing_to_do(store: ArtifactStore, out_dir: Path, key: str, output_prefix: str) -> bool:
    """Whether the last run of this folder had the same key, and every video's final artifact and the
    dataset it exported are still there."""
    record = RunRecord.load(out_dir)
    if record is None or record.key != key:
        return False
    try:
        report = RunReport.from_json(store.get_bytes(f"{output_prefix}/report.json").decode())
    except Exception:
        return False
    if report.failed or not all(store.exists(uri) for uri in report.files):
        return False
    return all(store.exists(uri) for uri in record.artifacts)


def run_pipeline(
    addresses: dict[str, str],
    manifest: str,
    artifact_prefix: str,
    output_prefix: str,
    allowed_roots: Sequence[str],
    pipeline_root: Path,
    shard_size: int = 16,
    parallelism: int = 2,
    s3_endpoint: str = "",
    overwrite: bool = False,
    options: Mapping[str, str] | None = None,
    run: str = "",
    read_only_roots: Sequence[str] = (),
) -> str:
    """Runs the DAG through kfp.local against running services; returns its one-line summary."""
    import warnings

    from kfp import local

    from .dag import build_pipeline

    options = options or {}
    # Locally every task runs in this environment, not in its image; KFP warns about each one.
    warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
    warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root))
    pipeline = build_pipeline(parallelism=parallelism, s3_secret=None)
    arguments: dict[str, object] = {f"{spec.name}_address": addresses[spec.name] for spec in STAGES}
    arguments.update({f"{spec.name}_options": options.get(spec.name, "{}") for spec in STAGES})
    with builtin_print_restored():
        task = pipeline(
            videos=manifest,
            artifact_prefix=artifact_prefix,
            output_prefix=output_prefix,
            allowed_roots=",".join(allowed_roots),
            read_only_roots=",".join(read_only_roots),
            s3_endpoint=s3_endpoint,
            shard_size=shard_size,
            overwrite=overwrite,
            run=run,
            **arguments,
        )
    return str(task.output)


@contextlib.contextmanager
def builtin_print_restored() -> Iterator[None]:
    """kfp.local indents a task's output by replacing `builtins.print` while the task runs and
    putting back what it found; two tasks of a ParallelFor that overlap put back each other's
    replacement, and every later `print` of the process is indented by 4 spaces (kfp 2.17). What
    this process prints after the pipeline (progress, the summary) must stay as written."""
    import builtins

    original = builtins.print
    try:
        yield
    finally:
        builtins.print = original


def summary(report: RunReport, output_prefix: str, max_failures: int = 20) -> str:
    export = report.export
    lines = [
        f"output: {output_prefix}/data/ (card: README.md, report: report.json)",
        f"videos: {export.rows} done, {len(report.failed)} failed of {report.videos}",
        f"nodes: {export.nodes}, segments annotated: {export.segments_annotated}",
        "stage seconds: " + ", ".join(f"{name} {s.seconds:.1f}" for name, s in report.stats.items()),
    ]
    for uid, failure in list(report.failed.items())[:max_failures]:
        lines.append(f"  failed {uid} at {failure.stage} ({failure.code}): {failure.reason}")
    if len(report.failed) > max_failures:
        lines.append(f"  ... {len(report.failed) - max_failures} more in report.json")
    return "\n".join(lines)


def preset_options(preset: str) -> dict[str, str]:
    """Stage options of a preset, as the DAG's *_options parameters (JSON of the stage's Options message)."""
    if preset == "tiny":  # random captioners rarely stop by themselves
        return {"caption": json.dumps({"captionMaxNewTokens": 16, "actionMaxNewTokens": 8, "imageMaxNewTokens": 16})}
    return {}


def read_roots(
    inputs: Sequence[str], videos: Sequence[dict[str, object]], manifest: str, allowed: str | None
) -> list[str]:
    """Where the run may read its videos (read-only roots): the folders of the video files given on
    the command line and of the manifest, and either `--allowed-roots` or, without it, the folders
    of every video the manifest names (the user named them)."""
    roots = [to_uri(Path(i).resolve().parent) for i in inputs if "://" not in i]
    if manifest.startswith("file://"):
        roots.append(manifest.rsplit("/", 1)[0])
    if allowed is not None:
        roots.extend(to_uri(root) for root in split_roots(allowed))
    else:
        for video in videos:
            uri = parse_uri(str(video["uri"]))
            roots.append(f"s3://{uri.bucket}" if uri.scheme == "s3" else to_uri(Path(uri.key).parent))
    return list(dict.fromkeys(roots))


def _extend_env_roots(name: str, roots: Sequence[str]) -> str:
    """The roots already in the environment (never overwritten), then these."""
    return ",".join(dict.fromkeys([*split_roots(os.environ.get(name, "")), *roots]))


def _final_artifacts(
    store: ArtifactStore, artifact_prefix: str, run: str, fingerprint: str, done: set[str]
) -> list[str]:
    plan = Plan.load(store, Plan.uri_for(artifact_prefix, run))
    return [
        FINAL.artifact(artifact_prefix, fingerprint, video)
        for index in range(plan.shards)
        for video in plan.shard(store, index, artifact_prefix).videos
        if video.video_uid in done
    ]


def pipeline_failure(task_log: Path) -> str:
    """The last error line of the kfp.local task log: the reason a step failed, without its traceback."""
    lines = [line.strip() for line in log_tail(task_log, 20000).splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b.*:", line) or line.startswith("error:"):
            return line
    return lines[-1] if lines else "no log"
