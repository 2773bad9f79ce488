"""The video reader (PyAV): probe a file, and take the frames a stage needs in ONE decoding pass.

Frame times come from presentation timestamps relative to the first frame, so variable frame rate
is handled; frame i "covers" [t_i, t_{i+1}), and a request for time t gets the frame covering t.
Codecs force decoding every frame anyway, so the savings come from converting (colour conversion,
resize, rotation) only the frames somebody asked for, and from never decoding a file twice.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Generator, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

log = logging.getLogger("action100m.video")

Size = tuple[int, int]  # (width, height)
K = TypeVar("K", bound=Hashable)  # whatever a caller names its requests by


# The files taken as videos, by extension (folders of inputs, files beside a dataset)
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v", ".mpg", ".mpeg")


class VideoError(Exception):
    """A video that cannot be read; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str):
        super().__init__(f"{os.fspath(path)}: {problem}")
        self.path = os.fspath(path)
        self.problem = problem


class VideoNotFound(VideoError):
    pass


class EmptyVideo(VideoError):
    """Zero bytes, or a video stream without a single decodable frame."""


class NoVideoStream(VideoError):
    """A readable container without a video stream (audio-only, subtitles...)."""


class UnsupportedVideo(VideoError):
    """Not a container FFmpeg knows, or a codec it cannot decode."""


class CorruptVideo(VideoError):
    """The file breaks while it is being demuxed or decoded (truncated, damaged)."""


@dataclass(frozen=True)
class VideoInfo:
    path: str
    codec: str
    width: int  # as displayed, i.e. after rotation
    height: int
    rotation: int  # counter-clockwise degrees the picture is turned for display (0, 90, 180, 270)
    frame_count: int
    duration: float  # decoded duration: from the first frame's start to the last frame's end
    fps: float  # frame_count / duration (the average rate; exact for constant frame rate)


@dataclass
class DecodeStats:
    frames_decoded: int = 0
    frames_converted: int = 0
    passes: int = 0


def evenly_spaced_times(start: float, end: float, count: int) -> np.ndarray:
    """`count` times splitting [start, end] into equal parts, one at the centre of each part.

    Centres never touch `end`, which belongs to the next segment; a span shorter than `count`
    frames gets the same frame several times (repeats are intended).
    """
    if count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    if not end >= start:
        raise ValueError(f"empty span [{start}, {end}]")
    return start + (np.arange(count) + 0.5) * ((end - start) / count)


def frame_indices_for_times(frame_times: Sequence[float], times: Sequence[float]) -> np.ndarray:
    """Index of the frame covering each time: the last frame starting at or before it (first frame if earlier)."""
    starts = np.asarray(frame_times, dtype=np.float64)
    idx = np.searchsorted(starts, np.asarray(times, dtype=np.float64), side="right") - 1
    return np.clip(idx, 0, len(starts) - 1)


@dataclass(frozen=True)
class VideoFile:
    """A local video file and which of its streams is the video (None: the main one, see `main_video_stream`)."""

    path: str
    stream: int | None = None


VideoSource = str | os.PathLike[str] | VideoFile
STILL_IMAGE_CODECS = frozenset({"mjpeg", "png", "bmp", "gif", "webp", "tiff", "jpeg2000"})


def _is_picture(stream: Any) -> bool:
    """A cover picture or a thumbnail rather than the video: flagged as one, or a still-image codec
    with at most one frame."""
    from av.stream import Disposition

    if stream.disposition & (Disposition.attached_pic | Disposition.still_image | Disposition.timed_thumbnails):
        return True
    return stream.codec_context.name in STILL_IMAGE_CODECS and (stream.frames or 0) <= 1


def _stream_seconds(stream: Any) -> float | None:
    """How long a stream says it lasts: its duration, else Matroska's DURATION tag, else frames / rate."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION")
    if tag:
        with contextlib.suppress(ValueError):
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return None


def main_video_stream(container: Any, path: str, index: int | None = None) -> Any:
    """The stream that is the video: the one named by `index` (the container's stream number), else
    among the video streams that are not pictures (cover art, thumbnails) the longest, then the largest."""
    videos = [s for s in container.streams.video if s.codec_context is not None]
    if index is not None:
        named = [s for s in videos if s.index == index]
        if not named:
            found = ", ".join(str(s.index) for s in videos)
            raise NoVideoStream(path, f"stream {index} is not a video stream (the video streams: {found})")
        return named[0]
    moving = [s for s in videos if not _is_picture(s)] or videos
    return max(
        moving,
        key=lambda s: (_stream_seconds(s), (s.codec_context.width or 0) * (s.codec_context.height or 0), -s.index),
    )


def _source(source: VideoSource) -> VideoFile:
    return source if isinstance(source, VideoFile) else VideoFile(os.fspath(source))


def _open(source: VideoSource) -> tuple[Any, Any]:
    import av

    video = _source(source)
    path = video.path
    if not os.path.exists(path):
        raise VideoNotFound(path, "no such file")
    if os.path.isdir(path):
        raise VideoNotFound(path, "is a directory, not a video file")
    if os.path.getsize(path) == 0:
        raise EmptyVideo(path, "file is empty (0 bytes)")
    try:
        container = av.open(path, mode="r")
    except av.error.InvalidDataError as err:
        raise CorruptVideo(
            path, f"not a readable video container: corrupt, truncated or not a video ({err.strerror or err})"
        ) from None
    except (av.error.FFmpegError, OSError) as err:
        raise CorruptVideo(path, f"cannot open ({err})") from None
    if not container.streams.video:
        kinds: list[str] = sorted({str(s.type) for s in container.streams}) or ["no"]
        container.close()
        raise NoVideoStream(path, f"no video stream (the file has {', '.join(kinds)} streams)")
    try:
        stream = main_video_stream(container, path, video.stream)
    except VideoError:
        container.close()
        raise
    if stream.codec_context is None or not stream.codec_context.name:
        container.close()
        raise UnsupportedVideo(path, "video codec has no decoder in this FFmpeg build")
    return container, stream


def describe_streams(container: Any, chosen: Any) -> str:
    """Which video stream was chosen among several, said plainly (for the service's log)."""
    parts = []
    for s in container.streams.video:
        ctx = s.codec_context
        what = "picture" if _is_picture(s) else f"{_stream_seconds(s) or 0.0:.1f}s"
        parts.append(
            f"#{s.index} {ctx.name if ctx else '?'} {ctx.width if ctx else 0}x{ctx.height if ctx else 0} {what}"
        )
    return f"video stream #{chosen.index} of {len(parts)} ({'; '.join(parts)})"


def _display_rotation(frame: Any) -> int:
    """Counter-clockwise degrees to turn a decoded picture to show it upright (its display matrix)."""
    return round(float(getattr(frame, "rotation", 0) or 0)) % 360


@dataclass(frozen=True)
class _Declared:
    """What the container header announces (used to detect truncated files)."""

    seconds: float | None
    frames: int | None

    @classmethod
    def of(cls, container: Any, stream: Any) -> _Declared:
        seconds = _stream_seconds(stream)
        if seconds is None and container.duration is not None and len(container.streams.video) == 1:
            seconds = container.duration / 1_000_000  # the container's: only when it is this stream's
        return cls(seconds, stream.frames or None)

    def check(self, path: str, seconds: float, frames: int) -> None:
        # A file cut short often still demuxes and decodes without an error: compare with its header.
        if self.seconds and self.seconds > 1.0 and seconds < 0.9 * self.seconds - 0.5:
            raise CorruptVideo(
                path, f"truncated: the header announces {self.seconds:.2f}s but only {seconds:.2f}s decode"
            )
        if self.frames and self.frames > 10 and frames < 0.9 * self.frames - 5:
            raise CorruptVideo(path, f"truncated: the header announces {self.frames} frames but only {frames} decode")


class VideoReader:
    """Reads one video file. Every public reading method is a single decoding pass."""

    def __init__(self, source: VideoSource):
        self.source = _source(source)
        self.path = self.source.path
        self.stats = DecodeStats()
        container, stream = _open(self.source)  # fail early with a typed error
        if len(container.streams.video) > 1:
            log.info("%s: %s", self.path, describe_streams(container, stream))
        container.close()

    # -- metadata ---------------------------------------------------------------------------
    def probe(self) -> VideoInfo:
        """Frame count and decoded duration by demuxing packets (no decoding)."""
        import av

        container, stream = _open(self.source)
        try:
            starts, last_duration = [], 0.0
            base = stream.time_base
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                ts = packet.pts if packet.pts is not None else packet.dts
                if ts is None:
                    starts.append(math.nan)
                    continue
                starts.append(float(ts * base))
                if packet.duration:
                    last_duration = float(packet.duration * base)
            codec = stream.codec_context.name
            width, height = stream.codec_context.width, stream.codec_context.height
            declared = _Declared.of(container, stream)
        except av.error.FFmpegError as err:
            raise CorruptVideo(self.path, f"demuxing failed ({err})") from None
        finally:
            container.close()
        if not starts:
            raise EmptyVideo(self.path, "the video stream has no frames")
        times = np.array(starts)
        if np.isnan(times).any():  # containers without timestamps (some AVI): assume the nominal rate
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            times = np.arange(len(times)) / rate
        times = np.sort(times) - np.min(times)
        if not last_duration:
            last_duration = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
        duration = float(times[-1] + last_duration)
        if duration <= 0:
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            duration = len(times) / rate
        declared.check(self.path, duration, len(times))
        rotation = self._first_frame_rotation()
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(self.path, codec, width, height, rotation, len(times), duration, len(times) / duration)

    def _first_frame_rotation(self) -> int:
        import av

        container, stream = _open(self.source)
        try:
            for frame in container.decode(stream):
                return _display_rotation(frame)
        except av.error.FFmpegError as err:
            raise CorruptVideo(self.path, f"decoding the first frame failed ({err})") from None
        finally:
            container.close()
        raise EmptyVideo(self.path, "the video stream has no decodable frames")

    # -- decoding ---------------------------------------------------------------------------
    def _decoded(self) -> Generator[tuple[int, float, Any], None, None]:
        """Yields (index, time, av.VideoFrame) in presentation order for the whole file."""
        import av

        container, stream = _open(self.source)
        stream.thread_type = "AUTO"
        self.stats.passes += 1
        first_ts = None
        nominal = float(stream.average_rate or stream.guessed_rate or 25)
        declared = _Declared.of(container, stream)
        index, t = -1, 0.0
        try:
            for frame in container.decode(stream):
                index += 1
                self.stats.frames_decoded += 1
                if frame.pts is None:
                    t = index / nominal
                else:
                    ts = float(frame.pts * stream.time_base)
                    first_ts = ts if first_ts is None else first_ts
                    t = ts - first_ts
                yield index, t, frame
        except av.error.FFmpegError as err:
            raise CorruptVideo(self.path, f"decoding failed after {index + 1} frames ({err})") from None
        finally:
            container.close()
        if index < 0:
            raise EmptyVideo(self.path, "the video stream has no decodable frames")
        declared.check(self.path, t + 1.0 / nominal, index + 1)

    def _to_array(self, frame: Any, size: Size | None) -> np.ndarray:
        self.stats.frames_converted += 1
        rotation = _display_rotation(frame)
        if size is not None and rotation in (90, 270):
            width, height = size[1], size[0]  # resize before turning, so the result is `size`
        elif size is not None:
            width, height = size
        else:
            width = height = 0
        if not width:
            picture = frame.to_ndarray(format="rgb24")
        else:
            picture = frame.reformat(width=width, height=height, format="rgb24", interpolation="BILINEAR").to_ndarray()
        if rotation:
            picture = np.ascontiguousarray(np.rot90(picture, k=rotation // 90))
        result: np.ndarray = picture
        return result

    def iter_frames(self, every: int = 1, size: Size | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
        """Yields (frame index, time, RGB uint8 [H, W, 3]) for frames 0, every, 2*every, ..."""
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        for index, t, frame in self._decoded():
            if index % every == 0:
                yield index, t, self._to_array(frame, size)

    def read_every(self, every: int, size: Size | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Frames 0, every, 2*every, ... stacked [N, H, W, 3], and their times [N]."""
        frames, times = [], []
        for _, t, picture in self.iter_frames(every, size):
            frames.append(picture)
            times.append(t)
        return np.stack(frames), np.asarray(times)

    def frame_at(self, t: float, size: Size | None = None) -> np.ndarray:
        """The frame shown at time t (seconds from the first frame)."""
        frames: np.ndarray = self.gather({"t": [t]}, size)["t"]
        first: np.ndarray = frames[0]
        return first

    def frames_between(self, start: float, end: float, count: int, size: Size | None = None) -> np.ndarray:
        """`count` evenly spaced frames of [start, end] (see `evenly_spaced_times`)."""
        times: list[float] = evenly_spaced_times(start, end, count).tolist()
        frames: np.ndarray = self.gather({"span": times}, size)["span"]
        return frames

    def gather(
        self, requests: Mapping[K, Sequence[float] | np.ndarray], size: Size | Mapping[K, Size | None] | None = None
    ) -> dict[K, np.ndarray]:
        """Frames at many times for many callers in one decoding pass (see `stream`), all at once."""
        return dict(self.stream(requests, size))

    def stream(
        self, requests: Mapping[K, Sequence[float] | np.ndarray], size: Size | Mapping[K, Size | None] | None = None
    ) -> Iterator[tuple[K, np.ndarray]]:
        """Frames at many times for many callers in one decoding pass, each key as soon as it is complete.

        `requests` maps a key (a node id, say) to the times it needs; `size` is one size for all or a
        size per key. Each key is yielded once, with its frames [len(times), H, W, 3], as soon as the
        decoder has passed its last time, so a caller holds only the frames of unfinished keys. A
        frame wanted by several keys at the same size is converted once.
        """
        sizes = size if isinstance(size, Mapping) else None
        keys = list(requests)  # wanted entries name keys by position: keys need not be orderable
        wanted = sorted((float(t), k, slot) for k, key in enumerate(keys) for slot, t in enumerate(requests[key]))
        out: dict[K, list[Any]] = {key: [None] * len(times) for key, times in requests.items()}
        missing = {key: len(times) for key, times in requests.items()}
        for key in [k for k, n in missing.items() if n == 0]:
            del missing[key]
            yield key, np.empty((0, 0, 0, 3), np.uint8)
        cursor = 0

        def give(frame: Any, limit: float) -> Iterator[tuple[K, np.ndarray]]:
            nonlocal cursor
            converted: dict[Size | None, np.ndarray] = {}
            while cursor < len(wanted) and wanted[cursor][0] < limit:
                _, k, slot = wanted[cursor]
                key = keys[k]
                key_size: Size | None = sizes.get(key) if sizes is not None else size  # type: ignore[assignment]
                if key_size not in converted:
                    converted[key_size] = self._to_array(frame, key_size)
                out[key][slot] = converted[key_size]
                cursor += 1
                missing[key] -= 1
                if missing[key] == 0:
                    del missing[key]
                    yield key, np.stack(out.pop(key))

        held = None  # the frame covering the times before the next frame's time
        decoded = self._decoded()
        try:
            for _, t, frame in decoded:
                if held is None:
                    yield from give(frame, t)  # times before the first frame get the first frame
                else:
                    yield from give(held, t)
                held = frame
                if cursor == len(wanted):
                    return  # nothing asked for after this point: stop decoding
        finally:
            decoded.close()
        if held is not None:
            yield from give(held, math.inf)
