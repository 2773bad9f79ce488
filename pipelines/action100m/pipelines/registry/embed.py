"""embed: V-JEPA 2 features of each video's frames (the embedder)."""

from __future__ import annotations

from collections.abc import Mapping

from action100m.v1 import embedder_pb2, embedder_pb2_grpc

from ..memory.facts import model_facts, working_bytes
from ..memory.needs import PROCESS_OVERHEAD_BYTES, Need
from ..state import VideoEntry
from .stage import Settings, Stage


def embed_item(video: VideoEntry, upstream: Mapping[str, str], output: str) -> embedder_pb2.EmbedItem:
    return embedder_pb2.EmbedItem(
        video_uid=video.video_uid,
        video_uri=video.uri,
        output_uri=output,
        video_signature=video.signature,
        video_stream=video.stream_index(),
    )


def embedder_models(settings: Settings) -> list[str]:
    from action100m.embedder.service import EmbedderConfig

    return [EmbedderConfig.from_env(settings).model]


def embedder_need(settings: Settings) -> Need:
    from action100m.embedder.service import EmbedderConfig

    config = EmbedderConfig.from_env(settings)
    facts = model_facts(config.model)
    assert facts.vision is not None, f"{config.model}: no video encoder shape"
    batch = config.windows_per_batch
    frames = facts.vision.tokens_per_image  # (frames / tubelet) x patches per window
    window_bytes = facts.vision.input_pixels * 3 * 2  # one window of bf16 RGB frames
    return Need(
        [facts.name],
        {
            "weights": facts.weight_bytes,
            "activations": batch * working_bytes(frames, facts.vision.hidden, facts.vision.intermediate),
            "inputs": (batch + 2) * window_bytes,  # the batch and the device frame buffer (about two windows)
            "process": PROCESS_OVERHEAD_BYTES,
        },
    )


EMBED = Stage(
    name="embed",
    service="embedder",
    kind="embeddings",
    extension="npz",
    stub=embedder_pb2_grpc.EmbedderStub,
    method="Embed",
    request=embedder_pb2.EmbedRequest,
    options=embedder_pb2.EmbedOptions,
    make_item=embed_item,
    counters=("windows", "frames_decoded"),
    shared_by_input=True,  # features of the frames: the same file under many uids is decoded once
    models=embedder_models,
    memory_need=embedder_need,
    too_big_advice=lambda need: "fewer windows per batch (A100M_WINDOWS_PER_BATCH)",
)
