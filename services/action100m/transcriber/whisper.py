"""Whisper through transformers: one encoder pass per batch of windows, the language read from it
(unless given), then generation with timestamps; bf16 on a GPU. (`ct2.py` runs the same contract
on CTranslate2; `timed_segments` reads what either generates.)

Why transformers: the transcriber shares torch, PyAV and the model cache with the embedder and
the captioner, batches windows of many videos in one `generate`, and runs the same code on the CPU
at tiny size (README, "The transcriber" gives the measurements behind the choice).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

from action100m.common.devices import pick_device, pick_dtype

from .audio import SAMPLE_RATE

TIME_PRECISION = 0.02  # seconds per timestamp token


@dataclass(frozen=True)
class Spoken:
    """One timed segment of a window: seconds into the window, and its text."""

    start: float
    text: str


def timed_segments(
    ids: Sequence[int], timestamp_begin: int, eos: int, decode: Callable[[list[int]], str]
) -> list[Spoken]:
    """The timed segments of one generated sequence, as Whisper writes them whatever runs it: text
    between a start timestamp and the next timestamp; text without any timestamp counts from the
    window's start."""
    spoken: list[Spoken] = []
    start: float | None = None
    text: list[int] = []

    def close() -> None:
        words = decode(text).strip()
        if words:
            spoken.append(Spoken(start or 0.0, words))
        text.clear()

    for token in ids:
        if token >= timestamp_begin:
            if text:
                close()
            start = (token - timestamp_begin) * TIME_PRECISION
        elif token == eos:
            break
        else:
            text.append(token)
    if text:
        close()
    return spoken


class WhisperEngine:
    def __init__(self, model: str, device: str = "auto", dtype: str = "auto", max_new_tokens: int = 440):
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self.name = model
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.processor = WhisperProcessor.from_pretrained(model)
        self.model = WhisperForConditionalGeneration.from_pretrained(model, dtype=self.dtype).to(self.device).eval()
        self.max_new_tokens = max_new_tokens
        config = self.model.generation_config
        self.timestamp_begin = int(config.no_timestamps_token_id) + 1
        self.languages = {int(i): str(token)[2:-2] for token, i in config.lang_to_id.items()}
        self.eos = int(config.eos_token_id)

    def features(self, audio: np.ndarray) -> np.ndarray:
        """A window's log-mel input (on the CPU, where decoding runs)."""
        extracted = self.processor.feature_extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="np")
        return np.asarray(extracted.input_features[0])

    @torch.inference_mode()
    def transcribe(self, features: list[np.ndarray], language: str = "") -> list[tuple[str, list[Spoken]]]:
        """Each window's language and timed segments, the windows run as one batch."""
        batch = torch.from_numpy(np.stack(features)).to(self.device, self.dtype, non_blocking=True)
        encoded = self.model.get_encoder()(batch)
        if language:
            languages = [language] * len(features)
        else:
            ids = self.model.detect_language(encoder_outputs=encoded)
            languages = [self.languages.get(int(i), "") for i in ids.tolist()]
        sequences = self.model.generate(
            input_features=batch,
            encoder_outputs=encoded,
            language=languages,
            task="transcribe",
            return_timestamps=True,
            max_new_tokens=self.max_new_tokens,
        )
        sequences = sequences if torch.is_tensor(sequences) else sequences["sequences"]
        return [(lang, self.segments(row)) for lang, row in zip(languages, sequences.cpu().tolist(), strict=True)]

    def segments(self, ids: list[int]) -> list[Spoken]:
        """The timed segments of one generated sequence (see `timed_segments`)."""
        return timed_segments(
            ids, self.timestamp_begin, self.eos, partial(self.processor.tokenizer.decode, skip_special_tokens=True)
        )

    def describe(self) -> dict[str, Any]:
        return {"dtype": str(self.dtype).removeprefix("torch."), "device": str(self.device)}
