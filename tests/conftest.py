"""Session-wide fixtures: expensive things (a moto S3 server, tiny models, sample videos) are built once."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURE = REPO.parent / "shared" / "fixtures" / "action100m_sample_hySSAAw4t24.json"

# Model hubs are unreachable here and tests must never try them.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def released_sample() -> Path:
    """The real released annotation of one video (FAIR Noncommercial Research License), read in place."""
    if not SHARED_FIXTURE.exists():
        pytest.skip(f"the released sample is not here ({SHARED_FIXTURE}); it lives in the project's shared/ folder")
    return SHARED_FIXTURE


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
    from action100m.common.tiny_models import build_tiny_models

    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))
