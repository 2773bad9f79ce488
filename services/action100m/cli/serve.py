"""`a100m serve SERVICE`: run one of the services until SIGTERM (what each image runs)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any


def service_names() -> list[str]:
    """The services this installation has: the `action100m.*` packages with a `service` module."""
    import action100m

    found = {
        entry.name
        for root in action100m.__path__
        for entry in Path(root).iterdir()
        if entry.is_dir() and (entry / "service.py").exists()
    }
    return sorted(found)


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run one of the services (gRPC, health, metrics) until SIGTERM",
        description="Runs a stage service. Settings come from A100M_* environment variables "
        "(A100M_PORT, A100M_METRICS_PORT, A100M_ALLOWED_ROOTS, A100M_<SERVICE>_MODEL, ...; see README).",
    )
    serve.add_argument(
        "service",
        nargs="?",
        choices=service_names(),
        help="which service (default: A100M_SERVICE, as the images set it)",
    )
    serve.set_defaults(run=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    services = service_names()
    service = args.service or os.environ.get("A100M_SERVICE", "")
    if service not in services:
        print(f"error: which service? name one ({', '.join(services)}) or set A100M_SERVICE", file=sys.stderr)
        return 2
    from action100m.common.grpc_server import serve_main

    return serve_main(service, importlib.import_module(f"action100m.{service}.service").serve_from_env)
