"""Decoding and preprocessing overlapped with encoding, windows batched across videos.

A CPU thread decodes the videos of a request one after another (every 4th frame, resized by the
decoder) and preprocesses chunks of sampled frames; a bounded queue hands the chunks to the caller's
thread, which moves each chunk to the device once, cuts windows out of a per-video frame buffer
that lives on the device, encodes full batches of windows (from any video), and adds each window's
per-frame features into the video's running sums, on the device. Each sampled frame is decoded,
preprocessed and copied to the device once although 8 windows use it; features leave the device
once per video.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from action100m.common.artifacts import Embeddings
from action100m.common.prefetch import prefetched
from action100m.common.stage import VideoFailed
from action100m.common.video import VideoReader

from .windows import window_starts

log = logging.getLogger("action100m.embedder")


class FrameEncoder(Protocol):
    """What the pipeline needs of an encoder (VJepa2Encoder in production)."""

    name: str
    device: torch.device

    def decode_size(self, width: int, height: int) -> tuple[int, int]: ...

    def preprocess(self, frames: np.ndarray) -> torch.Tensor: ...

    def encode(self, windows: torch.Tensor) -> torch.Tensor: ...


@dataclass
class EmbedSettings:
    frame_stride: int = 4
    window_frames: int = 64
    window_stride: int = 8
    windows_per_batch: int = 8
    chunk_frames: int = 32  # sampled frames preprocessed together
    queue_chunks: int = 8  # bound of the decode -> encode queue


@dataclass
class EmbedStats:
    decode_seconds: float = 0.0  # decoding + preprocessing, on the CPU thread
    encode_seconds: float = 0.0  # model time, on the caller's thread
    wall_seconds: float = 0.0
    frames_decoded: int = 0
    frames_sampled: int = 0
    windows: int = 0
    batches: int = 0


@dataclass
class _VideoState:
    uid: str
    fps: float = 0.0
    duration: float = 0.0
    buffer: torch.Tensor | None = None  # sampled frames [buffer_start, have) on the device
    buffer_start: int = 0
    have: int = 0
    times: list[float] = field(default_factory=list)
    starts_done: int = 0  # windows issued, in window_starts order
    next_start: int = 0
    pending_windows: int = 0
    ended: bool = False
    sums: torch.Tensor | None = None
    counts: torch.Tensor | None = None
    frames_decoded: int = 0
    windows: int = 0


@dataclass
class EmbeddedVideo:
    embeddings: Embeddings
    windows: int
    frames_decoded: int


def embed_videos(
    encoder: FrameEncoder,
    videos: Sequence[tuple[str, str]],
    settings: EmbedSettings = EmbedSettings(),
    stats: EmbedStats | None = None,
    check_alive: Callable[[], None] = lambda: None,
) -> dict[str, EmbeddedVideo | BaseException]:
    """Embeds (video_uid, local path) pairs; each value is the video's result or its error."""
    stats = stats if stats is not None else EmbedStats()
    started = time.monotonic()
    results: dict[str, EmbeddedVideo | BaseException] = {}
    states: dict[str, _VideoState] = {}
    batch: list[tuple[_VideoState, int, torch.Tensor]] = []

    def flush() -> None:
        if not batch:
            return
        check_alive()
        t0 = time.monotonic()
        features = encoder.encode(torch.stack([w for _, _, w in batch]))
        for (state, start, _), window_features in zip(batch, features, strict=True):
            valid = min(settings.window_frames, state.have - start) if state.ended else settings.window_frames
            _accumulate(state, start, window_features[:valid])
            state.pending_windows -= 1
        if encoder.device.type == "cuda":
            torch.cuda.synchronize(encoder.device)
        stats.encode_seconds += time.monotonic() - t0
        stats.batches += 1
        batch.clear()
        finish_ready()

    def finish_ready() -> None:
        for state in list(states.values()):
            if state.ended and state.pending_windows == 0:
                results[state.uid] = EmbeddedVideo(
                    _finish(state, settings, encoder.name), state.windows, state.frames_decoded
                )
                del states[state.uid]

    for item in prefetched(_decode_all(encoder, videos, settings, stats), settings.queue_chunks, "embedder-decode"):
        if isinstance(item, VideoFailed):
            results[item.video_uid] = item.error
            states.pop(item.video_uid, None)
            batch[:] = [entry for entry in batch if entry[0].uid != item.video_uid]
            continue
        kind, uid, payload = item
        if kind == "start":
            states[uid] = _VideoState(uid, fps=payload["fps"], duration=payload["duration"])
            continue
        state = states[uid]
        if kind == "frames":
            pixels, times, decoded = payload
            _append(state, pixels.to(encoder.device, non_blocking=True), times)
            state.frames_decoded = decoded
        elif kind == "end":
            state.ended = True
        for start in _ready_windows(state, settings):
            batch.append((state, start, _window(state, start, settings.window_frames)))
            state.pending_windows += 1
            state.windows += 1
            stats.windows += 1
            if len(batch) >= settings.windows_per_batch:
                flush()
        _trim(state, settings)
        if kind == "end":
            finish_ready()  # a video whose windows were all encoded already
    flush()
    stats.wall_seconds += time.monotonic() - started
    return results


def _decode_all(encoder, videos, settings: EmbedSettings, stats: EmbedStats) -> Iterator:
    """Decodes and preprocesses the videos in order: start, frames..., end (or VideoFailed) per video."""
    for uid, path in videos:
        t0 = time.monotonic()
        try:
            reader = VideoReader(path)
            info = reader.probe()
            yield "start", uid, {"fps": info.fps, "duration": info.duration}
            size = encoder.decode_size(info.width, info.height)
            frames, times = [], []
            for _, t, picture in reader.iter_frames(settings.frame_stride, size):
                frames.append(picture)
                times.append(t)
                if len(frames) == settings.chunk_frames:
                    pixels = encoder.preprocess(np.stack(frames))
                    stats.decode_seconds += time.monotonic() - t0
                    yield "frames", uid, (pixels, times, reader.stats.frames_decoded)
                    t0 = time.monotonic()
                    frames, times = [], []
            if frames:
                pixels = encoder.preprocess(np.stack(frames))
                stats.decode_seconds += time.monotonic() - t0
                yield "frames", uid, (pixels, times, reader.stats.frames_decoded)
                t0 = time.monotonic()
            stats.frames_decoded += reader.stats.frames_decoded
            stats.frames_sampled += reader.stats.frames_converted
            yield "end", uid, None
        except Exception as error:  # noqa: BLE001 - the video fails, the others go on
            stats.decode_seconds += time.monotonic() - t0
            yield VideoFailed(uid, error)


def _append(state: _VideoState, pixels: torch.Tensor, times: list[float]) -> None:
    state.buffer = pixels if state.buffer is None else torch.cat([state.buffer, pixels])
    state.have += len(times)
    state.times.extend(times)


def _ready_windows(state: _VideoState, settings: EmbedSettings) -> list[int]:
    """Window starts that can be cut now: full windows as frames arrive, the tail and padding at the end."""
    ready = []
    w, s = settings.window_frames, settings.window_stride
    while state.next_start + w <= state.have:
        ready.append(state.next_start)
        state.next_start += s
    if state.ended and state.have > 0:
        issued = ready[-1] if ready else (state.next_start - s if state.next_start > 0 else None)
        final = window_starts(state.have, w, s)[-1]
        if issued is None or issued < final:
            ready.append(final)
            state.next_start = math.inf  # nothing after the last window
    return ready


def _window(state: _VideoState, start: int, length: int) -> torch.Tensor:
    """Frames [start, start + length) from the device buffer, the last frame repeated past the end."""
    local = start - state.buffer_start
    frames = state.buffer[local : local + length]
    if len(frames) < length:
        pad = frames[-1:].expand(length - len(frames), *frames.shape[1:])
        frames = torch.cat([frames, pad])
    return frames


def _trim(state: _VideoState, settings: EmbedSettings) -> None:
    """Drops buffered frames no future window needs (the tail window may reach back 64 frames)."""
    keep_from = min(
        state.next_start if state.next_start != math.inf else state.have, state.have - settings.window_frames
    )
    keep_from = max(keep_from, state.buffer_start)
    if state.buffer is not None and keep_from > state.buffer_start:
        state.buffer = state.buffer[keep_from - state.buffer_start :]
        state.buffer_start = keep_from


def _accumulate(state: _VideoState, start: int, features: torch.Tensor) -> None:
    end = start + len(features)
    if state.sums is None or state.sums.shape[0] < end:
        grow = max(end, 2 * (0 if state.sums is None else state.sums.shape[0]), 256)
        sums = torch.zeros(grow, features.shape[1], device=features.device, dtype=torch.float32)
        counts = torch.zeros(grow, device=features.device, dtype=torch.float32)
        if state.sums is not None:
            sums[: state.sums.shape[0]] = state.sums
            counts[: state.counts.shape[0]] = state.counts
        state.sums, state.counts = sums, counts
    state.sums[start:end] += features
    state.counts[start:end] += 1


def _finish(state: _VideoState, settings: EmbedSettings, model: str) -> Embeddings:
    n = state.have
    mean = (state.sums[:n] / state.counts[:n, None]).to(torch.float16).cpu().numpy()
    return Embeddings(
        features=mean,
        times=np.asarray(state.times, dtype=np.float64),
        fps=state.fps,
        duration=state.duration,
        frame_stride=settings.frame_stride,
        model=model,
    )
