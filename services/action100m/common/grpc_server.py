"""The gRPC server bootstrap shared by the five services.

One `ServiceHost` gives a service: health checking (NOT_SERVING until its models are loaded, and
again while it drains), reflection, a Prometheus /metrics port, raised message limits, the shared
keepalive policy, bounded admission (RESOURCE_EXHAUSTED beyond `max_concurrent + max_queued`
stage calls), UNAVAILABLE while loading, graceful shutdown on SIGTERM and one log line per call
naming its videos and their outcomes.

Stage calls stream one result per video. They are admitted here, but take one of the
`max_concurrent` work slots only around their own computation (`work_slot()`, used by
common.stage): a call that joins videos another call is computing waits without a slot, and a
queued caller that leaves gives its place up. Health, reflection and `Info` bypass admission so
probes and fingerprinting answer even when the queue is full.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent import futures
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .config import from_env, setting
from .keepalive import DEFAULT_KEEPALIVE, Keepalive
from .metrics import ServiceMetrics
from .text import printable

log = logging.getLogger("action100m.server")

UNGUARDED_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
LIVENESS = "liveness"
MiB = 1024 * 1024
MAX_LOGGED_VIDEOS = 20  # a call's log line names at most this many videos


@dataclass
class ServerSettings:
    """Settings of a service process; each field can be set by the env var A100M_<FIELD>."""

    host: str = "[::]"
    port: int = setting(50051, min=0, max=65535)
    metrics_port: int = setting(9090, min=-1, max=65535)  # -1 disables /metrics, 0 picks a free port
    max_concurrent: int = setting(1, min=1, max=1024)  # calls computing at once (GPU services: 1, they batch inside)
    max_queued: int = setting(8, min=0, max=100_000)  # admitted calls waiting for a slot; beyond: RESOURCE_EXHAUSTED
    max_message_mb: int = setting(64, min=1, max=2047)
    grace_seconds: float = setting(120.0, min=0)  # how long SIGTERM waits for in-flight calls

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **overrides: Any) -> ServerSettings:
        return from_env(cls, env, **overrides)

    def channel_options(self, keepalive: Keepalive = DEFAULT_KEEPALIVE) -> list[tuple[str, int]]:
        limit = self.max_message_mb * MiB
        return [
            ("grpc.max_send_message_length", limit),
            ("grpc.max_receive_message_length", limit),
            *keepalive.server_options(),
        ]


class DeadlineExceeded(Exception):
    """Raised by `check_alive` when the caller's deadline passed or it cancelled."""


def is_alive(context: grpc.ServicerContext) -> bool:
    remaining = context.time_remaining()
    return context.is_active() and (remaining is None or remaining > 0)


def check_alive(context: grpc.ServicerContext) -> None:
    """Call between units of work: stops a request whose client is gone or out of time."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceeded("the request's deadline passed")
    if not context.is_active():
        raise DeadlineExceeded("the client cancelled the request")


_work_slots: ContextVar[threading.BoundedSemaphore | None] = ContextVar("work_slots", default=None)


@contextlib.contextmanager
def work_slot(alive: Callable[[], bool] = lambda: True, poll_seconds: float = 0.2) -> Iterator[None]:
    """Holds one of the process's `max_concurrent` work slots while the block computes.

    A no-op outside a ServiceHost call (a servicer called directly, in tests). A caller that gives
    up while it waits (deadline passed, client gone) leaves the queue at once.
    """
    slots = _work_slots.get()
    if slots is None:
        yield
        return
    while not slots.acquire(timeout=poll_seconds):
        if not alive():
            raise DeadlineExceeded("the caller left while its call waited for a work slot")
    try:
        yield
    finally:
        slots.release()


def _video_uids(request: Any) -> list[str]:
    return [getattr(v, "video_uid", "?") for v in getattr(request, "videos", ())]


def _outcome(result: Any) -> tuple[str, str, str] | None:
    from action100m.v1 import common_pb2

    status = getattr(result, "status", None)
    if status is None:
        return None
    return status.video_uid, common_pb2.Outcome.Name(status.outcome), status.error_code


class _Interceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, host: ServiceHost):
        self.host = host

    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(UNGUARDED_PREFIXES):
            return handler
        short = method.rsplit("/", 1)[-1]
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._guard_stage_call(handler.unary_stream, short),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._guard_unary(handler.unary_unary, short),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _refuse_while_loading(self, short: str, videos: list[str], started: float, context: Any) -> None:
        host = self.host
        if not host.ready.is_set():
            host.record(short, videos, "UNAVAILABLE", started, [], "models are loading")
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{host.name} is loading its models; retry later")

    def _guard_unary(self, behaviour: Callable[[Any, Any], Any], short: str) -> Callable[[Any, Any], Any]:
        def guarded(request: Any, context: Any) -> Any:
            self._refuse_while_loading(short, [], time.monotonic(), context)
            return behaviour(request, context)

        return guarded

    def _guard_stage_call(
        self, behaviour: Callable[[Any, Any], Iterable[Any]], short: str
    ) -> Callable[[Any, Any], Iterator[Any]]:
        host = self.host

        def guarded(request: Any, context: Any) -> Iterator[Any]:
            started = time.monotonic()
            videos = _video_uids(request)
            self._refuse_while_loading(short, videos, started, context)
            if not host.admission.acquire(blocking=False):
                host.record(short, videos, "RESOURCE_EXHAUSTED", started, [], "queue full")
                context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"{host.name} queue is full ({host.settings.max_concurrent} running, "
                    f"{host.settings.max_queued} queued); retry with backoff or scale the service",
                )
            host.metrics.in_flight.labels(host.name).inc()
            token = _work_slots.set(host.work_slots)
            outcomes: list[tuple[str, str, str]] = []
            detail = ""
            try:
                check_alive(context)
                for result in behaviour(request, context):
                    outcome = _outcome(result)
                    if outcome is not None:
                        outcomes.append(outcome)
                        host.metrics.videos.labels(host.name, outcome[1]).inc()
                    yield result
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
                _work_slots.reset(token)
                code = context.code() or grpc.StatusCode.OK
                if not context.is_active() and code == grpc.StatusCode.OK and len(outcomes) < len(videos):
                    code = grpc.StatusCode.CANCELLED
                host.record(short, videos, code.name, started, outcomes, detail)
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
        keepalive: Keepalive = DEFAULT_KEEPALIVE,
    ):
        self.name = name
        self.settings = settings or ServerSettings()
        self.servicers = list(servicers)
        self.service_names = list(service_names)
        self.load = load
        self.keepalive = keepalive
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
        # Threads for every admitted call plus spares so health probes and Info never wait behind work.
        pool = futures.ThreadPoolExecutor(max_workers=s.max_concurrent + s.max_queued + 4, thread_name_prefix=self.name)
        self.server = grpc.server(pool, interceptors=[_Interceptor(self)], options=s.channel_options(self.keepalive))
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
        if s.metrics_port >= 0:  # on loopback only when the service is (a one-machine run's)
            self.metrics_port = self.metrics.serve(s.metrics_port, "127.0.0.1" if s.host == "127.0.0.1" else "0.0.0.0")
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
        def on_signal(signum: int, _frame: Any) -> None:
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
    def record(
        self,
        method: str,
        videos: list[str],
        code: str,
        started: float,
        outcomes: list[tuple[str, str, str]],
        detail: str,
    ) -> None:
        seconds = time.monotonic() - started
        self.metrics.observe(method, code, seconds)
        if outcomes:
            shown = [f"{printable(uid, 80)}:{o}" + (f"({e})" if e else "") for uid, o, e in outcomes]
        else:
            shown = [printable(uid, 80) for uid in videos] or ["-"]
        more = f",... ({len(shown) - MAX_LOGGED_VIDEOS} more)" if len(shown) > MAX_LOGGED_VIDEOS else ""
        log.info(
            "%s %s code=%s videos=%s%s %.3fs%s",
            self.name,
            method,
            code,
            ",".join(shown[:MAX_LOGGED_VIDEOS]),
            more,
            seconds,
            f" {detail[:500]}" if detail else "",
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


def serve_main(name: str, serve_from_env: Callable[[], int]) -> int:
    """A service's entry point (`python -m action100m.<service>`, `a100m serve`): a setting that is
    missing or wrong (no artifact roots, A100M_MAX_CONCURRENT=0, a batch size that is not a number)
    stops it at start with one line naming the variable, exit code 2."""
    from .lifeline import die_with_parent
    from .uris import UriError

    die_with_parent()  # started by an `a100m run`: dies with it
    try:
        return serve_from_env()
    except (ValueError, UriError) as error:
        print(f"error: the {name} cannot start: {error}", file=sys.stderr)
        return 2
