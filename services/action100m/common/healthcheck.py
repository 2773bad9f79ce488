"""`python -m action100m.common.healthcheck`: exit 0 when the local service's gRPC health says SERVING.

Used by the images' HEALTHCHECK (Kubernetes uses its native gRPC probes instead).
"""

from __future__ import annotations

import os
import sys


def health(address: str, timeout: float = 2.0) -> str | None:
    """What the gRPC health service at `address` says ("SERVING", "NOT_SERVING", ...), or None when
    nothing answers within `timeout` (down, or hung)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return None
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def is_serving(address: str, timeout: float = 2.0) -> bool:
    """Whether the gRPC service at `address` says SERVING (False while it loads, drains or is down)."""
    return health(address, timeout) == "SERVING"


def main() -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    port = os.environ.get("A100M_PORT", "50051")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.RpcError as error:
            print(f"health check failed: {error.code().name}", file=sys.stderr)
            return 1
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
