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

from .transcribe import TranscribeSettings, TranscribeStats, transcribe_videos

if TYPE_CHECKING:
    from action100m.common.artifacts import Transcript

    from .vad import VoiceActivity
    from .whisper import WhisperEngine

log = logging.getLogger("action100m.transcriber")
TranscribeResult = transcriber_pb2.TranscribeResult
SERVICE_NAME = transcriber_pb2.DESCRIPTOR.services_by_name["Transcriber"].full_name


@dataclass
class TranscriberConfig:
    """A100M_TRANSCRIBER_MODEL (hub id or local dir), A100M_DEVICE, A100M_DTYPE,
    A100M_TRANSCRIBE_BATCH_SIZE (windows per Whisper batch), A100M_TRANSCRIBE_MAX_NEW_TOKENS."""

    model: str = field(default="openai/whisper-large-v3", metadata={"env": "A100M_TRANSCRIBER_MODEL"})
    device: str = "auto"
    dtype: str = "auto"
    transcribe_batch_size: int = setting(16, min=1, max=1024)
    # 30 s of fast speech is about 150 tokens; Whisper's decoder holds 448 positions with its prompt
    transcribe_max_new_tokens: int = setting(440, min=1, max=444)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> TranscriberConfig:
        return from_env(cls, env)


class TranscriberService(StageServicer, transcriber_pb2_grpc.TranscriberServicer):
    def __init__(self, store: ArtifactStore, config: TranscriberConfig):
        super().__init__(store)
        self.config = config
        self.engine: WhisperEngine | None = None
        self.vad: VoiceActivity | None = None

    def load(self) -> None:
        from .vad import VoiceActivity
        from .whisper import WhisperEngine

        self.engine = WhisperEngine(
            self.config.model, self.config.device, self.config.dtype, self.config.transcribe_max_new_tokens
        )
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
        settings = {"max_new_tokens": self.config.transcribe_max_new_tokens}
        return service_info("transcriber", self.defaults(), [model], settings)


def serve_from_env() -> int:
    """Serves the transcriber until SIGTERM, configured by A100M_* environment variables."""
    servicer = TranscriberService(ArtifactStore.from_env(), TranscriberConfig.from_env())
    return serve("transcriber", servicer, transcriber_pb2_grpc.add_TranscriberServicer_to_server, SERVICE_NAME)
