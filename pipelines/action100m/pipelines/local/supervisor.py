"""The local run's service processes: started in their own process groups, watched, stopped whole.

A service that dies is reported at once, with the tail of its log, and restarted once on the same
port (the steps resume against it: a transient UNAVAILABLE). A service that stops answering its
gRPC health check is hung only if its processes also use no CPU for `hang_seconds` (stopped,
deadlocked): on a loaded machine a busy service may answer late, and busy is not dead. A hung
service is killed and restarted the same way. A second death stops the run: the supervisor interrupts the main thread, which stops everything and
says why. Stopping a service signals its whole process group, so helpers it started (vLLM's engine
core) go with it.
"""

from __future__ import annotations

import _thread
import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

LOG_TAIL_CHARS = 2000


def log_tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - chars))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes]
    address: str = ""  # host:port of its gRPC health service ("" = not probed)
    deaths: int = 0
    stopping: bool = False
    answered: float | None = None  # when it last answered its health check or used CPU (None: not yet since its start)
    probed: float = 0.0  # when it was last probed
    cpu_ticks: int = -1  # the CPU time its process group had used at the last probe


@dataclass
class Supervisor:
    """Owns the service processes of one run. Use as a context manager: every process group is
    stopped on exit, whatever happened."""

    restarts: int = 1  # per service, before the run is stopped
    poll_seconds: float = 0.5
    stop_timeout: float = 30.0
    health_every: float = 10.0  # seconds between health probes of a service
    health_timeout: float = 10.0  # one probe's deadline
    hang_seconds: float = 300.0  # no answer and no CPU used for this long, after having answered: hung
    out: TextIO | io.TextIOBase = field(
        default_factory=lambda: sys.stdout
    )  # the terminal, even while stdout is redirected
    services: dict[str, Service] = field(default_factory=dict)
    failure: str = ""  # why the run was stopped; "" while nothing went wrong
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: threading.Event = field(default_factory=threading.Event)
    _watcher: threading.Thread | None = None

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path, address: str = "") -> Service:
        """Starts a service; with its `address`, its health is probed while the run goes."""
        service = Service(name, list(argv), dict(env), log, self._spawn(list(argv), dict(env), log, "w"), address)
        with self._lock:
            self.services[name] = service
        return service

    @staticmethod
    def _spawn(argv: list[str], env: dict[str, str], log: Path, mode: str) -> subprocess.Popen[bytes]:
        with open(log, mode) as sink:
            return subprocess.Popen(argv, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)

    def watch(self) -> None:
        """Watches the started services on a thread from now on."""
        interrupt_on_signals()  # a second death interrupts the main thread as Ctrl-C does
        self._watcher = threading.Thread(target=self._watch, name="a100m-supervisor", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._closed.wait(self.poll_seconds):
            with self._lock:
                alive = [s for s in self.services.values() if not s.stopping]
            for service in alive:
                if service.process.poll() is not None:
                    code = service.process.returncode
                    self._died(service, f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}")
                elif self._hung(service):
                    _signal_group(service.process, signal.SIGKILL)
                    service.process.wait()
                    self._died(
                        service, f"no answer to its health check and no CPU used for {self.hang_seconds:.0f}s; killed"
                    )

    def _hung(self, service: Service) -> bool:
        """Probes the service when it is due; whether it has neither answered its health check nor
        used CPU for `hang_seconds` since it last did either (a service still loading its models is
        not probed against the clock)."""
        now = time.monotonic()
        if not service.address or now - service.probed < self.health_every:
            return False
        service.probed = now
        from action100m.common.healthcheck import health

        ticks = group_cpu_ticks(service.process.pid)
        busy, service.cpu_ticks = service.cpu_ticks >= 0 and ticks != service.cpu_ticks, ticks
        if health(service.address, self.health_timeout) is not None or (busy and service.answered is not None):
            service.answered = time.monotonic()
            return False
        return service.answered is not None and time.monotonic() - service.answered >= self.hang_seconds

    def _died(self, service: Service, how: str) -> None:
        service.deaths += 1
        service.answered = None
        tail = "\n".join("    " + line for line in log_tail(service.log).rstrip().splitlines()[-15:])
        if service.deaths <= self.restarts:
            self._say(f"! the {service.name} died ({how}); restarting it once. Its log ends:\n{tail}")
            with open(service.log, "a") as sink:
                sink.write(f"\n---- a100m run: restarted after {how} ----\n")
            service.process = self._spawn(service.argv, service.env, service.log, "a")
            return
        self.failure = (
            f"the {service.name} died again ({how}) after a restart; the run was stopped "
            f"(finished work is kept: rerun to resume). Log: {service.log}\n{tail}"
        )
        self._say(f"! {self.failure}")
        service.stopping = True
        _thread.interrupt_main()  # the main thread stops the run and everything it started

    def _say(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            print(text, file=self.out, flush=True)

    def stop(self) -> None:
        """Stops every service's process group: SIGTERM, then SIGKILL after `stop_timeout`."""
        self._closed.set()
        with self._lock:
            services = list(self.services.values())
            for service in services:
                service.stopping = True
        for service in services:
            _signal_group(service.process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for service in services:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.process.wait(max(0.1, deadline - time.monotonic()))
            _signal_group(service.process, signal.SIGKILL)  # what is left of the group (engine cores)
            service.process.wait()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def interrupt_on_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP (the terminal closed) raise KeyboardInterrupt in the main thread
    (which stops the run and every process it started). SIGINT is set explicitly: a process started
    in the background by a shell inherits it ignored, and then neither Ctrl-C nor
    `_thread.interrupt_main` would reach it."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGHUP, stop)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def stop_children(timeout: float = 10.0) -> list[int]:
    """Terminates this process's remaining child processes (kfp.local's task subprocesses left
    running by an interrupt), then kills those that did not stop; returns their pids."""
    children = _children(os.getpid())
    for pid in children:
        _kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.1)
    for pid in children:
        _kill(pid, signal.SIGKILL)
    return children


def group_cpu_ticks(group: int) -> int:
    """The CPU time (user and system, in clock ticks) the live processes of a process group have
    used, from /proc (Linux); 0 elsewhere."""
    total = 0
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # fields from the state on: state, ppid, pgrp, ... utime (11), stime (12)
            total += int(fields[11]) + int(fields[12])
    return total


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (Linux); none elsewhere."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.parent.name))
    return found


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
