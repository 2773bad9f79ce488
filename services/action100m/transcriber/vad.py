"""Where a soundtrack has speech: Silero VAD, whose model ships inside the `silero-vad` package
(no download, works offline), and the speech cut into Whisper's 30 s windows.

Speech regions are packed into windows of at most 30 s of speech each, the silence between them
left out, so silence costs nothing and yields no text; a pause of a second or more between two regions
is kept as one second of silence, so that Whisper ends a segment there (two sentences 10 s apart are two
entries, each at its own time). Each window remembers where its pieces lie in the video, to put
Whisper's timestamps back on the video's clock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .audio import SAMPLE_RATE

WINDOW_SECONDS = 30.0  # Whisper's input length
CHUNK = 512  # samples the detector reads per step at 16 kHz (32 ms)
# The detector reads a long soundtrack as up to 32 parallel streams of at least a minute each, one
# batched step for all: 6x fewer model calls on an hour (its state restarts at each stream's start,
# so a region that crosses the seam may start a chunk or two later; the regions are otherwise
# the package's own, from its `get_speech_timestamps_from_probs`).
STREAM_SECONDS = 60
MAX_STREAMS = 32
# A region shorter than this is a click or a breath, not speech Whisper can read.
MIN_SPEECH_SECONDS = 0.25
PAUSE_SECONDS = 1.0  # silence this long between two regions is a pause ...
KEPT_PAUSE_SECONDS = 1.0  # ... and this much of it stays in the window (less, and tiny.en runs on)


@dataclass(frozen=True)
class Piece:
    """Samples [start, end) of the soundtrack, at `offset` samples into its window."""

    start: int
    end: int
    offset: int


@dataclass
class Window:
    """Up to 30 s of a video's speech: its pieces in order, and the audio Whisper reads."""

    pieces: list[Piece]
    audio: np.ndarray

    def video_seconds(self, window_seconds: float) -> float:
        """A time inside the window (Whisper's timestamp) on the video's clock: in the piece that
        holds it; in a kept pause, the start of the piece after it (a segment that starts in a
        pause starts with the speech after it); past the speech, the end of the last piece."""
        sample = window_seconds * SAMPLE_RATE
        for piece in self.pieces:
            if sample < piece.offset:
                return piece.start / SAMPLE_RATE
            if sample < piece.offset + piece.end - piece.start:
                return (piece.start + max(sample - piece.offset, 0.0)) / SAMPLE_RATE
        return self.pieces[-1].end / SAMPLE_RATE


class VoiceActivity:
    """Silero VAD, loaded once per process; its model keeps state between chunks, so one soundtrack at a time."""

    def __init__(self) -> None:
        import warnings

        import torch

        threads = torch.get_num_threads()
        from silero_vad import load_silero_vad  # its import sets torch to one thread, for the whole process

        torch.set_num_threads(threads)
        with warnings.catch_warnings():  # torch 2.14 deprecates torch.jit.load, which the package uses
            warnings.simplefilter("ignore", FutureWarning)
            self._model = load_silero_vad(onnx=False)
        self._lock = threading.Lock()

    def speech(self, audio: np.ndarray, streams: int | None = None) -> list[tuple[int, int]]:
        """[start, end) sample ranges of speech, in order (`streams`: as `probabilities`)."""
        from silero_vad import get_speech_timestamps_from_probs

        found = get_speech_timestamps_from_probs(
            self.probabilities(audio, streams),
            sampling_rate=SAMPLE_RATE,
            min_speech_duration_ms=int(MIN_SPEECH_SECONDS * 1000),
            audio_length_samples=len(audio),
        )
        return [(int(region["start"]), int(region["end"])) for region in found]

    def probabilities(self, audio: np.ndarray, streams: int | None = None) -> list[float]:
        """The speech probability of every 32 ms chunk, the soundtrack read as `streams` parallel
        streams (default: one per minute, at most MAX_STREAMS)."""
        import torch

        chunks = -(-len(audio) // CHUNK)
        if streams is None:
            streams = max(1, min(MAX_STREAMS, len(audio) // int(STREAM_SECONDS * SAMPLE_RATE)))
        steps = -(-chunks // streams)
        padded = torch.zeros(streams * steps * CHUNK)
        padded[: len(audio)] = torch.from_numpy(audio)
        grid = padded.view(streams, steps * CHUNK)
        with self._lock, torch.inference_mode():
            self._model.reset_states()
            steps_out = [self._model(grid[:, i * CHUNK : (i + 1) * CHUNK], SAMPLE_RATE) for i in range(steps)]
        return [float(p) for p in torch.cat(steps_out, dim=1).reshape(-1)[:chunks]]


def whole(audio: np.ndarray) -> list[tuple[int, int]]:
    """The whole soundtrack as one region (no voice activity detection)."""
    return [(0, len(audio))] if len(audio) else []


def windows(audio: np.ndarray, regions: list[tuple[int, int]]) -> list[Window]:
    """The regions packed in order into windows of at most 30 s; a longer region is cut in 30 s pieces."""
    limit = int(WINDOW_SECONDS * SAMPLE_RATE)
    pause, kept = int(PAUSE_SECONDS * SAMPLE_RATE), int(KEPT_PAUSE_SECONDS * SAMPLE_RATE)
    packed: list[list[Piece]] = []
    used = limit  # no open window yet
    for start, end in regions:
        if packed and packed[-1] and start - packed[-1][-1].end >= pause and used + kept < limit:
            used += kept  # the pause before this region, as silence in the window
        while start < end:
            if used >= limit:
                packed.append([])
                used = 0
            take = min(end - start, limit - used)
            packed[-1].append(Piece(start, start + take, used))
            used += take
            start += take
    return [_window(audio, pieces) for pieces in packed]


def _window(audio: np.ndarray, pieces: list[Piece]) -> Window:
    """The window's audio: each piece at its offset, silence in the pauses kept between them."""
    last = pieces[-1]
    samples = np.zeros(last.offset + last.end - last.start, np.float32)
    for piece in pieces:
        samples[piece.offset : piece.offset + piece.end - piece.start] = audio[piece.start : piece.end]
    return Window(pieces, samples)
