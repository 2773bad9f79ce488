"""Session-wide fixtures: expensive things (a moto S3 server, tiny models, sample videos) are built once."""

from __future__ import annotations

import os
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
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """The four tiny random models, built once per session."""
    from action100m.devtools.tiny_models import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture
def serve_in_process():
    """Starts stage servicers on loopback gRPC (real server, real channel); stops them afterwards.

    Call it as serve_in_process(servicer, add_to_server, service_name) -> (host, channel); it waits
    until the servicer's models are loaded.
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

    yield start
    for host in hosts:
        host.stop(grace=0)


@pytest.fixture
def local_store(tmp_path):
    """An artifact store over a temporary folder, and its root URI."""
    from action100m.common.store import ArtifactStore

    root = f"file://{tmp_path}/store"
    return ArtifactStore([root]), root
