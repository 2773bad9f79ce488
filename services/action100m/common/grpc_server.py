"""The gRPC server bootstrap shared by the four services.

One `ServiceHost` gives a service: health checking (NOT_SERVING until its models are loaded, and
again while it drains), reflection, a Prometheus /metrics port, raised message limits, bounded
admission (RESOURCE_EXHAUSTED beyond `max_concurrent + max_queued` calls), UNAVAILABLE while
loading, graceful shutdown on SIGTERM and one log line per request naming its videos and outcome.
Health and reflection calls bypass admission so probes answer even when the queue is full.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .config import from_env
from .metrics import ServiceMetrics

log = logging.getLogger("action100m.server")

UNGUARDED_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
LIVENESS = "liveness"
MiB = 1024 * 1024


@dataclass
class ServerSettings:
    """Settings of a service process; each field can be set by the env var A100M_<FIELD>."""

    host: str = "[::]"
    port: int = 50051
    metrics_port: int = 9090  # -1 disables /metrics, 0 picks a free port
    max_concurrent: int = 1  # requests worked on at once (GPU services: 1, they batch inside)
    max_queued: int = 8  # admitted requests waiting for a slot; beyond: RESOURCE_EXHAUSTED
    max_message_mb: int = 64
    grace_seconds: float = 120.0  # how long SIGTERM waits for in-flight requests

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **overrides: Any) -> ServerSettings:
        return from_env(cls, env, **overrides)

    def channel_options(self) -> list[tuple[str, int]]:
        limit = self.max_message_mb * MiB
        return [("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)]


class DeadlineExceeded(Exception):
    """Raised by `check_alive` when the caller's deadline passed or it cancelled."""


def check_alive(context: grpc.ServicerContext) -> None:
    """Call between units of work: stops a request whose client is gone or out of time."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceeded("the request's deadline passed")
    if not context.is_active():
        raise DeadlineExceeded("the client cancelled the request")


def _video_uids(request: Any) -> list[str]:
    return [getattr(v, "video_uid", "?") for v in getattr(request, "videos", ())]


def _video_outcomes(response: Any) -> list[tuple[str, str, str]]:
    from action100m.v1 import common_pb2

    outcomes = []
    for result in getattr(response, "results", ()):
        status = getattr(result, "status", None)
        if status is not None:
            outcomes.append((status.video_uid, common_pb2.Outcome.Name(status.outcome), status.error_code))
    return outcomes


class _Interceptor(grpc.ServerInterceptor):
    def __init__(self, host: ServiceHost):
        self.host = host

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(UNGUARDED_PREFIXES):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._guard(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # the API has only unary calls; anything else passes unguarded

    def _guard(self, behaviour: Callable, method: str) -> Callable:
        host = self.host
        short = method.rsplit("/", 1)[-1]

        def guarded(request, context: grpc.ServicerContext):
            started = time.monotonic()
            videos = _video_uids(request)
            if not host.ready.is_set():
                host.record(short, videos, "UNAVAILABLE", started, None, "models are loading")
                context.abort(grpc.StatusCode.UNAVAILABLE, f"{host.name} is loading its models; retry later")
            if not host.admission.acquire(blocking=False):
                host.record(short, videos, "RESOURCE_EXHAUSTED", started, None, "queue full")
                context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"{host.name} queue is full ({host.settings.max_concurrent} running, "
                    f"{host.settings.max_queued} queued); retry with backoff or scale the service",
                )
            host.metrics.in_flight.labels(host.name).inc()
            response, detail = None, ""
            try:
                with host.work_slots:
                    check_alive(context)
                    response = behaviour(request, context)
                return response
            except DeadlineExceeded as err:
                detail = str(err)
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"{host.name}: {err}")
            except Exception as err:
                if context.code() not in (None, grpc.StatusCode.OK):
                    detail = context.details() or ""
                    raise  # an abort by the servicer: keep its code and message
                detail = f"{type(err).__name__}: {err}"
                log.exception("%s %s failed", host.name, short)
                context.abort(grpc.StatusCode.INTERNAL, f"{host.name} {short}: {detail}")
            finally:
                code = context.code() or grpc.StatusCode.OK
                if not context.is_active() and code == grpc.StatusCode.OK and response is None:
                    code = grpc.StatusCode.CANCELLED
                host.record(short, videos, code.name, started, response, detail)
                host.metrics.in_flight.labels(host.name).dec()
                host.admission.release()

        return guarded


class ServiceHost:
    """Runs gRPC servicers with health, reflection, metrics, admission control and graceful stop."""

    def __init__(
        self,
        name: str,
        servicers: Sequence[tuple[Callable[[Any, grpc.Server], None], Any]],
        service_names: Iterable[str],
        settings: ServerSettings | None = None,
        load: Callable[[], None] | None = None,
    ):
        self.name = name
        self.settings = settings or ServerSettings()
        self.servicers = list(servicers)
        self.service_names = list(service_names)
        self.load = load
        self.ready = threading.Event()
        self.load_error: BaseException | None = None
        self.stopped = threading.Event()
        self.metrics = ServiceMetrics(name)
        self.admission = threading.BoundedSemaphore(self.settings.max_concurrent + self.settings.max_queued)
        self.work_slots = threading.BoundedSemaphore(self.settings.max_concurrent)
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.server: grpc.Server | None = None
        self.port: int | None = None
        self.metrics_port: int | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> int:
        """Binds and starts serving (NOT_SERVING until `load` finishes). Returns the gRPC port."""
        s = self.settings
        # Threads for every admitted call plus spares so health probes never wait behind work.
        pool = futures.ThreadPoolExecutor(max_workers=s.max_concurrent + s.max_queued + 4, thread_name_prefix=self.name)
        self.server = grpc.server(pool, interceptors=[_Interceptor(self)], options=s.channel_options())
        for add, servicer in self.servicers:
            add(servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        # "liveness" answers SERVING while the process runs, loading or not (Kubernetes livenessProbe).
        self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        self.port = self.server.add_insecure_port(f"{s.host}:{s.port}")
        if self.port == 0:
            raise OSError(f"{self.name}: cannot bind gRPC port {s.host}:{s.port}")
        self.server.start()
        if s.metrics_port >= 0:
            self.metrics_port = self.metrics.serve(s.metrics_port)
        log.info("%s listening on %s:%d (metrics :%s)", self.name, s.host, self.port, self.metrics_port)
        threading.Thread(target=self._load, name=f"{self.name}-load", daemon=True).start()
        return self.port

    def _load(self) -> None:
        started = time.monotonic()
        try:
            if self.load is not None:
                self.load()
        except BaseException as err:
            self.load_error = err
            log.exception("%s failed to load its models", self.name)
            self.stop(grace=0)
            return
        self.ready.set()
        self.metrics.ready.labels(self.name).set(1)
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info("%s ready after %.1fs", self.name, time.monotonic() - started)

    def _set_health(self, status: int) -> None:
        for service in ("", *self.service_names):
            self.health.set(service, status)

    def stop(self, grace: float | None = None) -> None:
        """Stops taking calls (health NOT_SERVING first) and lets in-flight calls finish within `grace`."""
        if self.stopped.is_set() or self.server is None:
            return
        self.ready.clear()
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        grace = self.settings.grace_seconds if grace is None else grace
        log.info("%s stopping (grace %.0fs)", self.name, grace)
        self.server.stop(grace).wait()
        self.metrics.close()
        self.stopped.set()

    def install_signal_handlers(self) -> None:
        def on_signal(signum, _frame):
            log.info("%s got %s", self.name, signal.Signals(signum).name)
            threading.Thread(target=self.stop, daemon=True).start()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def serve_forever(self) -> int:
        """start + signal handlers + wait; the process exit code (1 when the models failed to load)."""
        self.install_signal_handlers()
        self.start()
        self.stopped.wait()
        return 1 if self.load_error is not None else 0

    # -- request log ------------------------------------------------------------------------
    def record(self, method: str, videos: list[str], code: str, started: float, response: Any, detail: str) -> None:
        seconds = time.monotonic() - started
        self.metrics.observe(method, code, seconds)
        outcomes = _video_outcomes(response) if response is not None else []
        for _uid, outcome, _err in outcomes:
            self.metrics.videos.labels(self.name, outcome).inc()
        if outcomes:
            shown = ",".join(f"{uid}:{o}" + (f"({e})" if e else "") for uid, o, e in outcomes)
        else:
            shown = ",".join(videos) or "-"
        log.info(
            "%s %s code=%s videos=%s %.3fs%s", self.name, method, code, shown, seconds, f" {detail}" if detail else ""
        )


def serve(
    name: str,
    servicer: Any,
    add_to_server: Callable[[Any, grpc.Server], None],
    service_name: str,
    settings: ServerSettings | None = None,
) -> int:
    """Runs one stage servicer until SIGTERM; its optional `load()` runs while health says NOT_SERVING."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host = ServiceHost(
        name,
        [(add_to_server, servicer)],
        [service_name],
        settings or ServerSettings.from_env(),
        load=getattr(servicer, "load", None),
    )
    return host.serve_forever()
