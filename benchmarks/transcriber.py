"""The transcriber's real-time factor (audio seconds per wall second) on speech that is half silence.

Soundtracks are sentences said by Debian's espeak-ng (apt-get install espeak-ng) with as much
silence between them, written as 16 kHz WAV files (the transcriber reads any container). Rows,
all from the same run and the same clips (tiny random Whisper on the CPU by default):
  one at a time      each clip its own call: its windows batched alone           -> rtf
  batched            every clip in one call: windows of all clips share batches   -> rtf, over one at a time
  no VAD             batched, voice activity detection off: silence goes through Whisper too
  length sweep       one clip of each length, batched: seconds of wall per minute of audio
Cost grows with the speech, not the audio: Whisper runs on 30 s windows of speech only, and the
detector's cost is linear in the audio (a few ms per minute).

    python benchmarks/transcriber.py [--json] [--clips 8] [--minutes 1] [--model DIR_OR_HUB_ID --device cuda]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from report import emit, parser

from action100m.common.video import VideoFile
from action100m.devtools.synthetic_video import spoken
from action100m.devtools.tiny_models import build_tiny_models
from action100m.transcriber.audio import SAMPLE_RATE
from action100m.transcriber.transcribe import TranscribeSettings, TranscribeStats, transcribe_videos
from action100m.transcriber.vad import VoiceActivity
from action100m.transcriber.whisper import WhisperEngine

SENTENCES = (
    "Now tighten the chain to five newton metres.",
    "Check that the wheel turns freely before you ride.",
    "Pour the batter into the pan and spread it evenly.",
    "Cut the board along the line you marked with the pencil.",
)


def half_silence(seconds: float, sentences: list[np.ndarray]) -> np.ndarray:
    """Sentences, each followed by as much silence as it lasts, to `seconds` of audio."""
    parts, total, index = [], 0, 0
    while total < seconds * SAMPLE_RATE:
        said = sentences[index % len(sentences)]
        parts += [said, np.zeros_like(said)]
        total += 2 * len(said)
        index += 1
    return np.concatenate(parts)[: int(seconds * SAMPLE_RATE)]


def write_wav(path: Path, audio: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())
    return path


def timed(engine, vad, clips, settings) -> tuple[float, TranscribeStats]:
    stats = TranscribeStats()
    started = time.perf_counter()
    for _, result in transcribe_videos(engine, clips, settings, vad, stats):
        if isinstance(result, BaseException):
            raise result
    return time.perf_counter() - started, stats


def measured(stats: TranscribeStats, wall: float) -> dict[str, float]:
    return {
        "audio_s": stats.audio_seconds,
        "speech_s": stats.speech_seconds,
        "windows": stats.windows,
        "batches": stats.batches,
        "wall_s": wall,
        "rtf": stats.audio_seconds / wall,
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=8, help="clips of the batching rows")
    p.add_argument("--minutes", type=float, default=1.0, help="length of each of those clips")
    p.add_argument("--sweep", type=float, nargs="*", default=[1.0, 2.0, 4.0], help="lengths (minutes) for cost growth")
    p.add_argument("--model", default=None, help="Whisper dir or hub id (default: a tiny random Whisper)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=16, help="windows per Whisper batch")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: 440 (a real model), 48 (tiny)")
    args = p.parse_args()

    sentences = [spoken(text) for text in SENTENCES]
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(build_tiny_models(Path(tmp) / "models", only=["whisper"])["whisper"])
        max_new = args.max_new_tokens or (440 if args.model else 48)
        engine = WhisperEngine(model, device=args.device, max_new_tokens=max_new)
        vad = VoiceActivity()
        settings = TranscribeSettings(batch_size=args.batch_size)
        clip_audio = half_silence(args.minutes * 60, sentences)
        clips = [
            (f"clip{i}", VideoFile(str(write_wav(Path(tmp) / f"clip{i}.wav", clip_audio)))) for i in range(args.clips)
        ]
        timed(engine, vad, clips[:1], settings)  # warm-up: first calls allocate

        rows = []
        one_wall = 0.0
        one_stats = TranscribeStats()
        for clip in clips:
            wall, stats = timed(engine, vad, [clip], settings)
            one_wall += wall
            one_stats.audio_seconds += stats.audio_seconds
            one_stats.speech_seconds += stats.speech_seconds
            one_stats.windows += stats.windows
            one_stats.batches += stats.batches
        batched_wall, batched = timed(engine, vad, clips, settings)
        plain_wall, plain = timed(engine, None, clips, TranscribeSettings(vad=False, batch_size=args.batch_size))
        base = {"clips": args.clips, "minutes_each": args.minutes}
        for path, wall, stats in (
            ("one at a time", one_wall, one_stats),
            ("batched", batched_wall, batched),
            ("no VAD", plain_wall, plain),
        ):
            speed = (stats.audio_seconds / wall) / (one_stats.audio_seconds / one_wall)
            rows.append({**base, "path": path, **measured(stats, wall), "rtf_over_one_at_a_time": speed})
        for minutes in args.sweep:
            path = write_wav(Path(tmp) / f"long-{minutes}.wav", half_silence(minutes * 60, sentences))
            wall, stats = timed(engine, vad, [("long", VideoFile(str(path)))], settings)
            rows.append(
                {
                    "clips": 1,
                    "minutes_each": minutes,
                    "path": "length sweep",
                    **measured(stats, wall),
                    "wall_s_per_audio_minute": wall / minutes,
                    "vad_and_decode_s": stats.decode_seconds,
                }
            )
    notes = [
        f"model: {model if args.model else 'tiny random Whisper'} on {engine.device} ({engine.dtype}), "
        f"{max_new} new tokens at most per window, {args.batch_size} windows per batch, "
        f"{torch.get_num_threads()} torch thread(s), {os.cpu_count()} CPUs",
        "rtf: audio seconds transcribed per wall second (higher is better); audio is half silence",
    ]
    emit(rows, args.json, notes)


if __name__ == "__main__":
    main()
