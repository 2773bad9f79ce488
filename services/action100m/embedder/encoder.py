"""V-JEPA 2 as a frame encoder: preprocessing of sampled frames, and windows to per-frame features.

The model and its video processor load through `from_pretrained(dir or hub id)`, the same call for
the paper's ViT-g (`facebook/vjepa2-vitg-fpc64-384`) and the tiny random test model. On a GPU the
model runs in bf16 and everything after preprocessing stays on the device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from action100m.common.devices import pick_device, pick_dtype

from .windows import token_to_frame_weights

log = logging.getLogger("action100m.embedder")


@dataclass(frozen=True)
class EncoderShape:
    frames_per_window: int  # 64
    tokens_per_window: int  # 32 (2-frame tubelets)
    crop: int  # input side in pixels (384 for ViT-g/384)
    patches_per_frame: int
    dim: int


class VJepa2Encoder:
    """Loads V-JEPA 2 and turns windows of preprocessed frames into per-frame features."""

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto"):
        from transformers import AutoModel, AutoVideoProcessor

        self.name = model
        self.device = pick_device(device)
        self.dtype = pick_dtype(dtype, self.device)
        self.processor = AutoVideoProcessor.from_pretrained(model)
        self.model = AutoModel.from_pretrained(model, dtype=self.dtype).to(self.device).eval()
        config = self.model.config
        crop = config.crop_size
        self.shape = EncoderShape(
            frames_per_window=config.frames_per_clip,
            tokens_per_window=config.frames_per_clip // config.tubelet_size,
            crop=crop,
            patches_per_frame=(crop // config.patch_size) ** 2,
            dim=config.hidden_size,
        )
        weights = token_to_frame_weights(self.shape.tokens_per_window, self.shape.frames_per_window)
        self.token_to_frame = torch.from_numpy(weights).to(self.device, torch.float32)
        log.info("loaded %s on %s as %s (%s)", model, self.device, self.dtype, self.shape)

    def decode_size(self, width: int, height: int) -> tuple[int, int]:
        """The size to resize to while decoding: the processor's shortest edge, aspect kept."""
        shortest = self.processor.size.get("shortest_edge") or self.shape.crop
        scale = shortest / min(width, height)
        return max(round(width * scale), shortest), max(round(height * scale), shortest)

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [k, H, W, 3] -> [k, 3, crop, crop] in the model's dtype, exactly as the processor does it."""
        pixels = self.processor(videos=[frames], return_tensors="pt")["pixel_values_videos"][0]
        out = pixels.to(self.dtype)
        return out.pin_memory() if self.device.type == "cuda" else out

    @torch.inference_mode()
    def encode(self, windows: torch.Tensor) -> torch.Tensor:
        """[B, 64, 3, crop, crop] on the device -> [B, 64, dim] float32 per-frame features."""
        batch = windows.shape[0]
        tokens = self.model(pixel_values_videos=windows, skip_predictor=True).last_hidden_state
        per_tubelet = tokens.view(batch, self.shape.tokens_per_window, self.shape.patches_per_frame, -1).float().mean(2)
        return torch.einsum("ft,btd->bfd", self.token_to_frame, per_tubelet)
