"""One `a100m run` at a time per output folder.

Two runs into one `--out` would plan, compute and publish into one dataset and one run record: a
lock on the folder (`OUT/.a100m-run.lock`, `flock`) makes the second stop at once with the first
one's pid, instead of serialising the two publications, because everything before publication
(the plan, the record a rerun reads, the services' logs) is shared by the folder too. The kernel
drops the lock with its process, so a killed run never leaves a stale one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path


class FolderBusy(RuntimeError):
    """Another run holds the output folder; the message says which."""


@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Holds the folder's lock while the run goes; FolderBusy when another run holds it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ".a100m-run.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise FolderBusy(
                f"{out_dir} is in use by another a100m run ({holder}): wait for it to finish, or use another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
