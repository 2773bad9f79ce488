"""caption: the Tree-of-Captions, Perception-LM on every node and Llama 3.2 Vision on every leaf
(the captioner)."""

from __future__ import annotations

from collections.abc import Mapping

from action100m.v1 import captioner_pb2, captioner_pb2_grpc

from ..memory.facts import GIB, model_facts, working_bytes
from ..memory.needs import PROCESS_OVERHEAD_BYTES, Need, decoder_needs
from ..state import VideoEntry
from .stage import Settings, Stage

PROMPT_TOKENS_PER_CAPTION = 96  # the captioners' instruction and chat markup


def caption_item(video: VideoEntry, upstream: Mapping[str, str], output: str) -> captioner_pb2.CaptionItem:
    return captioner_pb2.CaptionItem(
        video_uid=video.video_uid,
        video_uri=video.uri,
        tree_uri=upstream["segment"],
        output_uri=output,
        video_signature=video.signature,
        video_stream=video.stream_index(),
    )


def captioner_models(settings: Settings) -> list[str]:
    from action100m.captioner.service import CaptionerConfig

    config = CaptionerConfig.from_env(settings)
    return [config.video_model, config.image_model]


def captioner_need(settings: Settings) -> Need:
    from action100m.captioner.prompts import CaptionLimits
    from action100m.captioner.service import CaptionerConfig

    config = CaptionerConfig.from_env(settings)
    limits = CaptionLimits()
    video, image = model_facts(config.video_model), model_facts(config.image_model)
    batch = config.batch_size
    # Perception-LM over 32 frames of a node: its encoder on every frame, then the decoder's generation.
    assert video.vision is not None and image.vision is not None
    video_encoder = (
        batch
        * limits.video_frames
        * working_bytes(video.vision.tokens_per_image, video.vision.hidden, video.vision.intermediate)
    )
    video_prompt = limits.video_frames * video.vision.tokens_to_text + PROMPT_TOKENS_PER_CAPTION
    video_kv, video_work = decoder_needs(video, batch, video_prompt, limits.caption_max_new_tokens)
    # Llama 3.2 Vision on a leaf's middle frame: its tiles through the encoder, then generation.
    tiles = batch * image.images_per_input
    image_encoder = tiles * working_bytes(image.vision.tokens_per_image, image.vision.hidden, image.vision.intermediate)
    image_kv, image_work = decoder_needs(image, batch, PROMPT_TOKENS_PER_CAPTION, limits.image_max_new_tokens)
    # The two models are loaded together and run one after the other: the larger peak counts.
    return Need(
        [video.name, image.name],
        {
            "weights": video.weight_bytes + image.weight_bytes,
            "activations": max(video_encoder + video_work, image_encoder + image_work),
            "kv_cache": max(video_kv, image_kv),
            "process": PROCESS_OVERHEAD_BYTES,
        },
    )


def captioner_advice(need: Need) -> str:
    return (
        "a smaller caption batch (A100M_CAPTION_BATCH_SIZE) or a GPU with more memory: the captioner "
        f"holds both of its models ({need.parts['weights'] / GIB:.1f} GiB of weights)"
    )


CAPTION = Stage(
    name="caption",
    service="captioner",
    kind="captions",
    extension="json",
    stub=captioner_pb2_grpc.CaptionerStub,
    method="Caption",
    request=captioner_pb2.CaptionRequest,
    options=captioner_pb2.CaptionOptions,
    make_item=caption_item,
    reads=("segment",),
    release_fields=("plm_caption", "plm_action", "llama3_caption"),
    counters=("nodes", "nodes_failed", "frames_decoded", "output_tokens"),
    models=captioner_models,
    memory_need=captioner_need,
    too_big_advice=captioner_advice,
)
