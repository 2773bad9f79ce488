"""What the captioner asks, and how much it lets each model say (SPEC.md, Stage 2)."""

from __future__ import annotations

from dataclasses import dataclass

VIDEO_CAPTION_PROMPT = "Describe this video in detail."
# The paper does not publish this prompt; ours asks for what the released plm_action holds.
VIDEO_ACTION_PROMPT = (
    "What is the main action in this video? Answer with one short imperative phrase "
    "(a verb and its object, for example 'Cut the onion'), nothing else."
)
IMAGE_CAPTION_PROMPT = "Describe this image in detail."


@dataclass(frozen=True)
class CaptionLimits:
    video_frames: int = 32
    video_frame_size: int = 320
    caption_max_new_tokens: int = 1024
    action_max_new_tokens: int = 32
    image_max_new_tokens: int = 1024
    batch_size: int = 8
