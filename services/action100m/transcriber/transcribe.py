"""Soundtracks to transcripts, Whisper's windows batched across videos.

A CPU thread decodes each video's soundtrack, finds its speech and computes each window's log-mel
features; the shared loop (common.batching) runs full batches of windows, from any videos, through
Whisper, and a video's transcript is finished, and published, as soon as its last window is back.
A video without sound, or whose detector finds no speech, is finished at once with no transcript.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import numpy as np

from action100m.common.artifacts import Transcript
from action100m.common.batching import (
    VideoChunk,
    VideoEnded,
    VideoEvent,
    VideoFailed,
    VideoStarted,
    cross_video_batches,
)
from action100m.common.release.metadata import seconds_text
from action100m.common.release.transcripts import tidy_transcript
from action100m.common.video import VideoFile

from .audio import SAMPLE_RATE, Audio, read_audio
from .vad import VoiceActivity, Window, whole, windows
from .whisper import Spoken


class SpeechModel(Protocol):
    """What the loop needs of Whisper (whisper.WhisperEngine on transformers, ct2.CTranslate2Whisper)."""

    name: str
    languages: dict[int, str]  # the model's languages (by token id)

    def describe(self) -> dict[str, Any]: ...

    def features(self, audio: np.ndarray) -> np.ndarray: ...

    def transcribe(self, features: list[np.ndarray], language: str = "") -> list[tuple[str, list[Spoken]]]: ...


@dataclass
class TranscribeSettings:
    vad: bool = True
    language: str = ""  # "" detects it per window; the video's is the one most of its speech is in
    batch_size: int = 16  # throughput only


@dataclass
class TranscribeStats:
    audio_seconds: float = 0.0
    speech_seconds: float = 0.0
    windows: int = 0
    batches: int = 0
    decode_seconds: float = 0.0  # audio decoding, voice activity and features (the CPU thread)
    model_seconds: float = 0.0  # Whisper


@dataclass(frozen=True)
class Soundtrack:
    audio_seconds: float
    speech_seconds: float
    starts_at: float = 0.0  # where the audio starts on the video's clock
    video_seconds: float | None = None  # the video's length, when the file says it

    @property
    def end(self) -> float:
        """The last moment anything heard can be placed at: the video's end, else the audio's."""
        audio_end = self.starts_at + self.audio_seconds
        return min(audio_end, self.video_seconds) if self.video_seconds is not None else audio_end


@dataclass
class WindowJob:
    video_uid: str
    index: int
    window: Window
    features: np.ndarray


@dataclass
class _Session:
    uid: str
    model: str
    sound: Soundtrack
    results: dict[int, tuple[Window, str, list[Spoken]]] = field(default_factory=dict)

    def on_chunk(self, job: WindowJob) -> list[WindowJob]:
        return [job]

    def on_end(self, info: object) -> list[WindowJob]:
        return []

    def apply(self, job: WindowJob, output: tuple[str, list[Spoken]]) -> None:
        language, spoken = output
        self.results[job.index] = (job.window, language, spoken)
        job.features = np.empty(0)  # the batch is done with it

    def finish(self) -> Transcript:
        entries: list[dict[str, str]] = []
        votes: Counter[str] = Counter()
        last = Decimal(0)
        end = Decimal(f"{self.sound.end:.2f}")
        for index in sorted(self.results):
            window, language, spoken = self.results[index]
            votes[language] += len(window.audio)
            for segment in spoken:
                # on the video's clock, in the release's precision, in order and inside the video
                at = max(Decimal(f"{self.sound.starts_at + window.video_seconds(segment.start):.2f}"), last)
                if at >= end and self.sound.video_seconds is not None:
                    continue  # said after the video's last frame: not in the video
                at = min(at, end)
                entries.append({"time": seconds_text(at), "text": segment.text.strip()})
                last = at
        entries = tidy_transcript(entries)  # two segments at one time (after rounding) are one entry
        language = votes.most_common(1)[0][0] if entries else ""
        return Transcript(
            self.uid,
            self.model,
            entries or None,
            language=language,
            audio_seconds=self.sound.audio_seconds,
            speech_seconds=self.sound.speech_seconds,
            windows=len(self.results),
        )


def transcribe_videos(
    model: SpeechModel,
    videos: Sequence[tuple[str, VideoFile]],
    settings: TranscribeSettings,
    vad: VoiceActivity | None,
    stats: TranscribeStats | None = None,
    keep_going: Callable[[], None] = lambda: None,
) -> Iterator[tuple[str, Transcript | BaseException]]:
    """(video_uid, file) pairs to transcripts; yields each video's transcript or error as soon as it is done."""
    stats = stats if stats is not None else TranscribeStats()

    def run(jobs: list[WindowJob]) -> list[tuple[str, list[Spoken]]]:
        started = time.monotonic()
        outputs = model.transcribe([job.features for job in jobs], settings.language)
        stats.model_seconds += time.monotonic() - started
        stats.batches += 1
        stats.windows += len(jobs)
        return outputs

    def open_session(event: VideoStarted[Soundtrack]) -> _Session:
        return _Session(event.video_uid, model.name, event.info)

    yield from cross_video_batches(
        _soundtracks(model, videos, settings, vad, stats),
        open_session,
        run,
        settings.batch_size,
        keep_going=keep_going,
        queue_depth=2 * settings.batch_size,
        name="transcriber-decode",
        unit="windows",
    )


def _soundtracks(
    model: SpeechModel,
    videos: Sequence[tuple[str, VideoFile]],
    settings: TranscribeSettings,
    vad: VoiceActivity | None,
    stats: TranscribeStats,
) -> Iterator[VideoEvent]:
    """Per video, in order: started (its length and speech), one chunk per window, ended; or failed."""
    for uid, video in videos:
        started = time.monotonic()
        try:
            track = read_audio(video.path) or Audio(np.empty(0, np.float32))
            audio = track.samples
            if track.video_seconds is not None:  # what plays after the video's last frame is not heard
                audio = audio[: max(0, round((track.video_seconds - track.starts_at) * SAMPLE_RATE))]
            regions = (vad.speech(audio) if vad is not None and settings.vad else whole(audio)) if len(audio) else []
            cut = windows(audio, regions)
            speech = sum(end - start for start, end in regions) / SAMPLE_RATE
            sound = Soundtrack(len(audio) / SAMPLE_RATE, speech, track.starts_at, track.video_seconds)
            stats.audio_seconds += sound.audio_seconds
            stats.speech_seconds += sound.speech_seconds
            yield VideoStarted(uid, sound)
            for index, window in enumerate(cut):
                job = WindowJob(uid, index, window, model.features(window.audio))
                stats.decode_seconds += time.monotonic() - started
                yield VideoChunk(uid, job)
                started = time.monotonic()
            stats.decode_seconds += time.monotonic() - started
            yield VideoEnded(uid, None)
        except Exception as error:
            stats.decode_seconds += time.monotonic() - started
            yield VideoFailed(uid, error)
