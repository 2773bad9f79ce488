"""Client channels to the services, balanced over a service's pods.

A Kubernetes ClusterIP Service pins an HTTP/2 connection to one pod, so scaling a service would
do nothing: clients resolve a headless Service (`dns:///name.ns.svc:50051`) and spread calls
with the `round_robin` policy. UNAVAILABLE (a pod still loading or going away) is retried with
backoff by gRPC itself.
"""

from __future__ import annotations

import json

import grpc

MiB = 1024 * 1024


def service_config(max_attempts: int = 5) -> str:
    """round_robin over all resolved addresses; UNAVAILABLE retried up to `max_attempts` (1: never)."""
    config: dict = {"loadBalancingConfig": [{"round_robin": {}}]}
    if max_attempts >= 2:
        services = ("Embedder", "Segmenter", "Captioner", "Refiner")
        config["methodConfig"] = [
            {
                "name": [{"service": f"action100m.v1.{name}"} for name in services],
                "retryPolicy": {
                    "maxAttempts": max_attempts,
                    "initialBackoff": "1s",
                    "maxBackoff": "30s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    return json.dumps(config)


def open_channel(target: str, max_message_mb: int = 64, max_attempts: int = 5) -> grpc.Channel:
    """An insecure channel (in-cluster traffic; mTLS belongs to the mesh) with raised message limits."""
    limit = max_message_mb * MiB
    options = [
        ("grpc.max_send_message_length", limit),
        ("grpc.max_receive_message_length", limit),
        ("grpc.service_config", service_config(max_attempts)),
        ("grpc.enable_retries", 1),
        ("grpc.keepalive_time_ms", 60_000),
    ]
    return grpc.insecure_channel(target, options=options)
