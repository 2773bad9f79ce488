"""Decoding and preprocessing overlapped with encoding, windows batched across videos.

A CPU thread decodes the videos of a request one after another (every 4th frame, resized by the
decoder) and preprocesses chunks of sampled frames; the shared loop (common.batching) hands the
chunks to the caller's thread, where each video's session moves its chunk to the device once,
cuts windows out of a frame buffer that lives on the device, and adds each encoded window's
per-frame features into the video's running sums, on the device. Full batches of windows (from
any video) are encoded together. Each sampled frame is decoded, preprocessed and copied to the
device once although 8 windows use it; features leave the device once per video, as soon as its
last window is encoded.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from action100m.common import paper
from action100m.common.artifacts import Embeddings
from action100m.common.batching import (
    VideoChunk,
    VideoEnded,
    VideoEvent,
    VideoFailed,
    VideoStarted,
    cross_video_batches,
)
from action100m.common.video import VideoReader, VideoSource

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
    frame_stride: int = paper.FRAME_STRIDE
    window_frames: int = paper.WINDOW_FRAMES
    window_stride: int = paper.WINDOW_STRIDE
    windows_per_batch: int = 8  # throughput only: never changes the features
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
class EmbeddedVideo:
    embeddings: Embeddings
    windows: int
    frames_decoded: int


@dataclass(frozen=True)
class VideoOpened:
    fps: float
    duration: float


@dataclass(frozen=True)
class FrameChunk:
    pixels: torch.Tensor  # preprocessed sampled frames [k, 3, crop, crop], on the CPU
    times: list[float]
    frames_decoded: int  # decoded so far in this video


@dataclass(frozen=True)
class Window:
    """One encoder window: sampled frames [start, start + length) of a video, padded past its end."""

    video_uid: str
    start: int
    valid: int  # frames of the window that are the video's own (the rest repeat its last frame)
    pixels: torch.Tensor


class _EmbedSession:
    """One video: its sampled frames in a buffer on the device, and running sums of per-frame features."""

    def __init__(self, uid: str, opened: VideoOpened, encoder: FrameEncoder, settings: EmbedSettings):
        self.uid, self.opened, self.encoder, self.settings = uid, opened, encoder, settings
        self.buffer: torch.Tensor | None = None  # sampled frames [buffer_start, have) on the device
        self.buffer_start = 0
        self.have = 0
        self.times: list[float] = []
        self.next_start: float = 0  # the next full window's first frame (inf once the last is cut)
        self.ended = False
        self.sums: torch.Tensor | None = None
        self.counts: torch.Tensor | None = None
        self.frames_decoded = 0
        self.windows = 0

    def on_chunk(self, chunk: FrameChunk) -> list[Window]:
        pixels = chunk.pixels.to(self.encoder.device, non_blocking=True)
        self.buffer = pixels if self.buffer is None else torch.cat([self.buffer, pixels])
        self.have += len(chunk.times)
        self.times.extend(chunk.times)
        self.frames_decoded = chunk.frames_decoded
        return self._cut()

    def on_end(self, frames_decoded: int) -> list[Window]:
        self.ended = True
        self.frames_decoded = frames_decoded
        return self._cut()

    def _cut(self) -> list[Window]:
        w = self.settings.window_frames
        windows = [self._window(start, w) for start in self._ready_starts()]
        self._trim()
        self.windows += len(windows)
        return windows

    def _ready_starts(self) -> list[int]:
        """Window starts that can be cut now: full windows as frames arrive, the tail and padding at the end."""
        ready = []
        w, s = self.settings.window_frames, self.settings.window_stride
        while self.next_start + w <= self.have:
            ready.append(int(self.next_start))
            self.next_start += s
        if self.ended and self.have > 0 and self.next_start != math.inf:
            issued = ready[-1] if ready else (int(self.next_start) - s if self.next_start > 0 else None)
            final = window_starts(self.have, w, s)[-1]
            if issued is None or issued < final:
                ready.append(final)
            self.next_start = math.inf  # nothing after the last window
        return ready

    def _window(self, start: int, length: int) -> Window:
        """Frames [start, start + length) from the device buffer, the last frame repeated past the end."""
        assert self.buffer is not None
        local = start - self.buffer_start
        frames = self.buffer[local : local + length]
        valid = len(frames)
        if valid < length:
            pad = frames[-1:].expand(length - valid, *frames.shape[1:])
            frames = torch.cat([frames, pad])
        return Window(self.uid, start, valid, frames)

    def _trim(self) -> None:
        """Drops buffered frames no future window needs (the tail window may reach back 64 frames)."""
        upcoming = self.have if self.next_start == math.inf else int(self.next_start)
        keep_from = max(min(upcoming, self.have - self.settings.window_frames), self.buffer_start)
        if self.buffer is not None and keep_from > self.buffer_start:
            self.buffer = self.buffer[keep_from - self.buffer_start :]
            self.buffer_start = keep_from

    def apply(self, window: Window, features: torch.Tensor) -> None:
        """Adds one window's per-frame features [64, D] into the running sums, on the device."""
        features = features[: window.valid]
        end = window.start + len(features)
        if self.sums is None or self.counts is None or self.sums.shape[0] < end:
            grow = max(end, 2 * (0 if self.sums is None else self.sums.shape[0]), 256)
            sums = torch.zeros(grow, features.shape[1], device=features.device, dtype=torch.float32)
            counts = torch.zeros(grow, device=features.device, dtype=torch.float32)
            if self.sums is not None and self.counts is not None:
                sums[: self.sums.shape[0]] = self.sums
                counts[: self.counts.shape[0]] = self.counts
            self.sums, self.counts = sums, counts
        self.sums[window.start : end] += features
        self.counts[window.start : end] += 1

    def finish(self) -> EmbeddedVideo:
        assert self.sums is not None and self.counts is not None, f"{self.uid}: no window was encoded"
        n = self.have
        mean = (self.sums[:n] / self.counts[:n, None]).to(torch.float16).cpu().numpy()
        embeddings = Embeddings(
            features=mean,
            times=np.asarray(self.times, dtype=np.float64),
            fps=self.opened.fps,
            duration=self.opened.duration,
            frame_stride=self.settings.frame_stride,
            model=self.encoder.name,
        )
        return EmbeddedVideo(embeddings, self.windows, self.frames_decoded)


def embed_videos(
    encoder: FrameEncoder,
    videos: Sequence[tuple[str, VideoSource]],
    settings: EmbedSettings = EmbedSettings(),
    stats: EmbedStats | None = None,
    keep_going: Callable[[], None] = lambda: None,
) -> Iterator[tuple[str, EmbeddedVideo | BaseException]]:
    """Embeds (video_uid, local path) pairs; yields each video's result or error as soon as it is done."""
    stats = stats if stats is not None else EmbedStats()
    started = time.monotonic()

    def encode(windows: list[Window]) -> Sequence[torch.Tensor]:
        t0 = time.monotonic()
        features = encoder.encode(torch.stack([w.pixels for w in windows]))
        if encoder.device.type == "cuda":
            torch.cuda.synchronize(encoder.device)
        stats.encode_seconds += time.monotonic() - t0
        stats.batches += 1
        stats.windows += len(windows)
        return features.unbind(0)

    def open_session(event: VideoStarted[VideoOpened]) -> _EmbedSession:
        return _EmbedSession(event.video_uid, event.info, encoder, settings)

    yield from cross_video_batches(
        _decode_all(encoder, videos, settings, stats),
        open_session,
        encode,
        settings.windows_per_batch,
        keep_going=keep_going,
        queue_depth=settings.queue_chunks,
        name="embedder-decode",
        unit="windows",
    )
    stats.wall_seconds += time.monotonic() - started


def _decode_all(
    encoder: FrameEncoder, videos: Sequence[tuple[str, VideoSource]], settings: EmbedSettings, stats: EmbedStats
) -> Iterator[VideoEvent]:
    """Decodes and preprocesses the videos in order: started, chunks..., ended (or failed) per video."""
    for uid, path in videos:
        t0 = time.monotonic()
        try:
            reader = VideoReader(path)
            info = reader.probe()
            yield VideoStarted(uid, VideoOpened(info.fps, info.duration))
            size = encoder.decode_size(info.width, info.height)
            frames: list[np.ndarray] = []
            times: list[float] = []
            for _, t, picture in reader.iter_frames(settings.frame_stride, size):
                frames.append(picture)
                times.append(t)
                if len(frames) == settings.chunk_frames:
                    chunk = FrameChunk(encoder.preprocess(np.stack(frames)), times, reader.stats.frames_decoded)
                    stats.decode_seconds += time.monotonic() - t0
                    yield VideoChunk(uid, chunk)
                    t0 = time.monotonic()
                    frames, times = [], []
            if frames:
                chunk = FrameChunk(encoder.preprocess(np.stack(frames)), times, reader.stats.frames_decoded)
                stats.decode_seconds += time.monotonic() - t0
                yield VideoChunk(uid, chunk)
                t0 = time.monotonic()
            stats.frames_decoded += reader.stats.frames_decoded
            stats.frames_sampled += reader.stats.frames_converted
            yield VideoEnded(uid, reader.stats.frames_decoded)
        except Exception as error:
            stats.decode_seconds += time.monotonic() - t0
            yield VideoFailed(uid, error)
