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
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from action100m.common.store import ArtifactStore
from action100m.common.uris import to_uri

from .keys import artifact_key
from .plan import Plan
from .progress import ProgressWatcher
from .stages import BY_SERVICE, FINAL, STAGES
from .state import RunReport, StageConfig
from .steps import RetryPolicy, stage_config

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
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path


@contextlib.contextmanager
def local_services(
    env: dict[str, str], logs: Path, startup_timeout: float = 600, vllm_python: Path | None = None
) -> Iterator[LocalServices]:
    """Starts the four services on loopback and waits until all say SERVING; stops them on exit."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    logs.mkdir(parents=True, exist_ok=True)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    addresses: dict[str, str] = {}
    try:
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
            with open(logs / f"{name}.log", "w") as sink:
                processes[name] = subprocess.Popen(
                    [python, "-m", f"action100m.{name}"], env=service_env, stdout=sink, stderr=subprocess.STDOUT
                )
            addresses[BY_SERVICE[name].name] = f"127.0.0.1:{port}"
        deadline = time.monotonic() + startup_timeout
        for name in (spec.service for spec in STAGES):
            channel = grpc.insecure_channel(addresses[BY_SERVICE[name].name])
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                if processes[name].poll() is not None:
                    tail = (logs / f"{name}.log").read_text()[-3000:]
                    raise RuntimeError(f"the {name} exited with {processes[name].returncode}:\n{tail}")
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the {name} was not ready after {startup_timeout:.0f}s (log: {logs / name}.log)"
                    )
                time.sleep(0.5)
            channel.close()
            print(f"  {name} ready on {addresses[BY_SERVICE[name].name]}", flush=True)
        yield LocalServices(addresses, processes, logs)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def write_manifest(store: ArtifactStore, inputs: Sequence[str], artifact_prefix: str) -> str:
    """A manifest URI for the inputs: a given manifest as it is, or one written for a list of videos."""
    if len(inputs) == 1 and inputs[0].endswith((".jsonl", ".parquet")):
        return to_uri(inputs[0])
    rows = []
    for item in inputs:
        uri = to_uri(item)
        stem = Path(uri.split("://", 1)[1]).stem
        rows.append({"video_uid": stem, "uri": uri})
    manifest = f"{artifact_prefix.rstrip('/')}/inputs/manifest.jsonl"
    store.put_bytes(manifest, "".join(json.dumps(r) + "\n" for r in rows).encode())
    return manifest


def manifest_size(store: ArtifactStore, manifest: str) -> int | None:
    """How many videos the manifest names (None if it cannot be read: planning will say why)."""
    from .plan import read_manifest

    try:
        return len(read_manifest(store, manifest))
    except Exception:
        return None


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

    key: str  # hash of the inputs, the preset's settings, the options and the shard size
    fingerprints: dict[str, str]
    videos: list[str]

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
    store: ArtifactStore, manifest: str, env: Mapping[str, str], options: Mapping[str, str], shard_size: int
) -> str:
    from action100m.common.version import __version__

    blob = json.dumps(
        {
            "manifest": hashlib.sha256(store.get_bytes(manifest)).hexdigest(),
            "env": dict(env),
            "options": dict(options),
            "shard_size": shard_size,
            "version": __version__,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def nothing_to_do(store: ArtifactStore, out_dir: Path, key: str, artifact_prefix: str, output_prefix: str) -> bool:
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
    fp = record.fingerprints.get(FINAL.name, "")
    return all(
        store.exists(artifact_key(artifact_prefix, FINAL.kind, fp, uid, FINAL.extension)) for uid in record.videos
    )


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


def run_main(
    inputs: Sequence[str],
    out: str,
    preset: str = "tiny",
    store_root: str | None = None,
    shard_size: int = 16,
    parallelism: int = 2,
    models_dir: str | None = None,
    vllm_python: str | None = None,
) -> int:
    """`a100m run`: everything on this machine; prints progress, the output path and a summary."""
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    artifact_prefix = store_root.rstrip("/") if store_root else to_uri(out_dir / "artifacts")
    output_prefix = to_uri(out_dir / "dataset")
    video_dirs = sorted({to_uri(Path(i).resolve().parent) for i in inputs if "://" not in i})
    roots = [artifact_prefix, output_prefix, *video_dirs]
    s3_endpoint = os.environ.get("A100M_S3_ENDPOINT", "")
    env = {
        **preset_env(preset, Path(models_dir) if models_dir else out_dir / "models"),
        "A100M_ALLOWED_ROOTS": ",".join(roots),
    }
    os.environ["A100M_ALLOWED_ROOTS"] = ",".join(roots)
    store = ArtifactStore.from_env()
    manifest = write_manifest(store, inputs, artifact_prefix)
    if manifest.startswith("file://") and not any(manifest.startswith(r.rstrip("/") + "/") for r in roots):
        roots.append(manifest.rsplit("/", 1)[0])
        env["A100M_ALLOWED_ROOTS"] = os.environ["A100M_ALLOWED_ROOTS"] = ",".join(roots)
        store = ArtifactStore.from_env()
    options = preset_options(preset)
    key = run_key(store, manifest, env, options, shard_size)
    if nothing_to_do(store, out_dir, key, artifact_prefix, output_prefix):
        record = RunRecord.load(out_dir)
        count = len(record.videos) if record else 0
        print(
            f"nothing to do: all {count} videos are published under {output_prefix}/data/ with these "
            "settings; no service started (change an option, or delete the output, to recompute)"
        )
        return 0
    started = time.monotonic()
    run = uuid.uuid4().hex[:12]
    print(f"starting the services ({preset} preset) ...", flush=True)
    with local_services(env, out_dir / "logs", vllm_python=refiner_python(vllm_python)) as services:
        print(f"services ready after {time.monotonic() - started:.0f}s; running the pipeline", flush=True)
        configs = current_stages(services.addresses, options)
        fingerprints = {name: config.fingerprint for name, config in configs.items()}
        print(f"  kfp.local task logs: {out_dir / 'logs' / 'pipeline.log'}", flush=True)
        plan_uri = Plan.uri_for(artifact_prefix, run)
        with (
            ProgressWatcher(store, artifact_prefix, plan_uri, fingerprints, total=manifest_size(store, manifest)),
            open(out_dir / "logs" / "pipeline.log", "w") as task_log,
            contextlib.redirect_stdout(task_log),
            contextlib.redirect_stderr(task_log),
        ):
            run_pipeline(
                services.addresses,
                manifest,
                artifact_prefix,
                output_prefix,
                roots,
                out_dir / "kfp",
                shard_size,
                parallelism,
                s3_endpoint,
                options=options,
                run=run,
            )
    report = RunReport.from_json(store.get_bytes(f"{output_prefix}/report.json").decode())
    RunRecord(key, fingerprints, report.done + list(report.failed)).save(out_dir)
    print(summary(report, output_prefix))
    print(f"wall time: {time.monotonic() - started:.0f}s")
    return 0 if report.done else 1
