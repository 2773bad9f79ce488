"""Session-wide fixtures: expensive things (a moto S3 server, tiny models, sample videos) are built once."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from .support import free_port

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURE = REPO.parent / "shared" / "fixtures" / "action100m_sample_hySSAAw4t24.json"

# Model hubs are unreachable here and tests must never try them.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def released_sample() -> Path:
    """The real released annotation of one video (FAIR Noncommercial Research License), read in place."""
    if not SHARED_FIXTURE.exists():
        pytest.skip(f"the released sample is not here ({SHARED_FIXTURE}); it lives in the project's shared/ folder")
    return SHARED_FIXTURE


@pytest.fixture(scope="session")
def synthetic_release(tmp_path_factory) -> Path:
    """A release file made by the tests from the tree rules (JSON, the official columnar layout)."""
    from action100m.common.release import write_json

    from .support import synthetic_release_row

    return write_json([synthetic_release_row()], tmp_path_factory.mktemp("release") / "synthetic.json")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each release-format test runs on the synthetic release, and also on the real released sample
    where the project's shared/ folder is (a clone without it runs the synthetic case only)."""
    if "release_file" in metafunc.fixturenames:
        kinds = ["synthetic", "released"] if SHARED_FIXTURE.exists() else ["synthetic"]
        metafunc.parametrize("release_file", kinds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def release_file(request) -> Path:
    if request.param == "synthetic":
        return request.getfixturevalue("synthetic_release")
    return request.getfixturevalue("released_sample")


@pytest.fixture(scope="session")
def moto_s3():
    """A real S3-protocol server (moto) on loopback; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def chart():
    """The Helm chart, loaded once (rendered in Python by helm-python-sdk: no helm binary), rendered
    as an install of its default (gated) models must be: with a Hugging Face token Secret named,
    unless the values name one themselves (`"tokenSecret": ""` to see the refusal)."""
    from helm_python.chart import Chart

    return ChartWithToken(Chart.load(REPO / "helm" / "action100m"))


def with_hf_token(values: dict) -> dict:
    """The values with `huggingFace.tokenSecret` set, where they do not say it themselves."""
    token = {"tokenSecret": "hf-token", **(values.get("huggingFace") or {})}
    return {**values, "huggingFace": token}


class ChartWithToken:
    def __init__(self, chart):
        self._chart = chart

    def render(self, values: dict, **kwargs):
        return self._chart.render(with_hf_token(values), **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._chart, name)


@pytest.fixture(scope="session")
def vllm_refiner(tiny_models, moto_s3, tmp_path_factory):
    """The session's refiner with a real vLLM engine: the tiny preset's settings and our prompt, allowed
    to read and write anywhere under the session's temporary folder and in the moto bucket `runs`.
    Tests that only need a refiner use it (directly, or `a100m run --services refine=ADDRESS`)."""
    from action100m.pipelines.local.presets import preset_env

    from .refiners import refiner_process
    from .support import need_vllm_env

    python = need_vllm_env()
    settings = {
        **preset_env("tiny", Path(tiny_models["gpt_oss"]).parent),
        "A100M_ALLOWED_ROOTS": f"file://{tmp_path_factory.getbasetemp()},s3://runs",
        "A100M_S3_ENDPOINT": moto_s3,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    with refiner_process(python, settings, tmp_path_factory.mktemp("vllm-refiner"), "ours") as refiner:
        yield refiner


OFFICIAL_REPO = REPO.parent / "shared" / "fixtures" / "official_repo"


@pytest.fixture(scope="session")
def vllm_refiner_as_in_the_chart(chart, tiny_models, tmp_path_factory):
    """The second configuration of the refiner: the authors' prompt (where ../shared has it) and the
    chart's pod arrangement (HOME a read-only mount, caches in the emptyDir the chart mounts)."""
    from action100m.pipelines.registry.stage import chart_fullname

    from .helm.test_wiring import RELEASE, render, workloads
    from .refiners import read_only_home, refiner_process
    from .support import need_vllm_env

    python = need_vllm_env()
    folder = tmp_path_factory.mktemp("vllm-refiner-chart")
    deployment = workloads(render(chart, {}))[f"{chart_fullname(RELEASE)}-refiner"]
    chart_settings = {
        e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e
    }
    profile = "official" if OFFICIAL_REPO.exists() else "ours"
    settings = {
        "A100M_ALLOWED_ROOTS": f"file://{tmp_path_factory.getbasetemp()}",
        "A100M_REFINER_MODEL": str(tiny_models["gpt_oss"]),
        "A100M_REFINER_MAX_REASONING_TOKENS": "8",  # random weights would reason for ever
        "A100M_REFINER_MAX_STRING_CHARS": "40",
        "A100M_REFINER_MAX_OUTPUT_TOKENS": "400",
        "A100M_REFINER_MAX_MODEL_LEN": "8192",
        "A100M_REFINER_KV_CACHE_GIB": "1",
        "A100M_REFINER_ENFORCE_EAGER": "1",
        "A100M_REFINER_MAX_NUM_SEQS": "16",
        "A100M_REFINER_PROMPT": f"official:{OFFICIAL_REPO}" if profile == "official" else "ours",
    }
    with (
        read_only_home(chart_settings, folder) as (home_settings, home),
        refiner_process(python, {**settings, **home_settings}, folder, profile, unset=("XDG_CONFIG_HOME",)) as refiner,
    ):
        refiner.home = home
        refiner.caches = folder / "emptydir" if home else None
        yield refiner


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """How many vLLM engines this session started (each costs 25-45 s here; the suite aims at four)."""
    from .refiners import engine_starts

    basetemp = config._tmp_path_factory.getbasetemp() if hasattr(config, "_tmp_path_factory") else None
    if basetemp is not None and basetemp.exists():
        terminalreporter.write_line(f"vLLM engine starts in this session: {engine_starts(basetemp)}")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """The tiny random models (the paper's four and Whisper), built once per session."""
    from action100m.devtools.tiny_models import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


SPOKEN = "Now tighten the chain to five newton metres. Then check that the wheel turns freely."
SPEECH_STARTS = 5.0  # seconds of silence before the speech


@pytest.fixture(scope="session")
def sound_videos(tmp_path_factory) -> dict[str, Path]:
    """Three videos as users bring them: `speech` (5 s of silence, then a sentence said by Debian's
    espeak-ng, then 2 s of silence), `silent` (a soundtrack of silence) and `mute` (no audio stream)."""
    import numpy as np

    from action100m.devtools.synthetic_video import spoken, write_video

    if shutil.which("espeak-ng") is None:
        pytest.skip("no espeak-ng here to say the test sentence (.ci/run installs it with apt where it can)")
    folder = tmp_path_factory.mktemp("sound-videos")
    speech = spoken(SPOKEN, silence_before=SPEECH_STARTS, silence_after=2.0)
    seconds = len(speech) / 16000
    return {
        "speech": write_video(folder / "speech.mp4", frames=int(seconds * 8), fps=8, size=(96, 64), soundtrack=speech),
        "silent": write_video(
            folder / "silent.mp4", frames=64, fps=8, size=(96, 64), soundtrack=np.zeros(8 * 16000, np.float32)
        ),
        "mute": write_video(folder / "mute.mp4", frames=64, fps=8, size=(96, 64)),
    }


@contextlib.contextmanager
def _in_process_servers():
    """Starts stage servicers on loopback gRPC (real server, real channel); stops them on exit.

    Yields start(servicer, add_to_server, service_name) -> (host, channel); it waits until the
    servicer's models are loaded.
    """
    from action100m.common.grpc_client import open_channel
    from action100m.common.grpc_server import ServerSettings, ServiceHost

    hosts = []

    def start(servicer, add_to_server, service_name: str):
        settings = ServerSettings(host="127.0.0.1", port=0, metrics_port=-1, max_concurrent=1, max_queued=4)
        host = ServiceHost(
            service_name.rsplit(".", 1)[-1].lower(),
            [(add_to_server, servicer)],
            [service_name],
            settings,
            load=getattr(servicer, "load", None),
        )
        host.start()
        hosts.append(host)
        if not host.ready.wait(120):
            raise RuntimeError(f"{service_name} did not load: {host.load_error}")
        return host, open_channel(f"127.0.0.1:{host.port}")

    try:
        yield start
    finally:
        for host in hosts:
            host.stop(grace=0)


@pytest.fixture
def serve_in_process():
    """Stage servicers on loopback gRPC for one test: serve_in_process(servicer, add_to_server,
    service_name) -> (host, channel)."""
    with _in_process_servers() as start:
        yield start


@pytest.fixture(scope="module")
def serve_in_process_once():
    """As `serve_in_process`, for servicers a whole module shares (their models load once)."""
    with _in_process_servers() as start:
        yield start


@pytest.fixture
def local_store(tmp_path):
    """An artifact store over a temporary folder, and its root URI."""
    from action100m.common.store import ArtifactStore

    root = f"file://{tmp_path}/store"
    return ArtifactStore([root]), root
