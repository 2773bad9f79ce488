"""The last steps: a parquet shard in the release format per shard, then the dataset published whole.

Each shard's parquet is written into the run's staging folder (`{output}/.staging/{run}/`) under
its Hub-style name (`data/train-00003-of-00016.parquet`), and the shard's final state (its report)
into the run's folder of the artifact store. `publish_dataset` then moves the new files into
`{output}/data/`, removes every other file there (a rerun with another shard size leaves no stale
part behind), and writes `report.json` and the dataset card `README.md`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from action100m.common.artifacts import Annotations, Captions, SegmentTree
from action100m.common.errors import classify
from action100m.common.release.assemble import to_row
from action100m.common.release.files import parquet_bytes, to_table
from action100m.common.store import ArtifactNotFound, ArtifactStore
from action100m.common.version import __version__

from .card import CardFacts, dataset_card
from .plan import Plan
from .registry import ANNOTATIONS, CAPTIONS, STAGES, TREE
from .state import ExportStats, Failure, RunReport, ShardState, VideoEntry

log = logging.getLogger("action100m.pipeline")


def data_file(shard: int, shards: int) -> str:
    return f"data/train-{shard:05d}-of-{shards:05d}.parquet"


def staging_prefix(output_prefix: str, run: str) -> str:
    return f"{output_prefix.rstrip('/')}/.staging/{run}"


def _row(state: ShardState, video: VideoEntry, store: ArtifactStore) -> dict[str, Any]:
    tree_uri, captions_uri, annotations_uri = (state.artifact(spec, video) for spec in (TREE, CAPTIONS, ANNOTATIONS))
    tree = SegmentTree.from_json(store.get_bytes(tree_uri), tree_uri)
    captions = Captions.from_json(store.get_bytes(captions_uri), captions_uri)
    annotations = Annotations.from_json(store.get_bytes(annotations_uri), annotations_uri)
    metadata = json.loads(store.get_bytes(video.metadata_uri)) if video.metadata_uri else None
    for spec in STAGES:  # what the stages that make metadata fields made for it (the transcriber's transcript)
        if spec.adds_metadata is not None and spec.name in state.stages and spec.runs_on(video):
            uri = state.artifact(spec, video)
            metadata = spec.adds_metadata(store.get_bytes(uri), uri, metadata)
    row = to_row(tree, captions, annotations, metadata)
    to_table([row])  # one row that does not fit the release schema fails its video, not the shard
    return row


def export_shard(state: ShardState, output_prefix: str, plan: Plan, store: ArtifactStore) -> ShardState:
    """Writes the shard's finished videos as one staged parquet file (one row per video) and its report."""
    started = time.monotonic()
    rows = []
    for video in state.active():
        try:
            rows.append(_row(state, video, store))
        except Exception as error:  # this video fails, the shard goes on
            code, reason = classify(error)
            state.failed[video.video_uid] = Failure("export", code.name, reason)
    staged = f"{staging_prefix(output_prefix, state.run)}/{data_file(state.shard, state.shards)}"
    store.put_bytes(staged, parquet_bytes(rows))  # an empty shard still has its file
    state.export = ExportStats(
        rows=len(rows),
        nodes=sum(len(r["nodes"]) for r in rows),
        segments_annotated=sum(1 for r in rows for n in r["nodes"] if n["gpt"] is not None),
        seconds=time.monotonic() - started,
    )
    store.put_bytes(plan.report_uri(state.shard), state.to_json().encode(), "application/json")
    return state


def collect_report(plan: Plan, store: ArtifactStore, workers: int = 32) -> RunReport:
    """The run's report from every shard's report, read concurrently."""
    with ThreadPoolExecutor(workers) as pool:
        texts = list(pool.map(lambda i: store.get_bytes(plan.report_uri(i)).decode(), range(plan.shards)))
    report = RunReport(run=plan.run, version=__version__)
    for text in texts:
        report.add(ShardState.from_json(text))
    return report


CLAIM_NAME = ".a100m-run"  # beside data/: the id of the run that holds the dataset folder now


class PublicationRefused(RuntimeError):
    """Another run holds the dataset folder now: this run must not publish over it."""


def claim_uri(output_prefix: str) -> str:
    return f"{output_prefix.rstrip('/')}/{CLAIM_NAME}"


def claim_output(store: ArtifactStore, output_prefix: str, run: str) -> None:
    """This run holds the dataset folder from now on (a run still going with an older claim will
    not publish into it: see `publish_dataset`)."""
    store.put_bytes(claim_uri(output_prefix), run.encode(), "text/plain")


def check_claim(store: ArtifactStore, output_prefix: str, run: str) -> None:
    """PublicationRefused unless `run` still holds the dataset folder."""
    try:
        holder = store.get_bytes(claim_uri(output_prefix)).decode()
    except ArtifactNotFound:
        holder = ""
    if holder != run:
        raise PublicationRefused(
            f"{output_prefix}: run {holder or '(none)'} holds this dataset now, not run {run}: "
            "its files stay unpublished in the staging folder"
        )


def publish_dataset(
    plan: Plan,
    output_prefix: str,
    store: ArtifactStore,
    workers: int = 32,
    facts: CardFacts = CardFacts(),
    claimed: bool = False,
) -> RunReport:
    """Publishes the run's staged files as `{output}/data/`, then writes report and card.

    A local dataset changes in one step (the staged `data/` and the old one are exchanged, see
    `ArtifactStore.swap_folder`): a reader, or a run stopped at any moment, sees the old dataset or
    the new one. On S3, where no such step exists, the new files are copied in first, `report.json`
    (the list of the dataset's files: what readers follow) is written next, and stale files of
    earlier runs are removed last. With `claimed`, the run (`plan.run`) publishes only while it
    still holds the folder (`claim_output`): a run killed and replaced never publishes over the new one."""
    output = output_prefix.rstrip("/")
    if claimed:
        check_claim(store, output, plan.run)
    report = collect_report(plan, store, workers)
    names = [data_file(i, plan.shards) for i in range(plan.shards)]
    staging = staging_prefix(output, plan.run)
    report.files = [f"{output}/{name}" for name in names]
    if store.swap_folder(f"{staging}/data", f"{output}/data"):
        _remove_folders(store, staging)  # the old data/, now in the staging folder
        _write_report_and_card(report, output, store, facts)
        return report
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda name: store.move(f"{staging}/{name}", f"{output}/{name}"), names))
        _write_report_and_card(report, output, store, facts)
        wanted = set(report.files)
        stale = [uri for uri in store.list(f"{output}/data") if uri not in wanted]
        list(pool.map(store.delete, stale))
    if stale:
        log.info("removed %d file(s) of earlier runs from %s/data", len(stale), output)
    return report


def _write_report_and_card(report: RunReport, output: str, store: ArtifactStore, facts: CardFacts) -> None:
    store.put_bytes(f"{output}/report.json", report.to_json().encode(), "application/json")
    store.put_bytes(f"{output}/README.md", dataset_card(report, facts).encode(), "text/markdown")


def _remove_folders(store: ArtifactStore, prefix: str) -> None:
    """A local prefix's folder with what it holds (a run's staging folder), and `.staging` once empty."""
    folder = store.resolve_writable(prefix).path
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()  # other runs' staging folders keep it
