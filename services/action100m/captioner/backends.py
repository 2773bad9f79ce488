"""Caption generation behind one interface.

`TransformersCaptioner` runs the paper's two models (Perception-LM for videos, Llama-3.2-Vision for
images; vLLM 0.32 serves neither) with their own processors, batched, bf16 on a GPU, each decoding
as its publisher documents (`common/decoding.py`: greedy for Perception-LM, temperature 0.6 and
top_p 0.9 for Llama-3.2-Vision), each caption sampled from its own seeded generator. Another
backend (vLLM, for VLMs it serves) would implement the same `generate`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from action100m.common.decoding import LLAMA_VISION, PERCEPTION_LM, Decoding, per_row_sampler
from action100m.common.devices import pick_device, pick_dtype

from .prompts import IMAGE_CAPTION_PROMPT, VIDEO_ACTION_PROMPT, VIDEO_CAPTION_PROMPT

log = logging.getLogger("action100m.captioner")

PROMPTS = {
    "plm_caption": VIDEO_CAPTION_PROMPT,
    "plm_action": VIDEO_ACTION_PROMPT,
    "llama3_caption": IMAGE_CAPTION_PROMPT,
}
VIDEO_FIELDS = ("plm_caption", "plm_action")


def media_kind(field: str) -> str:
    """ "video" for Perception-LM's fields, "image" for Llama-3.2-Vision's."""
    return "video" if field in VIDEO_FIELDS else "image"


def caption_request(processor: Any, field: str) -> str:
    """The prompt text of one caption request, as the model's own chat template renders it: one
    user turn with the video (or image) and the question; the processor expands the media token."""
    messages = [{"role": "user", "content": [{"type": media_kind(field)}, {"type": "text", "text": PROMPTS[field]}]}]
    return str(processor.apply_chat_template(messages, add_generation_prompt=True))


@dataclass
class CaptionJob:
    """One caption to write: a field of a node, from its frames ([32, H, W, 3] video or [1, H, W, 3] image)."""

    video_uid: str
    node_id: str
    field: str
    frames: np.ndarray
    max_new_tokens: int


@dataclass
class Generated:
    text: str
    output_tokens: int


class CaptionBackend(Protocol):
    models: dict[str, str]

    def load(self) -> None: ...

    def generate(self, jobs: Sequence[CaptionJob]) -> list[Generated]:
        """Captions for jobs of one field, in order; raises if the batch fails."""
        ...


class TransformersCaptioner:
    """Perception-LM and Llama-3.2-Vision through transformers' generate()."""

    def __init__(
        self,
        video_model: str,
        image_model: str,
        device: str = "auto",
        dtype: str = "auto",
        decoding: dict[str, Decoding] | None = None,
    ):
        self.models = {"video": video_model, "image": image_model}
        self.decoding = decoding or {"video": PERCEPTION_LM, "image": LLAMA_VISION}
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self._loaded: dict[str, tuple] = {}

    def load(self) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        for kind, name in self.models.items():
            processor = AutoProcessor.from_pretrained(name)
            processor.tokenizer.padding_side = "left"  # batched generation continues from the right edge
            model = AutoModelForImageTextToText.from_pretrained(name, dtype=self.dtype)
            model = model.to(self.device).eval()  # type: ignore[arg-type]
            self._loaded[kind] = (processor, model)
            log.info("loaded %s (%s) on %s as %s", name, type(model).__name__, self.device, self.dtype)

    @torch.inference_mode()
    def generate(self, jobs: Sequence[CaptionJob]) -> list[Generated]:
        if not jobs:
            return []
        fields = {job.field for job in jobs}
        if len(fields) != 1:
            raise ValueError(f"one field per batch, got {sorted(fields)}")
        field = fields.pop()
        kind = media_kind(field)
        processor, model = self._loaded[kind]
        prompt = caption_request(processor, field)
        if kind == "video":
            inputs = processor(
                text=[prompt] * len(jobs), videos=[job.frames for job in jobs], padding=True, return_tensors="pt"
            )
        else:
            inputs = processor(
                text=[prompt] * len(jobs), images=[[job.frames[0]] for job in jobs], padding=True, return_tensors="pt"
            )
        inputs = inputs.to(self.device)
        for key, value in inputs.items():
            if torch.is_floating_point(value):
                inputs[key] = value.to(self.dtype)
        limit = max(job.max_new_tokens for job in jobs)
        pad = processor.tokenizer.pad_token_id
        decoding = self.decoding[kind]
        sampling = {}
        if not decoding.greedy:  # each caption from its own generator: the same text batched or alone
            keys = [f"{job.video_uid}/{job.node_id}/{job.field}" for job in jobs]
            sampling = {"logits_processor": [per_row_sampler(decoding, keys)]}
        output = model.generate(**inputs, max_new_tokens=limit, do_sample=False, pad_token_id=pad, **sampling)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        texts = processor.batch_decode(new_tokens, skip_special_tokens=True)
        counts = (new_tokens != pad).sum(dim=1).tolist()
        return [Generated(text.strip(), int(n)) for text, n in zip(texts, counts, strict=True)]
