"""The Captioner gRPC servicer: video + tree artifacts in, captions artifact out, per-video status."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import grpc

from action100m.common.artifacts import SegmentTree
from action100m.common.config import from_env, setting
from action100m.common.decoding import LLAMA_VISION, PERCEPTION_LM, Decoding
from action100m.common.errors import StageInputError
from action100m.common.grpc_server import serve
from action100m.common.options import resolve_checked
from action100m.common.stage import StageServicer, VideoRun, local_video, require_unique_uids, service_info
from action100m.common.store import ArtifactStore
from action100m.common.video import VideoSource
from action100m.v1 import captioner_pb2, captioner_pb2_grpc, common_pb2

from .backends import CaptionBackend
from .caption import CaptionedVideo, CaptionStats, caption_videos
from .prompts import CaptionLimits

SERVICE_NAME = captioner_pb2.DESCRIPTOR.services_by_name["Captioner"].full_name
CAPTION_OPTIONS = [field.name for field in captioner_pb2.CaptionOptions.DESCRIPTOR.fields]


@dataclass
class CaptionerConfig:
    """A100M_CAPTIONER_VIDEO_MODEL, A100M_CAPTIONER_IMAGE_MODEL (hub ids or dirs), A100M_DEVICE,
    A100M_DTYPE, A100M_CAPTION_BATCH_SIZE."""

    video_model: str = field(default="facebook/Perception-LM-3B", metadata={"env": "A100M_CAPTIONER_VIDEO_MODEL"})
    image_model: str = field(
        default="meta-llama/Llama-3.2-11B-Vision-Instruct", metadata={"env": "A100M_CAPTIONER_IMAGE_MODEL"}
    )
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = setting(8, env="A100M_CAPTION_BATCH_SIZE", min=1, max=4096)
    # decoding: each model's publisher's defaults (common/decoding.py says where each comes from)
    video_temperature: float = setting(
        PERCEPTION_LM.temperature, env="A100M_CAPTIONER_VIDEO_TEMPERATURE", min=0, max=10
    )
    video_top_p: float = setting(PERCEPTION_LM.top_p, env="A100M_CAPTIONER_VIDEO_TOP_P", min=0.001, max=1)
    image_temperature: float = setting(LLAMA_VISION.temperature, env="A100M_CAPTIONER_IMAGE_TEMPERATURE", min=0, max=10)
    image_top_p: float = setting(LLAMA_VISION.top_p, env="A100M_CAPTIONER_IMAGE_TOP_P", min=0.001, max=1)
    seed: int = setting(0, env="A100M_CAPTIONER_SEED", min=0)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> CaptionerConfig:
        return from_env(cls, env)

    def decoding(self) -> dict[str, Decoding]:
        """How each model decodes, by the kind of media it captions."""
        return {
            "video": Decoding(self.video_temperature, self.video_top_p, self.seed),
            "image": Decoding(self.image_temperature, self.image_top_p, self.seed),
        }


class CaptionerService(StageServicer, captioner_pb2_grpc.CaptionerServicer):
    def __init__(self, store: ArtifactStore, config: CaptionerConfig, backend: CaptionBackend | None = None):
        from .backends import TransformersCaptioner

        super().__init__(store)
        self.config = config
        self.backend = backend or TransformersCaptioner(
            config.video_model, config.image_model, config.device, config.dtype, config.decoding()
        )

    def load(self) -> None:
        self.backend.load()

    def defaults(self) -> captioner_pb2.CaptionOptions:
        limits = CaptionLimits()
        return captioner_pb2.CaptionOptions(
            video_frames=limits.video_frames,
            video_frame_size=limits.video_frame_size,
            caption_max_new_tokens=limits.caption_max_new_tokens,
            action_max_new_tokens=limits.action_max_new_tokens,
            image_max_new_tokens=limits.image_max_new_tokens,
        )

    def _limits(self, options: captioner_pb2.CaptionOptions, context: grpc.ServicerContext) -> CaptionLimits:
        defaults = self.defaults()
        values = resolve_checked(options, defaults, dict.fromkeys(CAPTION_OPTIONS, 1), context)
        return CaptionLimits(**values, batch_size=self.config.batch_size)

    def _prepare(self, item: captioner_pb2.CaptionItem, files):
        tree = SegmentTree.from_json(self.store.get_bytes(item.tree_uri), item.tree_uri)
        if tree.video_uid != item.video_uid:
            raise StageInputError(f"{item.tree_uri}: the tree is of video {tree.video_uid}, not {item.video_uid}")
        return local_video(self.store, item, files), tree

    def Caption(
        self, request: captioner_pb2.CaptionRequest, context: grpc.ServicerContext
    ) -> Iterator[captioner_pb2.CaptionResult]:
        require_unique_uids(request.videos, context)
        limits = self._limits(request.options, context)

        def process(
            todo: list[tuple[str, tuple[VideoSource, SegmentTree]]], keep_going: Callable[[], None]
        ) -> Iterator[tuple[str, CaptionedVideo | BaseException]]:
            videos = [(uid, path, tree) for uid, (path, tree) in todo]
            return caption_videos(self.backend, videos, limits, CaptionStats(), keep_going)

        for item, run, video in self.stream(
            request,
            context,
            prepare=self._prepare,
            process=process,
            publish=lambda item, video: self.store.put_bytes(
                item.output_uri, video.captions.to_json(), content_type="application/json"
            ),
        ):
            yield _result(item, run, video)

    def Info(self, request, context):
        models = [
            common_pb2.ModelInfo(role="video_captioner", name=self.config.video_model),
            common_pb2.ModelInfo(role="image_captioner", name=self.config.image_model),
        ]
        decoding = {kind: value.describe() for kind, value in self.config.decoding().items()}
        return service_info("captioner", self.defaults(), models, {"decoding": decoding})


def _result(item, run: VideoRun, video: CaptionedVideo | None) -> captioner_pb2.CaptionResult:
    result = captioner_pb2.CaptionResult(status=run.status())
    if not run.failed:
        result.captions_uri = item.output_uri
    if video is not None:
        result.nodes = len(video.captions.nodes)
        result.nodes_failed = video.nodes_failed
        result.frames_decoded = video.frames_decoded
        result.output_tokens = video.output_tokens
    return result


def serve_from_env() -> int:
    """Serves the captioner until SIGTERM, configured by A100M_* environment variables."""
    servicer = CaptionerService(ArtifactStore.from_env(), CaptionerConfig.from_env())
    return serve("captioner", servicer, captioner_pb2_grpc.add_CaptionerServicer_to_server, SERVICE_NAME)
