"""The shared gRPC bootstrap on a loopback server: health, admission, deadlines, metrics, drain."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from action100m.common.grpc_client import open_channel
from action100m.v1 import segmenter_pb2, segmenter_pb2_grpc

from ..support import free_port
from .slow_segmenter import SlowSegmenter, host_for

SERVICE = "action100m.v1.Segmenter"


def request(*uids: str) -> segmenter_pb2.SegmentRequest:
    return segmenter_pb2.SegmentRequest(
        videos=[
            segmenter_pb2.SegmentItem(
                video_uid=u, embeddings_uri=f"file:///e/{u}.npz", output_uri=f"file:///t/{u}.json"
            )
            for u in uids
        ]
    )


def uids(stream) -> list[str]:
    return [result.status.video_uid for result in stream]


def health_status(channel, service: str = SERVICE) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


@pytest.fixture
def running():
    """Starts hosts and stops them after the test."""
    hosts = []

    def start(servicer, load=None, **settings):
        host = host_for(servicer, load=load, **settings)
        host.start()
        hosts.append(host)
        return host, open_channel(f"127.0.0.1:{host.port}")

    yield start
    for host in hosts:
        host.stop(grace=0)


def test_health_is_not_serving_until_models_load(running):
    loaded = threading.Event()
    _host, channel = running(SlowSegmenter(), load=lambda: loaded.wait(10))
    stub = segmenter_pb2_grpc.SegmenterStub(channel)
    assert health_status(channel) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert health_status(channel, "") == health_pb2.HealthCheckResponse.NOT_SERVING
    assert health_status(channel, "liveness") == health_pb2.HealthCheckResponse.SERVING  # alive while loading
    with pytest.raises(grpc.RpcError) as err:
        list(stub.Segment(request("v1"), timeout=5))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and "loading" in err.value.details()
    loaded.set()
    wait_until(lambda: health_status(channel) == health_pb2.HealthCheckResponse.SERVING)
    assert uids(stub.Segment(request("v1"), timeout=5)) == ["v1"]


def test_full_queue_answers_resource_exhausted_while_health_still_answers(running):
    gate = threading.Event()
    host, channel = running(SlowSegmenter(gate=gate), max_concurrent=1, max_queued=1)
    wait_until(host.ready.is_set)
    stub = segmenter_pb2_grpc.SegmenterStub(channel)
    calls = ThreadPoolExecutor(2)
    running_call = calls.submit(lambda: uids(stub.Segment(request("a"), timeout=20)))
    wait_until(lambda: host.metrics.in_flight.labels("segmenter")._value.get() == 1)
    queued_call = calls.submit(lambda: uids(stub.Segment(request("b"), timeout=20)))
    wait_until(lambda: host.metrics.in_flight.labels("segmenter")._value.get() == 2)
    with pytest.raises(grpc.RpcError) as err:
        list(stub.Segment(request("c"), timeout=5))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "queue is full" in err.value.details()
    assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
    gate.set()
    assert running_call.result() == ["a"]
    assert queued_call.result() == ["b"]
    assert uids(stub.Segment(request("d"), timeout=5)) == ["d"]  # room again


def test_a_queued_caller_that_left_gives_up_its_place(running):
    """Callers whose deadline passed while queued leave the queue at once: fresh calls are admitted."""
    gate = threading.Event()
    host, channel = running(SlowSegmenter(gate=gate), max_concurrent=1, max_queued=2)
    wait_until(host.ready.is_set)
    stub = segmenter_pb2_grpc.SegmenterStub(channel)
    in_flight = host.metrics.in_flight.labels("segmenter")._value.get
    calls = ThreadPoolExecutor(4)
    running_call = calls.submit(lambda: uids(stub.Segment(request("a"), timeout=30)))
    wait_until(lambda: in_flight() == 1)
    expired = [calls.submit(lambda u=u: uids(stub.Segment(request(u), timeout=0.5))) for u in ("b", "c")]
    for call in expired:
        with pytest.raises(grpc.RpcError) as err:
            call.result()
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_until(lambda: in_flight() == 1, timeout=3)  # their places are free again
    fresh = [calls.submit(lambda u=u: uids(stub.Segment(request(u), timeout=30))) for u in ("d", "e")]
    wait_until(lambda: in_flight() == 3)
    gate.set()
    assert running_call.result() == ["a"] and [f.result() for f in fresh] == [["d"], ["e"]]


def test_deadline_exceeded_stops_the_work(running):
    servicer = SlowSegmenter(seconds=5)
    host, channel = running(servicer)
    wait_until(host.ready.is_set)
    stub = segmenter_pb2_grpc.SegmenterStub(channel)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        list(stub.Segment(request("slow"), timeout=0.3))
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3
    assert servicer.stopped_early.wait(3), "the server kept working after the deadline"
    assert servicer.finished == 0


def test_errors_keep_their_codes_and_metrics_count_them(running, caplog):
    host, channel = running(SlowSegmenter())
    wait_until(host.ready.is_set)
    stub = segmenter_pb2_grpc.SegmenterStub(channel)
    with caplog.at_level(logging.INFO, logger="action100m.server"):
        list(stub.Segment(request("v1", "v2"), timeout=5))
        bad = segmenter_pb2.SegmentRequest(videos=[segmenter_pb2.SegmentItem(video_uid="v3")])
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Segment(bad, timeout=5))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Segment(request("explode"), timeout=5))
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert "RuntimeError: the clustering blew up" in err.value.details()
    lines = [r.getMessage() for r in caplog.records if r.name == "action100m.server" and " Segment " in r.getMessage()]
    assert any("code=OK videos=v1:OUTCOME_DONE,v2:OUTCOME_DONE" in line for line in lines), lines
    assert any("code=INVALID_ARGUMENT videos=v3" in line for line in lines), lines
    assert any("code=INTERNAL videos=explode" in line for line in lines), lines

    text = urllib.request.urlopen(f"http://127.0.0.1:{host.metrics_port}/metrics", timeout=5).read().decode()
    assert 'a100m_grpc_requests_total{code="OK",method="Segment",service="segmenter"} 1.0' in text
    assert 'a100m_grpc_errors_total{code="INVALID_ARGUMENT",method="Segment",service="segmenter"} 1.0' in text
    assert 'a100m_grpc_errors_total{code="INTERNAL",method="Segment",service="segmenter"} 1.0' in text
    assert 'a100m_videos_total{outcome="OUTCOME_DONE",service="segmenter"} 2.0' in text
    assert 'a100m_grpc_in_flight{service="segmenter"} 0.0' in text
    assert "a100m_grpc_request_seconds_bucket" in text


def test_what_one_request_logs_is_bounded(running, caplog):
    """A request with a huge uid (within the message limit) and many videos writes one short line."""
    host, channel = running(SlowSegmenter())
    wait_until(host.ready.is_set)
    stub = segmenter_pb2_grpc.SegmenterStub(channel)
    with caplog.at_level(logging.INFO, logger="action100m.server"):
        list(stub.Segment(request(*[f"v{i}" for i in range(500)]), timeout=10))
        list(stub.Segment(request("u" * 2_000_000), timeout=30))  # a 2 MB uid, logged as its first 80 characters
    lines = [r.getMessage() for r in caplog.records if r.name == "action100m.server" and " Segment " in r.getMessage()]
    assert len(lines) == 2 and all(len(line) < 3000 for line in lines), [len(line) for line in lines]
    assert "(480 more)" in lines[0]


def test_reflection_lists_the_service(running):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    _host, channel = running(SlowSegmenter())
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert SERVICE in services and "grpc.health.v1.Health" in services


def test_sigterm_drains_in_flight_calls_then_exits(tmp_path):
    port = free_port()
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.common.slow_segmenter", str(port), "1.5"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ},
    )
    try:
        channel = open_channel(f"127.0.0.1:{port}")
        wait_until(lambda: _serving(channel), timeout=30)
        stub = segmenter_pb2_grpc.SegmenterStub(channel)
        in_flight = ThreadPoolExecutor(1).submit(lambda: uids(stub.Segment(request("draining"), timeout=20)))
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert in_flight.result() == ["draining"]
        assert proc.wait(timeout=20) == 0
        output = proc.stdout.read()
        assert "got SIGTERM" in output and "code=OK videos=draining:OUTCOME_DONE" in output
    finally:
        if proc.poll() is None:
            proc.kill()


def _serving(channel) -> bool:
    try:
        return health_status(channel) == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


@pytest.mark.parametrize("server_policy", ["shared", "grpc-default"])
def test_a_call_longer_than_many_ping_periods_completes_once(server_policy):
    """Hour-long calls at a compressed time scale: the client pings every second (gRPC's floor for
    client pings) and the handler works for 8 s (8 ping periods, as 60 s pings against an 8-minute
    call). With the shared policy the server accepts the pings and the call completes, worked once.
    With gRPC's default server policy (what the services had before) the server sends GOAWAY
    too_many_pings after its second strike and the call dies half-way: this case reproduces the
    original failure, and must keep failing."""
    from action100m.common.keepalive import Keepalive

    compressed = Keepalive(ping_interval_ms=1000, ping_timeout_ms=5000)
    servicer = SlowSegmenter(seconds=8.0, check=False)  # no cancel checks: a lost call would run again
    host = host_for(servicer, metrics_port=-1, keepalive=compressed if server_policy == "shared" else _GRPC_DEFAULTS)
    host.start()
    try:
        wait_until(host.ready.is_set)
        channel = open_channel(f"127.0.0.1:{host.port}", keepalive=compressed)
        stub = segmenter_pb2_grpc.SegmenterStub(channel)
        if server_policy == "shared":
            assert uids(stub.Segment(request("long"), timeout=60)) == ["long"]
            assert servicer.started == 1 and servicer.finished == 1
        else:
            with pytest.raises(grpc.RpcError) as err:
                list(stub.Segment(request("long"), timeout=30))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "too many pings" in (err.value.details() or "").lower()
            assert servicer.finished == 0
        channel.close()
    finally:
        host.stop(grace=0)


class _GrpcDefaultServerPolicy:
    """gRPC's own server keepalive policy (no options): one ping per 5 minutes, 2 strikes."""

    def server_options(self) -> list[tuple[str, int]]:
        return []


_GRPC_DEFAULTS = _GrpcDefaultServerPolicy()
