"""A video's soundtrack as 16 kHz mono float32 samples, Whisper's input rate, decoded with PyAV.

A video without an audio stream has no soundtrack (None): not an error, the video simply has no
transcript. An hour of audio is 57.6 M samples (230 MB as float32), held while the video's speech
windows are cut from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from action100m.common.video import CorruptVideo, EmptyVideo, VideoNotFound

SAMPLE_RATE = 16_000


class BrokenAudio(CorruptVideo):
    """A soundtrack that decodes to samples that are not numbers (NaN, infinite): a broken file or
    decoder. Its video fails with the reason; read as it is, Whisper would hear noise (or fail the
    batch it shares with other videos)."""


@dataclass(frozen=True)
class Audio:
    """A soundtrack on the video's clock."""

    samples: np.ndarray  # mono float32 at SAMPLE_RATE
    starts_at: float = 0.0  # where its first sample plays on the video's clock, in seconds
    video_seconds: float | None = None  # the video's length where the file says it (nothing is heard past it)


def read_audio(path: str | os.PathLike[str]) -> Audio | None:
    """The main audio stream of the file as mono float32 at SAMPLE_RATE, placed on the video's
    clock (an audio stream that starts 3 s after the video starts 3 s in); None without one."""
    import av

    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoNotFound(path, "no such file")
    if os.path.getsize(path) == 0:
        raise EmptyVideo(path, "file is empty (0 bytes)")
    try:
        container = av.open(path, mode="r")
    except (av.error.FFmpegError, OSError) as err:
        raise CorruptVideo(
            path,
            f"not a readable video container: corrupt, truncated or not a video ({getattr(err, 'strerror', None) or err})",
        ) from None
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.best("audio") or container.streams.audio[0]
        index = stream.index  # read while the container is open
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        first: float | None = None
        try:
            for frame in container.decode(stream):
                if first is None and frame.time is not None:
                    first = float(frame.time)
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
        except av.error.FFmpegError as err:
            raise CorruptVideo(path, f"audio stream {index} breaks while decoding ({err})") from None
        video_start, video_seconds = _video_clock(container)
    if not chunks:
        return None
    samples = np.concatenate(chunks).astype(np.float32, copy=False)
    _check_finite(path, index, samples)
    offset = (first or 0.0) - video_start
    if offset < 0:  # sound before the video's first frame (an encoder's priming): not part of the video
        samples, offset = samples[round(-offset * SAMPLE_RATE) :], 0.0
    return Audio(samples, offset, video_seconds)


def _video_clock(container: Any) -> tuple[float, float | None]:
    """Where the main video stream starts (seconds; 0 without one) and how long it lasts, if known."""
    if not container.streams.video:
        return 0.0, container.duration / 1e6 if container.duration else None
    video = container.streams.video[0]
    start = float(video.start_time * video.time_base) if video.start_time is not None else 0.0
    if video.duration is not None and video.time_base is not None:
        return start, float(video.duration * video.time_base)
    return start, container.duration / 1e6 if container.duration else None


def _check_finite(path: str, index: int, samples: np.ndarray) -> None:
    bad = ~np.isfinite(samples)
    if bad.any():
        first = int(np.argmax(bad)) / SAMPLE_RATE
        raise BrokenAudio(
            path,
            f"audio stream {index} has {int(bad.sum())} samples that are not numbers (NaN or infinite), the first "
            f"at {first:.2f} s: a broken file or decoder",
        )
