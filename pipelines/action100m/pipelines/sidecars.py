"""What planning finds for a video besides its manifest row: the files beside it and its own header.

A video's metadata is merged field by field, the first source that has a field winning:

1. the manifest's row (or nothing, for videos given as files);
2. `clip.json` beside `clip.mp4`: the release's fields as JSON ("sidecar");
3. `clip.info.json`, the file yt-dlp writes beside what it downloads ("info-json"; a manifest names
   one with `info_json_uri`);
4. the container's own tags, duration and date ("container");
and the transcript, where none of those has one, from a subtitle file (`clip.vtt`, `clip.en.srt`,
yt-dlp's `clip.en.vtt`; a manifest names one with `transcript_uri`).

Where each field came from is kept as `field=source` pairs for the dataset card. A file that is
named or found but cannot be read fails its video at plan with the file and the reason.
"""

from __future__ import annotations

import os
import posixpath
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from action100m.common.release.container import FROM_CONTAINER, IMPOSSIBLE_DATE, container_metadata
from action100m.common.release.metadata import FIELDS, MetadataError, json_object
from action100m.common.release.subtitles import SUBTITLE_EXTENSIONS, read_transcript, sidecar_name
from action100m.common.release.ytdlp import INFO_JSON, info_json_name, info_metadata
from action100m.common.store import ArtifactNotFound, ArtifactStore
from action100m.common.uris import UriError, parse_uri, to_uri
from action100m.common.video import VIDEO_EXTENSIONS

# The most a run reads of each kind of file beside a video (a device node or a runaway file is
# refused, not read); yt-dlp's info files carry every format's URL: a few MB for a long video.
SIDECAR_MAX_BYTES = 16 << 20
SUBTITLES_MAX_BYTES = 64 << 20


def videos_among(names: Iterable[str]) -> set[str]:
    return {name for name in names if posixpath.splitext(name)[1].lower() in VIDEO_EXTENSIONS}


def metadata_json_name(video_name: str) -> str:
    """`clip.mp4` -> `clip.json`."""
    return f"{posixpath.splitext(video_name)[0]}.json"


# The roles of the files planning reads beside a video (a manifest row may name each itself).
FILE_ROLES = ("metadata_json_uri", "info_json_uri", "transcript_uri")


class Folder:
    """The file names of one folder, grouped by their first dot-separated part. A video's files
    (`clip.json`, `clip.info.json`, `clip.en.vtt`) and every video that could claim one of them
    (`clip.en.mp4`) begin with the video's stem, so they share its group: finding them reads that
    group only, and a folder of 100,000 videos is not scanned once per video."""

    def __init__(self, uri: str, names: Iterable[str]):
        self.uri = uri
        self._groups: dict[str, set[str]] = {}
        for name in names:
            self._groups.setdefault(name.split(".", 1)[0], set()).add(name)

    def beside(self, video_name: str) -> dict[str, str]:
        """The files that belong to the video `video_name` of this folder, by role, as URIs."""
        names = self._groups.get(video_name.split(".", 1)[0], set())
        found = {
            "metadata_json_uri": metadata_json_name(video_name),
            "info_json_uri": info_json_name(video_name),
            "transcript_uri": sidecar_name(video_name, names, videos_among(names)) or "",
        }
        return {role: f"{self.uri}/{file}" for role, file in found.items() if file and file in names}


class LocalSidecars:
    """The files beside local videos, each folder listed once (a manifest's videos on S3 name theirs
    with `transcript_uri` and `info_json_uri`: a listing per folder would cost a request each)."""

    KEPT = (*SUBTITLE_EXTENSIONS, *VIDEO_EXTENSIONS, ".json")

    def __init__(self) -> None:
        self._folders: dict[Path, Folder] = {}
        self._lock = threading.Lock()

    def of(self, video_uri: str) -> dict[str, str]:
        """The files beside a local video, by role ({} for a video elsewhere)."""
        try:
            uri = parse_uri(video_uri)
        except UriError:
            return {}
        if uri.scheme != "file" or not uri.path.name:
            return {}
        path = uri.path.parent
        with self._lock:
            if path not in self._folders:
                try:
                    names = [e.name for e in os.scandir(path) if e.name.lower().endswith(self.KEPT)]
                except OSError:
                    names = []
                self._folders[path] = Folder(to_uri(path), names)
            folder = self._folders[path]
        return folder.beside(uri.path.name)

    def files_of(self, entry: dict[str, Any]) -> dict[str, str]:
        """The files a planned entry's metadata comes from: those its manifest row names, else
        those beside a local video."""
        named = {role: str(entry[role]) for role in FILE_ROLES if entry.get(role)}
        return {**self.of(str(entry["uri"])), **named}


def _json_object(store: ArtifactStore, uri: str) -> dict[str, Any]:
    found = json_object(_read(store, uri, SIDECAR_MAX_BYTES), uri, "not sidecar metadata (the release's fields)")
    nested = found.get("metadata")
    source = nested if isinstance(nested, dict) else found
    return {key: source[key] for key in FIELDS if source.get(key) is not None}


def _read(store: ArtifactStore, uri: str, max_bytes: int) -> bytes:
    try:
        return store.get_bytes(uri, max_bytes)
    except (ArtifactNotFound, UriError) as error:  # missing, a FIFO, a device, too long, outside the roots
        raise MetadataError(str(error)) from None  # its message names the file


def _fill(metadata: dict[str, Any], found: dict[str, Any], source: str, sources: list[str]) -> None:
    for name, value in found.items():
        if metadata.get(name) is None and value is not None:
            metadata[name] = value
            sources.append(f"{name}={source}")


def merged_metadata(
    store: ArtifactStore, entry: dict[str, Any], sidecars: LocalSidecars
) -> tuple[dict[str, Any] | None, list[str]]:
    """The entry's metadata merged from its sources (see the module), None when no source has any
    field, and where each field not from the manifest came from (`title=info-json`). A file that
    cannot be read raises its video's MetadataError."""
    given = entry.get("metadata")
    if isinstance(given, Exception):
        raise given
    metadata: dict[str, Any] = {k: v for k, v in (given or {}).items() if v is not None}
    sources: list[str] = []
    files = sidecars.files_of(entry)
    if files.get("metadata_json_uri"):
        _fill(metadata, _json_object(store, files["metadata_json_uri"]), "sidecar", sources)
    if files.get("info_json_uri"):
        uri = files["info_json_uri"]
        _fill(metadata, info_metadata(_read(store, uri, SIDECAR_MAX_BYTES), uri), "info-json", sources)
    if metadata.get("transcript") is None and files.get("transcript_uri"):
        source = files["transcript_uri"]
        transcript = read_transcript(_read(store, source, SUBTITLES_MAX_BYTES), source)
        _fill(metadata, {"transcript": transcript}, "subtitles", sources)
    sources += _with_container(store, str(entry["uri"]), metadata)
    return metadata or None, sources


def _with_container(store: ArtifactStore, uri: str, metadata: dict[str, Any]) -> list[str]:
    """Fills the fields the metadata lacks from the video file's container (title, description,
    duration, upload date): a local file, or an S3 object through a short-lived presigned URL
    (FFmpeg reads the header with range requests, not the whole video). Returns where each came
    from ("upload_date=impossible-date": the file's date is no real day, so it stays null)."""
    if all(metadata.get(name) is not None for name in FROM_CONTAINER):
        return []
    if uri.startswith("file://"):
        source = str(parse_uri(uri).path)
    elif uri.startswith("s3://"):
        source = store.presigned_get(uri, expires_seconds=600)
    else:
        return []
    found = container_metadata(source)
    refused = ["upload_date=impossible-date"] if IMPOSSIBLE_DATE in found and not metadata.get("upload_date") else []
    sources: list[str] = []
    _fill(metadata, {name: found[name] for name in FROM_CONTAINER if name in found}, "container", sources)
    return sources + refused


__all__ = [
    "INFO_JSON",
    "SIDECAR_MAX_BYTES",
    "SUBTITLES_MAX_BYTES",
    "VIDEO_EXTENSIONS",
    "Folder",
    "LocalSidecars",
    "merged_metadata",
    "videos_among",
]
