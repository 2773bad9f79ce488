"""Progress of a run as the store shows it: per stage, the run's videos published under the current
fingerprints, with rate and ETA.

Each service publishes a video's artifact the moment it is finished, so counting the artifacts of
the run's videos under the stage's current fingerprint moves video by video, counts nothing of
other configurations, and knows its total from the plan as soon as the plan is written.

At scale each poll lists every stage's folder (100,000 videos: about 400 S3 list pages), so the
watcher waits at least `POLL_SHARE_INVERSE` times as long as its last poll took; and a log (not a
terminal) gets a line when a count moved, at most one per `log_every` seconds, and the final counts
when the watcher stops. On a terminal the bars are redrawn at most twice a second.

Inside a stage, where one video may take minutes, the work moves too: each running service counts
its units of work (windows, captions, segments: `common.work`) on its /metrics port, and each bar
shows its service's "segments 120/300, 2.1/s, ETA 57s".
"""

from __future__ import annotations

import io
import posixpath
import sys
import threading
import time
import urllib.request
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

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
    store: ArtifactStore,
    prefix: str,
    fingerprints: Mapping[str, str],
    videos: list[VideoEntry],
    counted: Collection[str] | None = None,
) -> dict[str, int]:
    """Per stage of `counted` (default: every one of `fingerprints`, the run's stages and their
    fingerprints), how many of these videos have their artifact under its fingerprint."""
    counts = {}
    for spec in (s for s in STAGES if s.name in fingerprints and (counted is None or s.name in counted)):
        fp = fingerprints[spec.name]
        folder = posixpath.dirname(artifact_key(prefix, spec.kind, fp, "x", spec.extension))
        present = {uri.rsplit("/", 1)[-1] for uri in store.list(folder)}
        counts[spec.name] = sum(
            1
            for video in videos
            if spec.runs_on(video) and spec.artifact(prefix, fingerprints, video).rsplit("/", 1)[-1] in present
        )
    return counts


class Terminal(io.TextIOBase):
    """The run's terminal (or log): one rich Console for the bars and every message, so a message
    written while the bars are drawn ("the refiner died") lands on its own lines above them."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._console: Any = None
        self._partial = ""
        self._lock = threading.Lock()

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.out, highlight=False, soft_wrap=True)
        return self._console

    def isatty(self) -> bool:
        return self.out.isatty()

    def say(self, text: str) -> None:
        """One message, on lines of its own."""
        if self.isatty():
            self.console.print(text, markup=False, highlight=False)
        else:
            self.out.write(text + "\n")
            self.out.flush()

    def write(self, text: str) -> int:  # print(..., file=terminal): whole lines go to `say`
        with self._lock:
            self._partial += text
            *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self.say(line)
        return len(text)


@dataclass
class WorkCount:
    """A service's units of work (`common.work`) as its /metrics says them."""

    unit: str = ""
    planned: float = 0.0
    done: float = 0.0
    first_done: float = -1.0
    started: float = field(default_factory=time.monotonic)

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        fresh = self.done - max(self.first_done, 0.0)
        return fresh / elapsed if elapsed > 0 and fresh > 0 else 0.0

    def text(self) -> str:
        if not self.unit:
            return ""
        rate = self.rate()
        left = self.planned - self.done
        eta = f", ETA {left / rate:.0f}s" if rate > 0 and left > 0 else ""
        per = f", {rate:.1f}/s" if rate > 0 else ""
        return f"{self.unit} {self.done:.0f}/{self.planned:.0f}{per}{eta}"


def work_counts(address: str, timeout: float = 2.0) -> dict[str, tuple[float, float]]:
    """unit -> (planned, done) from the /metrics of the service at `address` (host:port)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(
        f"http://{address}/metrics", timeout=timeout
    ) as reply:  # loopback: the run's own services
        text = reply.read().decode()
    found: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in ("a100m_work_planned", "a100m_work_done"):
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                pair = found.setdefault(sample.labels.get("unit", ""), [0.0, 0.0])
                pair[family.name == "a100m_work_done"] = sample.value
    return {unit: (planned, done) for unit, (planned, done) in found.items()}


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
        terminal: Terminal | None = None,
        metrics: Mapping[str, str] | None = None,
        counted: Collection[str] | None = None,
    ):
        """`fingerprints`: the run's stages and their fingerprints; `counted`: the stages whose
        progress is shown (default: all of them)."""
        self.store, self.prefix, self.plan_uri, self.fingerprints = store, prefix, plan_uri, dict(fingerprints)
        self.counted = [name for name in self.fingerprints if counted is None or name in counted]
        self.terminal = terminal or Terminal(out)
        self.out, self.every, self.log_every = self.terminal.out, every, log_every
        self.metrics = {name: address for name, address in (metrics or {}).items() if name in self.counted}
        self.work = {name: WorkCount() for name in self.metrics}
        self.delay = every  # grows with what a poll costs
        self.stop_event = threading.Event()
        self.counts = {spec.name: StageCount() for spec in STAGES if spec.name in self.counted}
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
        if not self.terminal.isatty():
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
        # written to the terminal directly, not through print(): kfp.local swaps builtins.print
        # while its tasks run (see local.builtin_print_restored)
        self.terminal.say(line)

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
        counts = published_counts(self.store, self.prefix, self.fingerprints, self._videos, self.counted)
        for name, done in counts.items():
            count = self.counts[name]
            if count.first_seen < 0:
                count.first_seen = done
            if done != count.done:
                count.done, changed = done, True
        return self._poll_work() or changed

    def _poll_work(self) -> bool:
        """The running services' units of work; True when one moved. A service that does not answer
        (loading, restarting) keeps its last counts."""
        changed = False
        for name, address in self.metrics.items():
            try:
                counts = work_counts(address)
            except (OSError, ValueError):
                continue
            if not counts:
                continue
            unit, (planned, done) = max(counts.items(), key=lambda item: item[1][0])  # the stage's main unit
            work = self.work[name]
            if work.first_done < 0:
                work.first_done = done
            if done == work.first_done:  # its rate counts from when it began to work, not from its start
                work.started = time.monotonic()
            if (unit, planned, done) != (work.unit, work.planned, work.done):
                work.unit, work.planned, work.done, changed = unit, planned, done, True
        return changed

    def work_text(self, name: str) -> str:
        work = self.work.get(name)
        return work.text() if work else ""

    def total_of(self, name: str) -> int | None:
        """The videos a stage runs on: every video, or those the plan marks for it (the transcriber's)."""
        spec = stage(name)
        if not spec.optional or not self._planned:
            return None if spec.optional else self.total
        return sum(1 for video in self._videos if spec.runs_on(video))

    def line(self) -> str:
        parts = []
        for name, count in self.counts.items():
            total = self.total_of(name)
            rate = count.rate()
            left = (total or 0) - count.done
            eta = f", ETA {left / rate:.0f}s" if rate > 0 and left > 0 else ""
            per = f" ({rate * 60:.1f}/min{eta})" if rate > 0 else ""
            inside = f" [{self.work_text(name)}]" if self.work_text(name) else ""
            parts.append(f"{name} {count.done}/{total if total is not None else '?'}{per}{inside}")
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
        if self.terminal.isatty():
            self._run_rich()
            return
        printed_at, unprinted = -self.log_every, False
        while not self.stop_event.wait(self.delay):
            unprinted |= self._timed_poll()
            if unprinted and time.monotonic() - printed_at >= self.log_every:
                self._say(self.line())
                printed_at, unprinted = time.monotonic(), False

    def _run_rich(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (
            TextColumn("{task.description:>10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[work]}"),
        )
        # drawn on the terminal's console, whatever sys.stdout is while the run goes; a few redraws a
        # second at most (a long run's captured screen stays small)
        with Progress(*columns, console=self.terminal.console, transient=False, refresh_per_second=2) as bars:
            tasks = {name: bars.add_task(name, total=None, work="") for name in self.counts}

            def draw() -> None:
                for name, count in self.counts.items():
                    bars.update(tasks[name], completed=count.done, total=self.total_of(name), work=self.work_text(name))

            while not self.stop_event.wait(self.delay):
                self._timed_poll()
                draw()
            self._timed_poll()
            draw()
