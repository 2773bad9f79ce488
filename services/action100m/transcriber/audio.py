"""A video's soundtrack as 16 kHz mono float32 samples, Whisper's input rate, decoded with PyAV.

A video without an audio stream has no soundtrack (None): not an error, the video simply has no
transcript. An hour of audio is 57.6 M samples (230 MB as float32), held while the video's speech
windows are cut from it.
"""

from __future__ import annotations

import os

import numpy as np

from action100m.common.video import CorruptVideo, EmptyVideo, VideoNotFound

SAMPLE_RATE = 16_000


def read_audio(path: str | os.PathLike[str]) -> np.ndarray | None:
    """The main audio stream of the file as mono float32 at SAMPLE_RATE; None without one."""
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
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
        except av.error.FFmpegError as err:
            raise CorruptVideo(path, f"audio stream {stream.index} breaks while decoding ({err})") from None
    if not chunks:
        return None
    return np.concatenate(chunks).astype(np.float32, copy=False)
