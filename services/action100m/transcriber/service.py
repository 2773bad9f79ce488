"""The Transcriber gRPC servicer: video URIs in, transcripts out, per-video status."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc

from action100m.common.config import from_env, setting
from action100m.common.grpc_server import serve
from action100m.common.stage import StageServicer, VideoRun, local_video, require_unique_uids, service_info
from action100m.common.store import ArtifactStore
from action100m.v1 import common_pb2, transcriber_pb2, transcriber_pb2_grpc

from .transcribe import SpeechModel, TranscribeSettings, TranscribeStats, transcribe_videos

if TYPE_CHECKING:
    from action100m.common.artifacts import Transcript

    from .vad import VoiceActivity

log = logging.getLogger("action100m.transcriber")
TranscribeResult = transcriber_pb2.TranscribeResult
SERVICE_NAME = transcriber_pb2.DESCRIPTOR.services_by_name["Transcriber"].full_name


BACKENDS = ("auto", "transformers", "ctranslate2")


@dataclass
class TranscriberConfig:
    """A100M_TRANSCRIBER_MODEL (hub id or local dir), A100M_TRANSCRIBER_BACKEND, A100M_DEVICE,
    A100M_DTYPE (transformers), A100M_TRANSCRIBER_COMPUTE_TYPE (CTranslate2),
    A100M_TRANSCRIBE_BATCH_SIZE (windows per Whisper batch), A100M_TRANSCRIBE_MAX_NEW_TOKENS."""

    model: str = field(default="openai/whisper-large-v3", metadata={"env": "A100M_TRANSCRIBER_MODEL"})
    # transformers, or ctranslate2 (faster-whisper's engine: int8 on a CPU, float16 on a GPU); auto:
    # ctranslate2 for a CTranslate2 model folder (model.bin in it), else transformers
    backend: str = field(default="auto", metadata={"env": "A100M_TRANSCRIBER_BACKEND"})
    compute_type: str = field(default="auto", metadata={"env": "A100M_TRANSCRIBER_COMPUTE_TYPE"})
    device: str = "auto"
    dtype: str = "auto"
    transcribe_batch_size: int = setting(16, min=1, max=1024)
    # 30 s of fast speech is about 150 tokens; Whisper's decoder holds 448 positions with its prompt
    transcribe_max_new_tokens: int = setting(440, min=1, max=444)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"A100M_TRANSCRIBER_BACKEND={self.backend!r}: expected one of {', '.join(BACKENDS)}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> TranscriberConfig:
        return from_env(cls, env)

    def engine_backend(self) -> str:
        """The backend that runs the model: the one set, or the one its folder is made for."""
        from .ct2 import is_ctranslate2_model

        if self.backend != "auto":
            return self.backend
        return "ctranslate2" if is_ctranslate2_model(self.model) else "transformers"


class TranscriberService(StageServicer, transcriber_pb2_grpc.TranscriberServicer):
    def __init__(self, store: ArtifactStore, config: TranscriberConfig):
        super().__init__(store)
        self.config = config
        self.engine: SpeechModel | None = None
        self.vad: VoiceActivity | None = None

    def load(self) -> None:
        from .vad import VoiceActivity

        config = self.config
        if config.engine_backend() == "ctranslate2":
            from .ct2 import CTranslate2Whisper

            self.engine = CTranslate2Whisper(
                config.model, config.device, config.compute_type, config.transcribe_max_new_tokens
            )
        else:
            from .whisper import WhisperEngine

            self.engine = WhisperEngine(config.model, config.device, config.dtype, config.transcribe_max_new_tokens)
        log.info("speech model %s on %s", config.model, self.engine.describe())
        self.vad = VoiceActivity()

    @staticmethod
    def defaults() -> transcriber_pb2.TranscribeOptions:
        return transcriber_pb2.TranscribeOptions(vad=True, language="")

    def _settings(
        self, options: transcriber_pb2.TranscribeOptions, context: grpc.ServicerContext
    ) -> TranscribeSettings:
        defaults = self.defaults()
        vad = options.vad if options.HasField("vad") else defaults.vad
        language = options.language if options.HasField("language") else defaults.language
        known = self.engine.languages.values() if self.engine else ()
        if language and language not in known:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"language {language!r} is not one of the model's ({', '.join(sorted(known))}); '' detects it",
            )
        return TranscribeSettings(vad=vad, language=language, batch_size=self.config.transcribe_batch_size)

    def Transcribe(
        self, request: transcriber_pb2.TranscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[TranscribeResult]:
        require_unique_uids(request.videos, context)
        settings = self._settings(request.options, context)
        engine = self.engine
        assert engine is not None, "the host serves calls only after load()"
        log.info(
            "transcribing %d video(s): vad=%s language=%s",
            len(request.videos),
            settings.vad,
            settings.language or "detect",
        )
        for item, run, transcript in self.stream(
            request,
            context,
            prepare=lambda item, files: local_video(self.store, item, files),
            process=lambda todo, keep_going: transcribe_videos(
                engine, todo, settings, self.vad, TranscribeStats(), keep_going
            ),
            publish=lambda item, transcript: self.store.put_bytes(item.output_uri, transcript.to_json()),
        ):
            yield self._result(item, run, transcript)

    @staticmethod
    def _result(item: transcriber_pb2.TranscribeItem, run: VideoRun, transcript: Transcript | None) -> TranscribeResult:
        result = TranscribeResult(status=run.status())
        if not run.failed:
            result.transcript_uri = item.output_uri
        if transcript is not None:
            result.language = transcript.language
            result.segments = len(transcript.entries or [])
            result.windows = transcript.windows
            result.audio_seconds = transcript.audio_seconds
            result.speech_seconds = transcript.speech_seconds
        return result

    def Info(self, request, context):
        model = common_pb2.ModelInfo(role="speech", name=self.config.model)
        if self.engine is not None:
            where = self.engine.describe()
            model.dtype, model.device = where["dtype"], where["device"]
            if self.config.engine_backend() == "ctranslate2":  # the card names the engine beside the model
                model.name = f"{self.config.model} (CTranslate2, {model.dtype})"
        settings: dict[str, object] = {"max_new_tokens": self.config.transcribe_max_new_tokens}
        backend = self.config.engine_backend()
        if backend != "transformers":  # named only where it is another engine: earlier fingerprints stand
            settings["backend"] = backend
            settings["compute_type"] = model.dtype or self.config.compute_type
        return service_info("transcriber", self.defaults(), [model], settings)


def serve_from_env() -> int:
    """Serves the transcriber until SIGTERM, configured by A100M_* environment variables."""
    servicer = TranscriberService(ArtifactStore.from_env(), TranscriberConfig.from_env())
    return serve("transcriber", servicer, transcriber_pb2_grpc.add_TranscriberServicer_to_server, SERVICE_NAME)
