"""What the viewer shows: the videos of one or more release datasets, each with its tree of nodes,
the texts of every node, and where its video file is (when known). Trees and texts are read from
the files when the page asks for them (`rows.py`); the catalog keeps a summary per video.

The page receives this as data files (`data/index.js`, `data/video-N.js`, `data/search-K.js`), the
same for the live server and the static export. They are JavaScript that hands JSON to the page
(`A100M.add(name, {...})`), so an exported site also works opened from `file://`, where a page
may not fetch JSON. Every text stays data: the page writes it with `textContent`, never as HTML.

The search index comes in parts of consecutive videos, each of at most `SEARCH_PART_NODES` nodes
(a larger video is a part alone): the page reads them in order until it has enough hits, so a
catalog of 10,000 videos (1.2 million nodes, ~1.7 GB of text at the release's sizes) is never one
file for a browser.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from action100m.common.release.files import each_file
from action100m.common.store import ArtifactStore
from action100m.common.uris import UriError, parse_uri, split_roots, to_uri
from action100m.common.video import VIDEO_EXTENSIONS

from .rows import TEXT_FIELDS, RowReader, VideoEntry, nodes_of, transcript_of

log = logging.getLogger("action100m.viewer")

SEARCH_PART_NODES = 20_000  # ~10 MB of text: a browser reads and scans a part in well under a second


@dataclass
class Catalog:
    videos: list[VideoEntry] = field(default_factory=list)
    store: ArtifactStore | None = None  # reads and presigns the video files
    reader: RowReader = field(default_factory=RowReader)  # reads the videos' rows when asked
    against: dict[str, VideoEntry] = field(default_factory=dict)  # `--against`: the other dataset's videos by uid
    against_label: str = ""

    def index(self) -> dict[str, Any]:
        return {
            "videos": [
                {
                    "uid": video.uid,
                    "title": video.title,
                    "duration": video.duration,
                    "nodes": video.node_count,
                    "annotated": video.annotated,
                    "has_video": video.source is not None,
                }
                for video in self.videos
            ],
            "search_parts": len(self.search_parts),
            "against": self.against_label or None,
        }

    def video(self, number: int, media_url: str | None) -> dict[str, Any]:
        video = self.videos[number]
        row = video.read_row()  # once: its nodes and its transcript
        return {
            "uid": video.uid,
            "title": video.title,
            "description": video.description,
            "duration": video.duration,
            "media": media_url,
            # released videos come without files: their uid is the YouTube id
            "youtube": None if video.source else f"https://www.youtube.com/watch?v={video.uid}",
            "nodes": nodes_of(row),
            "transcript": transcript_of(row),
            "against": self._against_nodes(video.uid),
        }

    def _against_nodes(self, uid: str) -> dict[str, Any] | None:
        """The other dataset's nodes of this video by id (None without --against or when it lacks the video)."""
        other = self.against.get(uid)
        if other is None:
            return None
        return {node["id"]: {name: node.get(name) for name in (*TEXT_FIELDS, "gpt")} for node in other.nodes}

    @functools.cached_property
    def search_parts(self) -> list[range]:
        """The video numbers of each search part (read once the catalog is loaded)."""
        parts, first, nodes = [], 0, 0
        for number, video in enumerate(self.videos):
            if number > first and nodes + video.node_count > SEARCH_PART_NODES:
                parts.append(range(first, number))
                first, nodes = number, 0
            nodes += video.node_count
        if first < len(self.videos):
            parts.append(range(first, len(self.videos)))
        return parts

    def search(self, part: int) -> dict[str, Any]:
        """Search part `part`: per video an entry of its id and title, one per transcript line and
        one per node with text: [video number, node id or None, the text lower-cased] (a transcript
        line adds its time in seconds)."""
        entries: list[list[Any]] = []
        for number in self.search_parts[part]:
            video = self.videos[number]
            entries.append([number, None, f"{video.uid} {video.title or ''}".strip().lower()])
            row = video.read_row()
            entries += [[number, None, text.lower(), seconds] for seconds, text in transcript_of(row) if text]
            for node in nodes_of(row):
                texts = [str(node.get(name) or "") for name in TEXT_FIELDS]
                if node.get("gpt"):
                    texts.append(json.dumps(node["gpt"], ensure_ascii=False))
                joined = " ".join(t for t in texts if t)
                if joined:
                    entries.append([number, node["id"], joined.lower()])
        return {"entries": entries}


def data_script(name: str, payload: dict[str, Any]) -> str:
    """A data file for the page: JSON handed to `A100M.add`. `<` is escaped so no text can close a
    script element, whatever it holds."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f"A100M.add({json.dumps(name)},{text});\n"


def _run_sources(location: Path) -> tuple[dict[str, str], list[str]]:
    """uid -> video URI from an `a100m run` output folder (when DATASET is one), and the roots that
    run could read videos from: its record (`run.json`: the manifest and the roots), else the
    manifest of earlier versions' folders with no roots (nothing is served from it)."""
    record, roots = location / "run.json", []
    manifest = location / "artifacts" / "inputs" / "manifest.jsonl"
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        facts = json.loads(record.read_text())
        roots = [str(r) for r in facts.get("read_roots", [])]
        if str(facts.get("manifest", "")).startswith("file://"):
            manifest = parse_uri(facts["manifest"]).path
    sources: dict[str, str] = {}
    if manifest.is_file():
        for line in manifest.read_text().splitlines():
            try:
                row = json.loads(line)
                sources[str(row["video_uid"])] = str(row["uri"])
            except (ValueError, KeyError, TypeError):
                continue
    return sources, roots


def is_video_file(path: Path) -> bool:
    """A video container by its name and its content (a video stream FFmpeg can open), not any file:
    checked when the file is served, not for every video of the catalog when it loads."""
    if not path.name.lower().endswith(VIDEO_EXTENSIONS) or not path.is_file():
        return False
    try:
        import av

        with av.open(str(path)) as container:
            return bool(container.streams.video)
    except Exception:
        return False


def _listed_videos(store: ArtifactStore, root: str) -> dict[str, str]:
    """name (the file's stem and its whole name) -> URI of the video files under `root`."""
    found: dict[str, str] = {}
    for uri in store.list(root):
        name = uri.rsplit("/", 1)[-1]
        if name.lower().endswith(VIDEO_EXTENSIONS):
            found.setdefault(name.rsplit(".", 1)[0], uri)
            found.setdefault(name, uri)
    return found


def load_catalog(
    datasets: Sequence[str],
    videos: str | None = None,
    store: ArtifactStore | None = None,
    against: Sequence[str] = (),
) -> Catalog:
    """The videos of `datasets` (release files or folders, `a100m run` outputs included), each matched
    to its file: under `videos` (a folder or an s3:// prefix) by video_uid or file stem, or from a run
    folder's manifest. Files outside those roots (symlinks out of them included) are not offered.
    With `against` (other datasets), each video's page shows their texts beside its own."""
    roots = split_roots(videos or "")
    run_sources: dict[str, str] = {}
    run_roots: list[str] = []
    for location in datasets:
        path = Path(location)
        if path.is_dir():
            sources, readable = _run_sources(path)
            run_sources.update(sources)
            run_roots += readable
    all_roots = [to_uri(r) if "://" not in r else r for r in roots] + sorted(set(run_roots))
    if store is None and all_roots:
        store = ArtifactStore.for_roots(all_roots, all_roots, os.environ)
    listed: dict[str, str] = {}
    for root in roots:
        assert store is not None
        listed.update(_listed_videos(store, to_uri(root) if "://" not in root else root))
    catalog = Catalog(store=store)
    seen: set[str] = set()
    for location in datasets:
        for video in each_file(location, catalog.reader.videos):
            if video.uid in seen:
                log.warning("%s: video %s appears again; the first one is shown", location, video.uid)
                continue
            seen.add(video.uid)
            candidate = listed.get(video.uid) or run_sources.get(video.uid)
            if candidate and store is not None:
                try:
                    store.resolve(candidate)
                    if not candidate.lower().endswith(VIDEO_EXTENSIONS):  # its content is checked when served
                        raise UriError(f"{candidate}: not a video file")
                    video.source = candidate
                except UriError as error:
                    log.warning("%s: not offered: %s", video.uid, error)
            catalog.videos.append(video)
    for location in against:
        for video in each_file(location, catalog.reader.videos):
            catalog.against.setdefault(video.uid, video)
    catalog.against_label = ", ".join(against)
    return catalog
