"""Progress of a run as the store shows it: per stage, the run's videos published under the current
fingerprints, with rate and ETA.

Each service publishes a video's artifact the moment it is finished, so counting the artifacts of
the run's videos under the stage's current fingerprint moves video by video, counts nothing of
other configurations, and knows its total from the plan as soon as the plan is written.

At scale each poll lists every stage's folder (100,000 videos: about 400 S3 list pages), so the
watcher waits at least `POLL_SHARE_INVERSE` times as long as its last poll took; and a log (not a
terminal) gets a line when a count moved, at most one per `log_every` seconds, and the final counts
when the watcher stops.
"""

from __future__ import annotations

import posixpath
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO

from action100m.common.store import ArtifactStore

from ..keys import artifact_key
from ..plan import Plan
from ..registry import STAGES, stage
from ..state import VideoEntry

POLL_SHARE_INVERSE = 10  # the store spends at most a tenth of the run's time answering the watcher


@dataclass
class StageCount:
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    first_seen: int = -1  # published when we started watching (a rerun's cached part)

    def rate(self) -> float:
        """Videos per second published since watching began."""
        fresh = self.done - max(self.first_seen, 0)
        elapsed = time.monotonic() - self.started
        return fresh / elapsed if elapsed > 0 and fresh > 0 else 0.0


def published_counts(
    store: ArtifactStore, prefix: str, fingerprints: Mapping[str, str], videos: list[VideoEntry]
) -> dict[str, int]:
    """Per stage of `fingerprints`, how many of these videos have their artifact under its fingerprint."""
    counts = {}
    for spec in (s for s in STAGES if s.name in fingerprints):
        fp = fingerprints[spec.name]
        folder = posixpath.dirname(artifact_key(prefix, spec.kind, fp, "x", spec.extension))
        present = {uri.rsplit("/", 1)[-1] for uri in store.list(folder)}
        counts[spec.name] = sum(
            1
            for video in videos
            if spec.runs_on(video) and spec.artifact(prefix, fp, video).rsplit("/", 1)[-1] in present
        )
    return counts


class ProgressWatcher:
    """Polls the store on a thread and draws one bar per stage (rich on a terminal, lines otherwise)."""

    def __init__(
        self,
        store: ArtifactStore,
        prefix: str,
        plan_uri: str,
        fingerprints: Mapping[str, str],
        out: TextIO = sys.stdout,
        every: float = 1.0,
        total: int | None = None,
        log_every: float = 30.0,
    ):
        self.store, self.prefix, self.plan_uri, self.fingerprints = store, prefix, plan_uri, dict(fingerprints)
        self.out, self.every, self.log_every = out, every, log_every
        self.delay = every  # grows with what a poll costs
        self.stop_event = threading.Event()
        self.counts = {spec.name: StageCount() for spec in STAGES if spec.name in self.fingerprints}
        self.total: int | None = total  # known from the manifest before the plan is written
        self._planned = False
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._videos: list[VideoEntry] = []

    def __enter__(self) -> ProgressWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self._thread.join(timeout=10)
        if not self.out.isatty():
            self._last_line()

    def _last_line(self) -> None:
        """The final counts, printed by the caller so that they come before whatever it prints next
        (the run's summary), whatever the thread was doing; a store that does not answer is said."""
        error: Exception | None = None
        for _ in range(3):
            try:
                self.poll()
                error = None
                break
            except Exception as failed:
                error = failed
                time.sleep(0.2)
        trouble = f"  (the store did not answer: {error})" if error else ""
        self._say(self.line() + trouble)

    def _say(self, line: str) -> None:
        # written to `out` directly, not through print(): kfp.local swaps builtins.print while its
        # tasks run (see local.builtin_print_restored)
        self.out.write(line + "\n")
        self.out.flush()

    def poll(self) -> bool:
        """Reads the plan (once) and the counts; True when something changed."""
        if not self._planned:
            try:
                plan = Plan.load(self.store, self.plan_uri)
            except Exception:
                return False  # not planned yet
            videos: list[VideoEntry] = []
            for index in range(plan.shards):
                videos.extend(plan.shard(self.store, index, self.prefix).videos)
            self._videos, self.total, self._planned = videos, plan.videos, True
            changed = True
        else:
            changed = False
        counts = published_counts(self.store, self.prefix, self.fingerprints, self._videos)
        for name, done in counts.items():
            count = self.counts[name]
            if count.first_seen < 0:
                count.first_seen = done
            if done != count.done:
                count.done, changed = done, True
        return changed

    def total_of(self, name: str) -> int | None:
        """The videos a stage runs on: every video, or those the plan marks for it (the transcriber's)."""
        spec = stage(name)
        if spec.applies is None or not self._planned:
            return self.total if spec.applies is None else None
        return sum(1 for video in self._videos if spec.runs_on(video))

    def line(self) -> str:
        parts = []
        for name, count in self.counts.items():
            total = self.total_of(name)
            rate = count.rate()
            left = (total or 0) - count.done
            eta = f", ETA {left / rate:.0f}s" if rate > 0 and left > 0 else ""
            per = f" ({rate * 60:.1f}/min{eta})" if rate > 0 else ""
            parts.append(f"{name} {count.done}/{total if total is not None else '?'}{per}")
        return "  progress: " + ", ".join(parts)

    def _timed_poll(self) -> bool:
        """poll(), and the next wait set from what it cost; False when the store did not answer."""
        began = time.monotonic()
        try:
            return self.poll()
        except Exception:  # progress is best effort; the run's own errors are reported elsewhere
            return False
        finally:
            self.delay = max(self.every, POLL_SHARE_INVERSE * (time.monotonic() - began))

    def _run(self) -> None:
        if self.out.isatty():
            self._run_rich()
            return
        printed_at, unprinted = -self.log_every, False
        while not self.stop_event.wait(self.delay):
            unprinted |= self._timed_poll()
            if unprinted and time.monotonic() - printed_at >= self.log_every:
                self._say(self.line())
                printed_at, unprinted = time.monotonic(), False

    def _run_rich(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        # drawn on `out` itself (the terminal), whatever sys.stdout is while the run goes
        with Progress(*columns, console=Console(file=self.out), transient=False) as bars:
            tasks = {name: bars.add_task(name, total=None) for name in self.counts}
            while not self.stop_event.wait(self.delay):
                self._timed_poll()
                for name, count in self.counts.items():
                    bars.update(tasks[name], completed=count.done, total=self.total_of(name))
            self._timed_poll()
            for name, count in self.counts.items():
                bars.update(tasks[name], completed=count.done, total=self.total_of(name))
