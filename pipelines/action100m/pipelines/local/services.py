"""The services of a one-machine run on loopback: each started in the Python environment its
registry entry asks for, waited for until it says SERVING, watched by a `Supervisor`, stopped whole.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from action100m.common.lifeline import parent_env

from ..registry import STAGES, Stage
from .supervisor import Supervisor, log_tail

VLLM_ENV = ".venv-vllm"


def vllm_python(explicit: str | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """The Python of the vLLM environment (the refiner's engine lives there): --refiner-python, else
    A100M_REFINER_PYTHON, else a `.venv-vllm` beside this environment or in the project this package
    was installed from (`make env` makes both), else in the current directory."""
    chosen = explicit or env.get("A100M_REFINER_PYTHON")
    if chosen:
        return Path(chosen).absolute()
    project = Path(__file__).resolve().parents[4]  # pipelines/action100m/pipelines/local/ -> the checkout
    candidates = [Path(sys.prefix).parent / VLLM_ENV, project / VLLM_ENV, Path.cwd() / VLLM_ENV]
    found = next((c for c in candidates if (c / "bin" / "python").exists()), candidates[0])
    return (found / "bin" / "python").absolute()


def missing_python(services: Sequence[Stage], settings: Mapping[str, str], python: Path) -> str:
    """Why these services cannot start here ("" when they can): the vLLM environment one needs is absent."""
    needing = [spec.service for spec in services if spec.in_vllm_env(settings)]
    if needing and not python.exists():
        return (
            f"the {', '.join(needing)} runs in a vLLM environment and {python} does not exist "
            "(run `make env` in the project, or set --refiner-python / A100M_REFINER_PYTHON)"
        )
    return ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalServices:
    addresses: dict[str, str]  # stage -> host:port
    supervisor: Supervisor
    logs: Path
    metrics: dict[str, str]  # stage -> host:port of the /metrics of the services started here


def _print(text: str) -> None:
    print(text, flush=True)


@contextlib.contextmanager
def local_services(
    settings: Mapping[str, str],
    logs: Path,
    startup_timeout: float = 600,
    python_for_vllm: Path | None = None,
    supervisor: Supervisor | None = None,
    only: Sequence[str] | None = None,
    service_env: Mapping[str, Mapping[str, str]] | None = None,
    external: Mapping[str, str] | None = None,
    first: Sequence[str] = (),
    say: Callable[[str], None] = _print,
) -> Iterator[LocalServices]:
    """Starts the services on loopback (all, or the stages in `only`), waits until each says
    SERVING, and watches them (see `Supervisor`); stops every process they started on exit.

    `settings` are every service's (the preset's, the roots), over this process's environment;
    `service_env` adds settings per service (its GPUs and memory share from the plan); `external`
    names stages already served elsewhere (stage -> host:port): those are checked, not started.
    The services in `first` start alone before the others (vLLM sizes itself from the GPU's free
    memory at start, so on a shared GPU it must come first). While they load, `say` hears which
    are still loading, every `LOADING_EVERY` seconds.
    """
    logs.mkdir(parents=True, exist_ok=True)
    external = dict(external or {})
    wanted = [spec for spec in STAGES if only is None or spec.name in only]
    addresses = {spec.name: external[spec.name] for spec in wanted if spec.name in external}
    to_start = sorted((s for s in wanted if s.name not in external), key=lambda s: s.service not in first)
    deadline = time.monotonic() + startup_timeout
    for spec in (s for s in wanted if s.name in external):
        wait_serving(spec.service, addresses[spec.name], None, deadline, logs)
        say(f"  {spec.service} (already running) on {addresses[spec.name]}")
    metrics: dict[str, str] = {}
    with supervisor or Supervisor() as supervisor:
        for spec in to_start:
            port, metrics_port = _free_port(), _free_port()
            process_env = {
                **os.environ,
                **settings,
                **(service_env or {}).get(spec.service, {}),
                "A100M_PORT": str(port),
                "A100M_METRICS_PORT": str(metrics_port),  # its units of work, for progress (loopback only)
                "A100M_HOST": "127.0.0.1",
                **parent_env(),  # it dies with this run, even a run killed with -9
            }
            python = sys.executable
            if spec.in_vllm_env(process_env):
                python = str(python_for_vllm or vllm_python())
                problem = missing_python([spec], process_env, Path(python))
                if problem:
                    raise ServiceFailed(problem)
            log = logs / f"{spec.service}.log"
            address = f"127.0.0.1:{port}"
            supervisor.start(spec.service, [python, "-m", f"action100m.{spec.service}"], process_env, log, address)
            addresses[spec.name], metrics[spec.name] = address, f"127.0.0.1:{metrics_port}"
            if spec.service in first:
                _ready([spec], addresses, supervisor, deadline, logs, say)
        _ready([s for s in to_start if s.service not in first], addresses, supervisor, deadline, logs, say)
        supervisor.watch()
        yield LocalServices(addresses, supervisor, logs, metrics)


LOADING_EVERY = 15.0  # seconds between the "still loading" lines while services start


def _ready(
    specs: Sequence[Stage],
    addresses: Mapping[str, str],
    supervisor: Supervisor,
    deadline: float,
    logs: Path,
    say: Callable[[str], None],
) -> None:
    """Waits for each service to serve, saying which are still loading their models."""
    started = time.monotonic()
    loading = [spec.service for spec in specs]

    def still_loading() -> None:
        say(f"  loading: {', '.join(loading)} ({time.monotonic() - started:.0f}s)")

    for spec in specs:
        process = supervisor.services[spec.service].process
        wait_serving(spec.service, addresses[spec.name], process, deadline, logs, still_loading)
        loading.remove(spec.service)
        say(f"  {spec.service} ready on {addresses[spec.name]} ({time.monotonic() - started:.0f}s)")


def wait_serving(
    name: str,
    address: str,
    process: subprocess.Popen[bytes] | None,
    deadline: float,
    logs: Path,
    waiting: Callable[[], None] = lambda: None,
) -> None:
    """Until the service at `address` says SERVING, calling `waiting` every LOADING_EVERY seconds;
    a started process that exits, or the deadline, raises ServiceFailed with the reason."""
    from action100m.common.healthcheck import is_serving

    said = time.monotonic()
    while not is_serving(address):
        if time.monotonic() - said >= LOADING_EVERY:
            waiting()
            said = time.monotonic()
        if process is not None and process.poll() is not None:
            raise ServiceFailed(
                f"the {name} exited with {process.returncode} while starting; its log ends:\n"
                + log_tail(logs / f"{name}.log")
            )
        if time.monotonic() > deadline:
            where = f"log: {logs / name}.log" if process is not None else "started elsewhere"
            raise ServiceFailed(f"the {name} at {address} was not serving in time ({where})")
        time.sleep(0.5)


class ServiceFailed(RuntimeError):
    """A service that could not start, or died and stopped the run."""
