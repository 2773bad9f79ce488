"""The last steps: a parquet shard in the release format, then the run report over all shards."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pyarrow.parquet as pq

from action100m.common.artifacts import Annotations, Captions, SegmentTree
from action100m.common.release.assemble import to_row
from action100m.common.release.files import to_table
from action100m.common.stage import classify
from action100m.common.store import ArtifactStore

from .steps import artifacts_of, store_for


def shard_file(output_prefix: str, shard: int) -> str:
    return f"{output_prefix.rstrip('/')}/part-{shard:05d}.parquet"


def export_shard(shard_json: str, output_prefix: str, store: ArtifactStore | None = None) -> str:
    """Writes the shard's finished videos as one parquet file (one row per video); returns its report."""
    shard = json.loads(shard_json)
    store = store or store_for()
    started = time.monotonic()
    rows, nodes, annotated = [], 0, 0
    for video in shard["videos"]:
        uid = video["video_uid"]
        if uid in shard["failed"]:
            continue
        try:
            uris = artifacts_of(shard, video)
            tree = SegmentTree.from_json(store.get_bytes(uris["segment"]), uris["segment"])
            captions = Captions.from_json(store.get_bytes(uris["caption"]), uris["caption"])
            annotations = Annotations.from_json(store.get_bytes(uris["refine"]), uris["refine"])
            metadata = json.loads(store.get_bytes(video["metadata_uri"])) if video["metadata_uri"] else None
        except Exception as error:
            code, reason = classify(error)
            shard["failed"][uid] = {"stage": "export", "code": code.name, "reason": reason}
            continue
        row = to_row(tree, captions, annotations, metadata)
        nodes += len(row["nodes"])
        annotated += sum(1 for n in row["nodes"] if n["gpt"] is not None)
        rows.append(row)
    path = ""
    if rows:
        buffer = io.BytesIO()
        pq.write_table(to_table(rows), buffer, compression="zstd")
        path = store.put_bytes(shard_file(output_prefix, shard["shard"]), buffer.getvalue())
    shard["stage_seconds"]["export"] = time.monotonic() - started
    shard["export"] = {"path": path, "rows": len(rows), "nodes": nodes, "segments_annotated": annotated}
    return json.dumps(shard)


def collect_reports(reports: list[str], output_prefix: str, store: ArtifactStore | None = None) -> str:
    """The run report: videos done and failed (with stage and reason), nodes, annotated segments, times."""
    store = store or store_for()
    shards = sorted((json.loads(r) for r in reports), key=lambda s: s["shard"])
    report: dict[str, Any] = {
        "videos": 0,
        "done": [],
        "failed": {},
        "nodes": 0,
        "segments_annotated": 0,
        "files": [],
        "stage_seconds": {},
        "service_calls": {},
        "videos_sent": {},
    }
    for shard in shards:
        report["videos"] += len(shard["videos"])
        report["failed"].update(shard["failed"])
        report["done"] += [v["video_uid"] for v in shard["videos"] if v["video_uid"] not in shard["failed"]]
        export = shard.get("export", {})
        report["nodes"] += export.get("nodes", 0)
        report["segments_annotated"] += export.get("segments_annotated", 0)
        if export.get("path"):
            report["files"].append(export["path"])
        for name, seconds in shard["stage_seconds"].items():
            report["stage_seconds"][name] = round(report["stage_seconds"].get(name, 0.0) + seconds, 3)
        for name, count in shard["calls"].items():
            report["service_calls"][name] = report["service_calls"].get(name, 0) + count
        for name, uids in shard.get("sent", {}).items():
            report["videos_sent"].setdefault(name, []).extend(uids)
    text = json.dumps(report, indent=1)
    store.put_bytes(f"{output_prefix.rstrip('/')}/report.json", text.encode(), "application/json")
    return text
