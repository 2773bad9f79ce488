"""The Embedder gRPC servicer: video URIs in, embeddings artifacts out, per-video status."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc

from action100m.common import paper
from action100m.common.config import from_env, setting
from action100m.common.grpc_server import serve
from action100m.common.options import resolve_checked
from action100m.common.stage import StageServicer, VideoRun, local_video, require_unique_uids, service_info
from action100m.common.store import ArtifactStore
from action100m.v1 import common_pb2, embedder_pb2, embedder_pb2_grpc

from .pipeline import EmbeddedVideo, EmbedSettings, EmbedStats, embed_videos

if TYPE_CHECKING:
    from .encoder import VJepa2Encoder

EmbedResult = embedder_pb2.EmbedResult

SERVICE_NAME = embedder_pb2.DESCRIPTOR.services_by_name["Embedder"].full_name


@dataclass
class EmbedderConfig:
    """A100M_EMBEDDER_MODEL (hub id or local dir), A100M_DEVICE, A100M_DTYPE, A100M_WINDOWS_PER_BATCH."""

    model: str = field(default="facebook/vjepa2-vitg-fpc64-384", metadata={"env": "A100M_EMBEDDER_MODEL"})
    device: str = "auto"
    dtype: str = "auto"
    windows_per_batch: int = setting(8, min=1, max=4096)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> EmbedderConfig:
        return from_env(cls, env)


class EmbedderService(StageServicer, embedder_pb2_grpc.EmbedderServicer):
    def __init__(self, store: ArtifactStore, config: EmbedderConfig):
        super().__init__(store)
        self.config = config
        self.encoder: VJepa2Encoder | None = None

    def load(self) -> None:
        from .encoder import VJepa2Encoder

        self.encoder = VJepa2Encoder(self.config.model, self.config.device, self.config.dtype)

    def defaults(self) -> embedder_pb2.EmbedOptions:
        frames = self.encoder.shape.frames_per_window if self.encoder else paper.WINDOW_FRAMES
        return embedder_pb2.EmbedOptions(
            frame_stride=paper.FRAME_STRIDE, window_frames=frames, window_stride=paper.WINDOW_STRIDE
        )

    def _settings(self, options: embedder_pb2.EmbedOptions, context: grpc.ServicerContext) -> EmbedSettings:
        defaults = self.defaults()
        values = resolve_checked(options, defaults, {"frame_stride": 1, "window_stride": 1}, context)
        settings = EmbedSettings(**values, windows_per_batch=self.config.windows_per_batch)
        if settings.window_frames != defaults.window_frames:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"window_frames must be the model's clip length {defaults.window_frames}, got {settings.window_frames}",
            )
        return settings

    def Embed(self, request: embedder_pb2.EmbedRequest, context: grpc.ServicerContext) -> Iterator[EmbedResult]:
        require_unique_uids(request.videos, context)
        settings = self._settings(request.options, context)
        encoder = self.encoder
        assert encoder is not None, "the host serves calls only after load()"
        for item, run, video in self.stream(
            request,
            context,
            prepare=lambda item, files: local_video(self.store, item, files),
            process=lambda todo, keep_going: embed_videos(encoder, todo, settings, EmbedStats(), keep_going),
            publish=lambda item, video: self.store.put_bytes(item.output_uri, video.embeddings.to_bytes()),
        ):
            yield self._result(item, run, video)

    @staticmethod
    def _result(item: embedder_pb2.EmbedItem, run: VideoRun, video: EmbeddedVideo | None) -> EmbedResult:
        result = embedder_pb2.EmbedResult(status=run.status())
        if not run.failed:
            result.embeddings_uri = item.output_uri
        if video is not None:
            features = video.embeddings.features
            result.num_frames, result.dim = features.shape
            result.fps = video.embeddings.fps
            result.duration_seconds = video.embeddings.duration
            result.windows = video.windows
            result.frames_decoded = video.frames_decoded
        return result

    def Info(self, request, context):
        model = common_pb2.ModelInfo(role="encoder", name=self.config.model)
        if self.encoder is not None:
            model.dtype, model.device = str(self.encoder.dtype).removeprefix("torch."), str(self.encoder.device)
        return service_info("embedder", self.defaults(), [model])


def serve_from_env() -> int:
    """Serves the embedder until SIGTERM, configured by A100M_* environment variables."""
    servicer = EmbedderService(ArtifactStore.from_env(), EmbedderConfig.from_env())
    return serve("embedder", servicer, embedder_pb2_grpc.add_EmbedderServicer_to_server, SERVICE_NAME)
