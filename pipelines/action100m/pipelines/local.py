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
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from action100m.common.store import ArtifactStore
from action100m.common.uris import UriError, parse_uri, split_roots, to_uri

from .plan import ManifestError, Plan, plan_entries, uids_for
from .progress import ProgressWatcher
from .stages import BY_SERVICE, FINAL, STAGES
from .state import RunReport, StageConfig
from .steps import RetryPolicy, stage_config
from .supervisor import Supervisor, log_tail, stop_children

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
    from action100m.common.tiny_models import build_tiny_models

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
    env: dict[str, str],
    logs: Path,
    startup_timeout: float = 600,
    vllm_python: Path | None = None,
    supervisor: Supervisor | None = None,
) -> Iterator[LocalServices]:
    """Starts the four services on loopback, waits until all say SERVING, and watches them (see
    `Supervisor`); stops every process they started on exit."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    logs.mkdir(parents=True, exist_ok=True)
    addresses: dict[str, str] = {}
    with supervisor or Supervisor() as supervisor:
        for name in (spec.service for spec in STAGES):
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
            service_env = {
                **os.environ,
                **env,
                "A100M_PORT": str(port),
                "A100M_METRICS_PORT": "-1",
                "A100M_HOST": "127.0.0.1",
            }
            supervisor.start(name, [python, "-m", f"action100m.{name}"], service_env, logs / f"{name}.log")
            addresses[BY_SERVICE[name].name] = f"127.0.0.1:{port}"
        deadline = time.monotonic() + startup_timeout
        for name in (spec.service for spec in STAGES):
            process = supervisor.services[name].process
            with grpc.insecure_channel(addresses[BY_SERVICE[name].name]) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                while True:
                    if process.poll() is not None:
                        raise ServiceFailed(
                            f"the {name} exited with {process.returncode} while starting; its log ends:\n"
                            + log_tail(logs / f"{name}.log")
                        )
                    try:
                        status = stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status
                        if status == health_pb2.HealthCheckResponse.SERVING:
                            break
                    except grpc.RpcError:
                        pass
                    if time.monotonic() > deadline:
                        raise ServiceFailed(
                            f"the {name} was not ready after {startup_timeout:.0f}s (log: {logs / name}.log)"
                        )
                    time.sleep(0.5)
            print(f"  {name} ready on {addresses[BY_SERVICE[name].name]}", flush=True)
        supervisor.watch()
        yield LocalServices(addresses, supervisor, logs)


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


def current_stages(addresses: Mapping[str, str], options: Mapping[str, str]) -> dict[str, StageConfig]:
    """Each stage's models, options and fingerprint, asked of the running services as the steps ask."""
    from google.protobuf import json_format

    from action100m.common.grpc_client import open_channel

    configs: dict[str, StageConfig] = {}
    for spec in STAGES:
        with open_channel(addresses[spec.name]) as channel:
            stage_options = json_format.Parse(options.get(spec.name, "{}"), spec.options())
            configs[spec.name] = stage_config(spec.stub(channel), spec, stage_options, configs, RetryPolicy())
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


def _interrupt_on_sigterm() -> None:
    """SIGTERM stops the run as Ctrl-C does (every service and task process stopped, finished work kept)."""
    import signal

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def pipeline_failure(task_log: Path) -> str:
    """The last error line of the kfp.local task log: the reason a step failed, without its traceback."""
    lines = [line.strip() for line in log_tail(task_log, 20000).splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Exit|Interrupt)\b.*:", line) or line.startswith("error:"):
            return line
    return lines[-1] if lines else "no log"


def run_main(
    inputs: Sequence[str],
    out: str,
    preset: str = "tiny",
    store_root: str | None = None,
    shard_size: int = 16,
    parallelism: int = 2,
    models_dir: str | None = None,
    vllm_python: str | None = None,
    allowed_roots: str | None = None,
) -> int:
    """`a100m run`: everything on this machine; prints progress, the output path and a summary.
    Returns 0 when every video is done, 1 when some failed or the run stopped, 2 for bad input."""
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    artifact_prefix = store_root.rstrip("/") if store_root else to_uri(out_dir / "artifacts")
    output_prefix = to_uri(out_dir / "dataset")
    writable = [artifact_prefix, output_prefix]
    os.environ["A100M_ALLOWED_ROOTS"] = _extend_env_roots("A100M_ALLOWED_ROOTS", writable)
    try:
        store = ArtifactStore.from_env()
        manifest = write_manifest(store, inputs, artifact_prefix)
        os.environ["A100M_READ_ONLY_ROOTS"] = _extend_env_roots(
            "A100M_READ_ONLY_ROOTS", read_roots(inputs, [], manifest, "")
        )
        store = ArtifactStore.from_env()
        videos = preflight(store, manifest)
    except (ManifestError, UriError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    readable = read_roots(inputs, videos, manifest, allowed_roots)
    os.environ["A100M_READ_ONLY_ROOTS"] = _extend_env_roots("A100M_READ_ONLY_ROOTS", readable)
    store = ArtifactStore.from_env()
    env = {
        **preset_env(preset, Path(models_dir) if models_dir else out_dir / "models"),
        "A100M_ALLOWED_ROOTS": os.environ["A100M_ALLOWED_ROOTS"],
        "A100M_READ_ONLY_ROOTS": os.environ["A100M_READ_ONLY_ROOTS"],
    }
    options = preset_options(preset)
    key = run_key(store, manifest, videos, env, options, shard_size)
    if nothing_to_do(store, out_dir, key, output_prefix):
        print(
            f"nothing to do: all {len(videos)} videos are published under {output_prefix}/data/ with these "
            "settings; no service started (change an option, or delete the output, to recompute)"
        )
        return 0
    started = time.monotonic()
    run = uuid.uuid4().hex[:12]
    supervisor = Supervisor(out=sys.stdout)  # the terminal, also while task output goes to the log
    task_log_path = out_dir / "logs" / "pipeline.log"
    _interrupt_on_sigterm()
    print(f"starting the services ({preset} preset) ...", flush=True)
    try:
        with local_services(
            env, out_dir / "logs", vllm_python=refiner_python(vllm_python), supervisor=supervisor
        ) as services:
            print(f"services ready after {time.monotonic() - started:.0f}s; running the pipeline", flush=True)
            configs = current_stages(services.addresses, options)
            fingerprints = {name: config.fingerprint for name, config in configs.items()}
            print(f"  kfp.local task logs: {task_log_path}", flush=True)
            plan_uri = Plan.uri_for(artifact_prefix, run)
            try:
                with (
                    ProgressWatcher(store, artifact_prefix, plan_uri, fingerprints, total=len(videos)),
                    open(task_log_path, "w") as task_log,
                    contextlib.redirect_stdout(task_log),
                    contextlib.redirect_stderr(task_log),
                ):
                    run_pipeline(
                        services.addresses,
                        manifest,
                        artifact_prefix,
                        output_prefix,
                        os.environ["A100M_ALLOWED_ROOTS"].split(","),
                        out_dir / "kfp",
                        shard_size,
                        parallelism,
                        os.environ.get("A100M_S3_ENDPOINT", ""),
                        options=options,
                        run=run,
                        read_only_roots=os.environ["A100M_READ_ONLY_ROOTS"].split(","),
                    )
            except KeyboardInterrupt:
                raise
            except Exception:
                if supervisor.failure:  # a task failed because a service was stopped
                    raise KeyboardInterrupt from None
                reason = pipeline_failure(task_log_path)
                print(f"error: the pipeline failed: {reason}\n  (the whole log: {task_log_path})", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        stopped = stop_children()
        tasks = f" and {len(stopped)} task process(es)" if stopped else ""
        why = f"{supervisor.failure}\n" if supervisor.failure else "interrupted: "
        print(
            f"{why}stopped every service{tasks}; finished work is kept: rerun the same command to resume",
            file=sys.stderr,
        )
        return 1 if supervisor.failure else 130
    except ServiceFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    report = RunReport.from_json(store.get_bytes(f"{output_prefix}/report.json").decode())
    final = _final_artifacts(store, artifact_prefix, run, fingerprints[FINAL.name], set(report.done))
    RunRecord(key, fingerprints, report.done + list(report.failed), final).save(out_dir)
    print(summary(report, output_prefix))
    print(f"wall time: {time.monotonic() - started:.0f}s")
    return 0 if report.done and not report.failed else 1
