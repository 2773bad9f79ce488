"""Client channels to the services, balanced over a service's pods.

A Kubernetes ClusterIP Service pins an HTTP/2 connection to one pod, so scaling a service would
do nothing: clients resolve a headless Service (`dns:///name.ns.svc:50051`) and spread calls
with the `round_robin` policy. Keepalive comes from the policy the servers share (keepalive.py).

Retries are not this layer's job: gRPC itself only replays calls that never reached a server
(transparent retry). A stage call that fails part-way is resumed by the pipeline step, which
knows which videos are already published and sends only the others (see README, "Retries").
"""

from __future__ import annotations

import json

import grpc

from .keepalive import DEFAULT_KEEPALIVE, Keepalive

MiB = 1024 * 1024
SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


def open_channel(target: str, max_message_mb: int = 64, keepalive: Keepalive = DEFAULT_KEEPALIVE) -> grpc.Channel:
    """An insecure channel (in-cluster traffic; mTLS belongs to the mesh) with raised message limits."""
    limit = max_message_mb * MiB
    options: list[tuple[str, int | str]] = [
        ("grpc.max_send_message_length", limit),
        ("grpc.max_receive_message_length", limit),
        ("grpc.service_config", SERVICE_CONFIG),
        *keepalive.client_options(),
    ]
    return grpc.insecure_channel(target, options=options)
