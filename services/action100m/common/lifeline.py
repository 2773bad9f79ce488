"""A process that a run started dies with the run.

`a100m run` starts its services and its DAG driver in sessions of their own (so that stopping one
stops its helpers: vLLM's engine core, kfp.local's tasks), which also means that nothing stops
them when the run itself is killed (`kill -9`, a closed terminal): they would go on and publish
over a newer run. So the run names itself in their environment (`A100M_PARENT_PID`), and each of
them watches its parent: once the parent is gone (the process is handed to another parent), it
kills its whole process group. A service started any other way (Kubernetes, by hand) has no such
variable and watches nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Mapping

PARENT_ENV = "A100M_PARENT_PID"
log = logging.getLogger("action100m.lifeline")


def parent_env() -> dict[str, str]:
    """The environment that makes a child of this process die with it (see `die_with_parent`)."""
    return {PARENT_ENV: str(os.getpid())}


def die_with_parent(env: Mapping[str, str] = os.environ, every: float = 0.25) -> bool:
    """When `env` names this process's parent: watches it on a thread and, once it is gone, kills
    this process's group (its helpers with it). Whether a watch was started."""
    named = env.get(PARENT_ENV, "")
    if not named.isdigit() or int(named) != os.getppid():
        return False  # not started by a run (or its parent is already gone: the check below would fire)
    parent = int(named)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        log.warning("the run that started this process (pid %d) is gone: stopping with it", parent)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=watch, name="a100m-lifeline", daemon=True).start()
    return True
