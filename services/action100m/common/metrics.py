"""Prometheus metrics of one service process, on their own registry and /metrics port."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class ServiceMetrics:
    """Request counts and latency by method and status code, in-flight calls, per-video outcomes."""

    def __init__(self, service: str):
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "a100m_grpc_requests",
            "gRPC requests handled, by method and status code",
            ["service", "method", "code"],
            registry=self.registry,
        )
        self.errors = Counter(
            "a100m_grpc_errors",
            "gRPC requests that ended with a non-OK status, by code",
            ["service", "method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "a100m_grpc_request_seconds",
            "gRPC request latency in seconds",
            ["service", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "a100m_grpc_in_flight",
            "gRPC requests admitted and not finished (running or queued)",
            ["service"],
            registry=self.registry,
        )
        self.videos = Counter(
            "a100m_videos",
            "videos processed, by outcome",
            ["service", "outcome"],
            registry=self.registry,
        )
        self.ready = Gauge("a100m_model_ready", "1 once the models are loaded", ["service"], registry=self.registry)
        # What the process's libraries export on the default registry, beside ours: vLLM's engine
        # metrics in the refiner (queue, KV cache use, prefix-cache hits), the Python process's.
        self.registry.register(_Forwarded(REGISTRY))
        self._http: Any = None

    def observe(self, method: str, code: str, seconds: float) -> None:
        self.requests.labels(self.service, method, code).inc()
        self.latency.labels(self.service, method).observe(seconds)
        if code != "OK":
            self.errors.labels(self.service, method, code).inc()

    def serve(self, port: int, host: str = "0.0.0.0") -> int:
        """Starts the /metrics HTTP endpoint; port 0 picks a free port. Returns the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._http = server
        return int(server.server_address[1])

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


class _Forwarded:
    """Another registry's samples, served through ours (read at each scrape)."""

    def __init__(self, source: CollectorRegistry):
        self.source = source

    def describe(self) -> list[Any]:
        return []  # names unknown until collected: no duplicate check against ours

    def collect(self) -> Any:
        yield from self.source.collect()
