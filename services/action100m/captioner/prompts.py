"""What the captioner asks, and how much it lets each model say (docs/method.md, "Stage 2")."""

from __future__ import annotations

from dataclasses import dataclass

from action100m.common import paper

VIDEO_CAPTION_PROMPT = "Describe this video in detail."
# The paper does not publish this prompt; ours asks for what the released plm_action holds.
VIDEO_ACTION_PROMPT = (
    "What is the main action in this video? Answer with one short imperative phrase "
    "(a verb and its object, for example 'Cut the onion'), nothing else."
)
IMAGE_CAPTION_PROMPT = "Describe this image in detail."


@dataclass(frozen=True)
class CaptionLimits:
    video_frames: int = paper.VIDEO_FRAMES
    video_frame_size: int = paper.VIDEO_FRAME_SIZE
    caption_max_new_tokens: int = paper.CAPTION_MAX_NEW_TOKENS
    action_max_new_tokens: int = paper.ACTION_MAX_NEW_TOKENS
    image_max_new_tokens: int = paper.IMAGE_MAX_NEW_TOKENS
    batch_size: int = 8  # throughput only: the server's A100M_CAPTION_BATCH_SIZE
