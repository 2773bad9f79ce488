"""The local run's supervisor with real processes: deaths reported at once with the log's tail, one
restart, then the run stopped; stopping a service stops its whole process group."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import pytest

from action100m.pipelines.local.supervisor import Supervisor

from ...support import eventually

# A "service" that writes to its log, starts a helper process of its own (as vLLM starts its engine
# core), writes the helper's pid, and runs until stopped.
SERVICE = """
import subprocess, sys, time
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[1], "w").write(str(helper.pid))
print("service up; helper", helper.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def start(supervisor: Supervisor, tmp_path, name: str = "captioner"):
    pid_file = tmp_path / f"{name}.helper"
    service = supervisor.start(
        name, [sys.executable, "-c", SERVICE, str(pid_file)], dict(os.environ), tmp_path / f"{name}.log"
    )
    eventually(lambda: pid_file.exists() and pid_file.read_text(), timeout=30)
    return service, int(pid_file.read_text())


def test_stopping_a_service_stops_its_whole_process_group(tmp_path):
    with Supervisor(stop_timeout=5) as supervisor:
        service, helper = start(supervisor, tmp_path)
        assert alive(service.process.pid) and alive(helper)
    assert service.process.poll() is not None
    eventually(lambda: not alive(helper), timeout=10)


def test_a_death_is_reported_at_once_restarted_once_then_the_run_is_stopped(tmp_path):
    terminal = io.StringIO()
    supervisor = Supervisor(poll_seconds=0.1, stop_timeout=5, out=terminal)
    with supervisor:
        service, _ = start(supervisor, tmp_path)
        supervisor.watch()
        first = service.process
        first.kill()
        eventually(lambda: service.process is not first and service.process.poll() is None, timeout=10)
        report = terminal.getvalue()
        assert "! the captioner died (killed by SIGKILL); restarting it once. Its log ends:" in report
        assert "service up; helper" in report  # the tail of its log
        eventually(lambda: "service up" in (tmp_path / "captioner.log").read_text().split("restarted")[-1], timeout=30)

        with pytest.raises(KeyboardInterrupt):  # the second death interrupts the main thread
            service.process.kill()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.05)
    assert supervisor.failure.startswith("the captioner died again (killed by SIGKILL) after a restart")
    assert "rerun to resume" in supervisor.failure


def test_stop_children_leaves_no_child_process_behind():
    """In a process of its own (stop_children stops every child of the process that calls it, and
    this session's shared services are the test process's children)."""
    script = """
import subprocess, sys
from action100m.pipelines.local.supervisor import stop_children
children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"]) for _ in range(2)]
stopped = stop_children(timeout=5)
assert {c.pid for c in children} <= set(stopped), (stopped, [c.pid for c in children])
assert all(c.wait(5) is not None for c in children)
print("stopped", len(stopped))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("stopped "), done.stderr


def test_a_service_that_stops_answering_is_killed_and_restarted_like_a_dead_one(tmp_path):
    """A SIGSTOPped segmenter (a real gRPC service): its health check times out, and after
    `hang_seconds` without using any CPU (compressed here from 300 s to 2 s) it is reported, killed and restarted."""
    from action100m.common.healthcheck import is_serving

    from ...support import free_port

    port = free_port()
    env = {
        **os.environ,
        "A100M_PORT": str(port),
        "A100M_METRICS_PORT": "-1",
        "A100M_ALLOWED_ROOTS": f"file://{tmp_path}",
    }
    terminal = io.StringIO()
    supervisor = Supervisor(poll_seconds=0.1, health_every=0.2, health_timeout=0.5, hang_seconds=2, out=terminal)
    with supervisor:
        address = f"127.0.0.1:{port}"
        service = supervisor.start(
            "segmenter", [sys.executable, "-m", "action100m.segmenter"], env, tmp_path / "s.log", address
        )
        eventually(lambda: is_serving(address), timeout=60)
        supervisor.watch()
        eventually(lambda: service.answered is not None, timeout=10)
        hung = service.process
        os.kill(hung.pid, signal.SIGSTOP)
        eventually(lambda: service.process is not hung, timeout=20)
        assert hung.poll() is not None  # the stopped one was killed, not left behind
        assert (
            "! the segmenter died (no answer to its health check and no CPU used for 2s; killed); restarting it once."
            in terminal.getvalue()
        )
        eventually(lambda: is_serving(address), timeout=60)  # the restart serves on the same port
    assert not supervisor.failure


# A "service" that answers its gRPC health check until `busy` appears, then stops answering and
# computes (CPU) until `idle` appears, then stops answering and waits (no CPU): as a service whose
# gRPC thread starves on a loaded machine, then one that deadlocked.
BUSY_THEN_HUNG = """
import os, sys, time
from concurrent import futures
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
port, folder = sys.argv[1], sys.argv[2]
server = grpc.server(futures.ThreadPoolExecutor(2))
status = health.HealthServicer()
status.set("", health_pb2.HealthCheckResponse.SERVING)
health_pb2_grpc.add_HealthServicer_to_server(status, server)
server.add_insecure_port("127.0.0.1:" + port)
server.start()
while not os.path.exists(os.path.join(folder, "busy")):
    time.sleep(0.05)
server.stop(0)
while not os.path.exists(os.path.join(folder, "idle")):
    sum(i * i for i in range(10000))
time.sleep(600)
"""


def test_a_busy_service_that_misses_its_health_checks_is_not_killed_a_hung_one_is(tmp_path):
    from ...support import free_port

    port = free_port()
    terminal = io.StringIO()
    supervisor = Supervisor(poll_seconds=0.1, health_every=0.2, health_timeout=0.5, hang_seconds=2, out=terminal)
    with supervisor:
        service = supervisor.start(
            "refiner",
            [sys.executable, "-c", BUSY_THEN_HUNG, str(port), str(tmp_path)],
            dict(os.environ),
            tmp_path / "refiner.log",
            f"127.0.0.1:{port}",
        )
        supervisor.watch()
        eventually(lambda: service.answered is not None, timeout=60)
        first = service.process
        (tmp_path / "busy").touch()
        time.sleep(6)  # three times the (compressed) hang threshold without a single health answer
        assert service.process is first and first.poll() is None, terminal.getvalue()
        assert "died" not in terminal.getvalue()
        (tmp_path / "idle").touch()
        eventually(lambda: service.process is not first, timeout=60)
        assert "the refiner died (no answer to its health check and no CPU used for 2s; killed)" in terminal.getvalue()
    assert not supervisor.failure
