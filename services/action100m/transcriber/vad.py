"""Where a soundtrack has speech: Silero VAD, whose model ships inside the `silero-vad` package
(no download, works offline), and the speech cut into Whisper's 30 s windows.

Speech regions are packed into windows of at most 30 s of speech each, the silence between them
left out, so silence costs nothing and yields no text; each window remembers where its pieces
lie in the video, to put Whisper's timestamps back on the video's clock.
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
        holds it, else the end of the piece before (a timestamp past the speech)."""
        sample = window_seconds * SAMPLE_RATE
        chosen = self.pieces[0]
        for piece in self.pieces:
            if piece.offset <= sample:
                chosen = piece
        inside = min(max(sample - chosen.offset, 0.0), chosen.end - chosen.start)
        return (chosen.start + inside) / SAMPLE_RATE


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
    packed: list[list[Piece]] = []
    used = limit  # no open window yet
    for start, end in regions:
        while start < end:
            if used >= limit:
                packed.append([])
                used = 0
            take = min(end - start, limit - used)
            packed[-1].append(Piece(start, start + take, used))
            used += take
            start += take
    return [Window(pieces, np.concatenate([audio[p.start : p.end] for p in pieces])) for pieces in packed]
