"""One HTTP/2 keepalive policy for both ends of every channel, so long calls survive.

A stage call may run for an hour with no bytes on the wire. Clients ping to keep load balancers
and NAT from dropping the idle connection; a server that keeps gRPC's default ping policy (at most
one ping every 5 minutes, 2 strikes) answers such pings with GOAWAY ENHANCE_YOUR_CALM
(`too_many_pings`), which cancels the call mid-work. Both ends therefore take their options from
the same `Keepalive`: the server accepts pings at half the client's interval, so jitter never
counts as a strike, and keeps the strike limit against clients that ping faster than that.
"""

from __future__ import annotations

from dataclasses import dataclass

GrpcOptions = list[tuple[str, int]]


@dataclass(frozen=True)
class Keepalive:
    """How often a client pings an idle connection, and how long it waits for the answer."""

    ping_interval_ms: int = 60_000
    ping_timeout_ms: int = 20_000

    def __post_init__(self) -> None:
        if self.ping_interval_ms < 2 or self.ping_timeout_ms < 1:
            raise ValueError(f"keepalive intervals must be positive, got {self}")

    def client_options(self) -> GrpcOptions:
        return [
            ("grpc.keepalive_time_ms", self.ping_interval_ms),
            ("grpc.keepalive_timeout_ms", self.ping_timeout_ms),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),  # a silent hour-long call keeps pinging
        ]

    def server_options(self) -> GrpcOptions:
        return [
            # The shortest ping interval the server tolerates (gRPC's default is 5 minutes).
            ("grpc.http2.min_ping_interval_without_data_ms", self.ping_interval_ms // 2),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_ping_strikes", 2),
        ]


DEFAULT_KEEPALIVE = Keepalive()
