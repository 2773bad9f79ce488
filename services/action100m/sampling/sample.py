"""`sample`: a training set from datasets, as the paper makes one (Sec. 5.4): the segments' texts
deduplicated exactly, embedded, clustered with k-means, and the clusters resampled uniformly.

Two passes over the datasets: the first counts the unique texts (memory grows with them, not the
segments), which are embedded (cached) and clustered for each k, and the draws are made among them;
the second writes the drawn segments, in reading order, a parquet file per k (all k in that one pass).
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .cluster import Clusters, kmeans
from .dedup import Groups
from .embed import embedder_named, embeddings
from .report import write_report
from .resample import Draw, draws
from .segments import TEXT_FIELDS, Segment, SegmentFilter, segments, value

TOP_GROUPS = 20


@dataclass(frozen=True)
class SampleSettings:
    chosen: SegmentFilter = field(default_factory=SegmentFilter)
    ks: tuple[int, ...] = (1000,)
    strategy: str = "semantic"
    size: int | None = None  # draws (semantic); default: the number of unique texts
    seed: int = 0
    embedder: str = "wordllama"
    cache: Path | None = None  # where embeddings are kept between runs


def entropy_bits(weights: np.ndarray) -> float:
    """Shannon entropy (bits) of a distribution given by non-negative weights."""
    total = float(weights.sum())
    p = weights[weights > 0] / total if total else np.zeros(0)
    return float(-(p * np.log2(p)).sum())


def sample(locations: Sequence[str], out: Path, settings: SampleSettings, plot: bool = False) -> dict[str, Any]:
    """Writes `out/samples-k{K}.parquet` per k, `report.json` and the card section `README.md` (with
    `plot`, the cluster sizes as PNG), and returns the report. ValueError for what cannot be sampled."""
    groups = Groups()
    total = 0
    for segment in segments(locations, settings.chosen):
        groups.add(segment.text)
        total += 1
    if total == 0:
        raise ValueError(f"no segment has {settings.chosen.field} in {', '.join(locations)} (with these filters)")
    vectors = embeddings(embedder_named(settings.embedder), groups.keys, groups.texts, settings.cache)
    counts = np.array(groups.counts)
    report: dict[str, Any] = {
        "field": settings.chosen.field,
        "strategy": settings.strategy,
        "seed": settings.seed,
        "embedder": settings.embedder,
        "normalization": "case folded, whitespace runs one space, trailing . ! ? , ; : dropped",
        "segments": total,
        "unique_texts": len(groups.texts),
        "duplicate_groups": int((counts > 1).sum()),
        "segments_in_duplicate_groups": int(counts[counts > 1].sum()),
        "top_groups": [{"text": t, "segments": n} for t, n in groups.largest(TOP_GROUPS)],
        "k": {},
    }
    out.mkdir(parents=True, exist_ok=True)
    outputs = []
    for k in settings.ks:
        clusters = kmeans(vectors, groups.texts, k, settings.seed)
        drawn = draws(settings.strategy, groups.counts, clusters, settings.size or len(groups.texts), settings.seed)
        outputs.append(_Output(clusters, drawn, out / f"samples-k{k}.parquet"))
    _write(locations, settings.chosen, groups, outputs)  # one second pass, whatever the number of k
    for k, output in zip(settings.ks, outputs, strict=True):
        report["k"][str(k)] = _cluster_figures(output.clusters, counts, output.drawn, output.rows)
    write_report(out, report, plot)
    return report


def _cluster_figures(clusters: Clusters, counts: np.ndarray, drawn: Counter[Draw], rows: int) -> dict[str, Any]:
    before = np.bincount(clusters.assignment, weights=counts, minlength=clusters.k)
    after = np.zeros(clusters.k)
    for (group, _), times in drawn.items():
        after[clusters.assignment[group]] += times
    largest = np.argsort(-before, kind="stable")[:TOP_GROUPS]
    return {
        "clusters": clusters.k,
        "rows": rows,
        "draws": int(after.sum()),
        "entropy_bits_before": entropy_bits(before),
        "entropy_bits_after": entropy_bits(after),
        "entropy_bits_uniform": math.log2(clusters.k),
        "segments_per_cluster_before": before.astype(int).tolist(),
        "draws_per_cluster_after": after.astype(int).tolist(),
        "top_clusters": [
            {"name": clusters.names[c], "texts": int(clusters.sizes[c]), "segments": int(before[c])} for c in largest
        ],
    }


@dataclass
class _Output:
    """One k's sample: its clusters, its draws, its file, and the rows written there."""

    clusters: Clusters
    drawn: Counter[Draw]
    path: Path
    rows: int = 0


BATCH_ROWS = 8192


def _write(locations: Sequence[str], chosen: SegmentFilter, groups: Groups, outputs: Sequence[_Output]) -> None:
    """The second pass, for every k at once: each drawn segment, once per file, with how many times
    it was drawn."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    seen = np.zeros(len(groups.texts), dtype=np.int64)
    batches: list[list[dict[str, Any]]] = [[] for _ in outputs]
    with contextlib.ExitStack() as held:
        sinks = [held.enter_context(pq.ParquetWriter(output.path, SCHEMA)) for output in outputs]
        for segment in segments(locations, chosen):
            group = groups.group_of(segment.text)
            occurrence = int(seen[group])
            seen[group] += 1
            for output, sink, batch in zip(outputs, sinks, batches, strict=True):
                times = output.drawn.get((group, occurrence), 0)
                if not times:
                    continue
                batch.append(_row(segment, chosen, groups, output.clusters, group, times))
                if len(batch) >= BATCH_ROWS:
                    sink.write_table(pa.Table.from_pylist(batch, SCHEMA))
                    output.rows += len(batch)
                    batch.clear()
        for output, sink, batch in zip(outputs, sinks, batches, strict=True):
            if batch:
                sink.write_table(pa.Table.from_pylist(batch, SCHEMA))
                output.rows += len(batch)


def _row(
    segment: Segment, chosen: SegmentFilter, groups: Groups, clusters: Clusters, group: int, times: int
) -> dict[str, Any]:
    cluster = int(clusters.assignment[group])
    return {
        "video_uid": segment.video_uid,
        "node_id": segment.node_id,
        "start": segment.start,
        "end": segment.end,
        "level": segment.level,
        "field": chosen.field,
        "text": segment.text,
        "cluster": cluster,
        "cluster_name": clusters.names[cluster],
        "group_size": groups.counts[group],
        "times_drawn": times,
        **{_column(name): _text(value(segment.node, name)) for name in TEXT_FIELDS},
    }


def _column(name: str) -> str:
    return name.removeprefix("gpt.").replace(".", "_")


def _text(found: Any) -> str | None:
    return found if isinstance(found, str) else None


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("video_uid", pa.string()),
            ("node_id", pa.string()),
            ("start", pa.float32()),
            ("end", pa.float32()),
            ("level", pa.int16()),
            ("field", pa.string()),
            ("text", pa.string()),
            ("cluster", pa.int32()),
            ("cluster_name", pa.string()),
            ("group_size", pa.int64()),
            ("times_drawn", pa.int32()),
            *((_column(name), pa.string()) for name in TEXT_FIELDS),
        ]
    )


SCHEMA = _schema()
