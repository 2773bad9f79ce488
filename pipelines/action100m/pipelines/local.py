"""The one-machine run (`a100m run`): the four services on loopback, the same DAG through kfp.local.

The artifact store is a local folder (or `--store s3://...`); the refiner runs in `.venv-vllm` when
its backend is vLLM. Progress (videos through each stage) is read from the artifact store as the
run goes; the run ends with the output path and a summary.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from action100m.common.store import ArtifactStore
from action100m.common.uris import to_uri

# Where the refiner's vLLM environment is, unless --refiner-python or A100M_REFINER_PYTHON says: the
# checkout's own `.venv-vllm` (made by `make env`), relative to the directory `a100m run` starts in.
DEFAULT_REFINER_PYTHON = Path(".venv-vllm") / "bin" / "python"


def refiner_python(explicit: str | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """The Python that runs the refiner when its backend is vLLM (the engine lives in its own environment)."""
    return Path(explicit or env.get("A100M_REFINER_PYTHON") or DEFAULT_REFINER_PYTHON).absolute()


SERVICES = ("embedder", "segmenter", "captioner", "refiner")
STAGE_OF_SERVICE = {"embedder": "embed", "segmenter": "segment", "captioner": "caption", "refiner": "refine"}
KIND_OF_STAGE = {"embed": "embeddings", "segment": "trees", "caption": "captions", "refine": "annotations"}


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
        return sock.getsockname()[1]


@dataclass
class LocalServices:
    addresses: dict[str, str]  # stage -> host:port
    processes: dict[str, subprocess.Popen]
    logs: Path


@contextlib.contextmanager
def local_services(
    env: dict[str, str], logs: Path, startup_timeout: float = 600, vllm_python: Path | None = None
) -> Iterator[LocalServices]:
    """Starts the four services on loopback and waits until all say SERVING; stops them on exit."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    logs.mkdir(parents=True, exist_ok=True)
    processes, addresses = {}, {}
    try:
        for name in SERVICES:
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
            addresses[STAGE_OF_SERVICE[name]] = f"127.0.0.1:{port}"
        deadline = time.monotonic() + startup_timeout
        for name in SERVICES:
            channel = grpc.insecure_channel(addresses[STAGE_OF_SERVICE[name]])
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
            print(f"  {name} ready on {addresses[STAGE_OF_SERVICE[name]]}", flush=True)
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


def _progress(store: ArtifactStore, prefix: str, total: int, stop: threading.Event, out, every: float = 3.0) -> None:
    last = None
    while not stop.wait(every):
        counts = []
        for stage, kind in KIND_OF_STAGE.items():
            try:
                counts.append(f"{stage} {len(store.list(f'{prefix}/{kind}'))}/{total}")
            except Exception:
                counts.append(f"{stage} ?")
        line = "  progress: " + ", ".join(counts)
        if line != last:
            print(line, file=out, flush=True)
            last = line


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
    options: dict[str, str] | None = None,
) -> dict:
    """Runs the DAG through kfp.local against running services; returns the run report."""
    import warnings

    from kfp import local

    from .dag import build_pipeline

    options = options or {}
    # Locally every task runs in this environment, not in its image; KFP warns about each one.
    warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
    warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root))
    pipeline = build_pipeline(parallelism=parallelism, s3_secret=None)
    run = pipeline(
        videos=manifest,
        artifact_prefix=artifact_prefix,
        output_prefix=output_prefix,
        allowed_roots=",".join(allowed_roots),
        s3_endpoint=s3_endpoint,
        embedder=addresses["embed"],
        segmenter=addresses["segment"],
        captioner=addresses["caption"],
        refiner=addresses["refine"],
        shard_size=shard_size,
        overwrite=overwrite,
        embed_options=options.get("embed", "{}"),
        segment_options=options.get("segment", "{}"),
        caption_options=options.get("caption", "{}"),
        refine_options=options.get("refine", "{}"),
    )
    return json.loads(run.output)


def summary(report: dict, output_prefix: str) -> str:
    lines = [
        f"output: {output_prefix}",
        f"videos: {len(report['done'])} done, {len(report['failed'])} failed of {report['videos']}",
        f"nodes: {report['nodes']}, segments annotated: {report['segments_annotated']}",
        "stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in report["stage_seconds"].items()),
    ]
    for uid, failure in report["failed"].items():
        lines.append(f"  failed {uid} at {failure['stage']} ({failure['code']}): {failure['reason']}")
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
    started = time.monotonic()
    print(f"starting the services ({preset} preset) ...", flush=True)
    with local_services(env, out_dir / "logs", vllm_python=refiner_python(vllm_python)) as services:
        print(f"services ready after {time.monotonic() - started:.0f}s; running the pipeline", flush=True)
        stop = threading.Event()
        total = len(inputs) if len(inputs) > 1 or not inputs[0].endswith((".jsonl", ".parquet")) else "?"
        watcher = threading.Thread(
            target=_progress, args=(store, artifact_prefix, total, stop, sys.stdout), daemon=True
        )
        watcher.start()
        print(f"  kfp.local task logs: {out_dir / 'logs' / 'pipeline.log'}", flush=True)
        try:
            with (
                open(out_dir / "logs" / "pipeline.log", "w") as task_log,
                contextlib.redirect_stdout(task_log),
                contextlib.redirect_stderr(task_log),
            ):
                report = run_pipeline(
                    services.addresses,
                    manifest,
                    artifact_prefix,
                    output_prefix,
                    roots,
                    out_dir / "kfp",
                    shard_size,
                    parallelism,
                    s3_endpoint,
                    options=preset_options(preset),
                )
        finally:
            stop.set()
    print(summary(report, output_prefix))
    print(f"wall time: {time.monotonic() - started:.0f}s")
    return 0 if report["done"] else 1
