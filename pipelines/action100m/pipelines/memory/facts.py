"""What a model weighs on the GPU, and the shapes that size its activations and KV cache.

Facts come from the model's own files when they are here (a local directory, or the Hugging Face
cache for a hub id): parameter counts and dtypes from the safetensors headers (or the index's
`total_size`), shapes from `config.json`. For the paper's models without local files, the same
facts are written down below as data, each with its source. Weights are counted as the service
loads them: floating tensors at 2 bytes (bf16) at most, packed quantized tensors (GPT-OSS's MXFP4
blocks and scales, stored as U8) at their stored size.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

GIB = 1024**3
LOADED_FLOAT_BYTES = 2  # bf16 on a GPU
# bytes per element of each safetensors dtype as loaded: floats at bf16 at most, integers as stored
_LOADED_BYTES = {
    "F64": 2,
    "F32": 2,
    "BF16": 2,
    "F16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "U8": 1,
    "I8": 1,
    "I32": 4,
    "I64": 8,
}


@dataclass(frozen=True)
class TextShape:
    """A decoder's shape: what its KV cache and prefill working set take per token."""

    hidden: int
    intermediate: int
    layers: int  # self-attention layers
    kv_heads: int
    head_dim: int
    vocab: int
    sliding_layers: int = 0  # layers whose KV is capped at `sliding_window` tokens
    sliding_window: int = 0
    cross_layers: int = 0  # cross-attention layers (Mllama): KV over the image tokens

    @property
    def kv_bytes_per_layer_token(self) -> int:
        return 2 * self.kv_heads * self.head_dim * LOADED_FLOAT_BYTES  # K and V

    def kv_bytes(self, tokens: int) -> int:
        """KV cache of one sequence of `tokens` tokens."""
        full = (self.layers - self.sliding_layers) * tokens
        sliding = self.sliding_layers * min(tokens, self.sliding_window)
        return (full + sliding) * self.kv_bytes_per_layer_token


@dataclass(frozen=True)
class VisionShape:
    """An image or video encoder's shape: tokens per image (or per window) and layer widths."""

    hidden: int
    intermediate: int
    tokens_per_image: int  # patches one image (tile, window) becomes inside the encoder
    tokens_to_text: int = 0  # tokens one image becomes in the decoder's prompt (after pooling)
    input_pixels: int = 0  # pixels of one input (a V-JEPA 2 window: frames x side x side)


@dataclass(frozen=True)
class ModelFacts:
    name: str
    weight_bytes: int  # as loaded
    text: TextShape | None = None
    vision: VisionShape | None = None
    images_per_input: int = 1  # Mllama: tiles per image
    source: str = ""  # where the numbers come from

    @property
    def weight_gib(self) -> float:
        return self.weight_bytes / GIB


def working_bytes(tokens: int, hidden: int, intermediate: int) -> int:
    """The peak working set of one transformer layer over `tokens` tokens at bf16: q, k, v and the
    attention output (4 x hidden) beside the MLP's intermediate. Attention runs as SDPA / flash
    attention, so no tokens x tokens matrix is held."""
    return tokens * (4 * hidden + intermediate) * LOADED_FLOAT_BYTES


def _gpt_oss_text(layers: int) -> TextShape:
    """GPT-OSS's decoder: 2880 wide, every other layer on a 128-token sliding window, 8 KV heads of 64."""
    return TextShape(
        hidden=2880,
        intermediate=2880,
        layers=layers,
        kv_heads=8,
        head_dim=64,
        vocab=201088,
        sliding_layers=layers // 2,
        sliding_window=128,
    )


# The paper's models (and the single-gpu preset's refiner), for planning before any weight is
# downloaded. Sizes as loaded (bf16, or MXFP4 for GPT-OSS); shapes from each model's config.json.
DOCUMENTED: dict[str, ModelFacts] = {
    "facebook/vjepa2-vitg-fpc64-384": ModelFacts(
        "facebook/vjepa2-vitg-fpc64-384",
        weight_bytes=int(1.035e9) * LOADED_FLOAT_BYTES,
        # one window: 64 frames / tubelet 2 x (384 / 16)^2 patches
        vision=VisionShape(hidden=1408, intermediate=6144, tokens_per_image=32 * 24 * 24, input_pixels=64 * 384 * 384),
        source="V-JEPA 2 model card (ViT-g/16, ~1B parameters) and config.json (hidden 1408, mlp 6144, "
        "patch 16, tubelet 2, 64 frames at 384 px)",
    ),
    "facebook/Perception-LM-3B": ModelFacts(
        "facebook/Perception-LM-3B",
        weight_bytes=int(3.55e9) * LOADED_FLOAT_BYTES,
        text=TextShape(hidden=3072, intermediate=8192, layers=28, kv_heads=8, head_dim=128, vocab=128256),
        # PE-L/14 at 448 px: 32 x 32 patches per frame, pooled 2 x 2 to 256 tokens in the prompt
        vision=VisionShape(hidden=1024, intermediate=4096, tokens_per_image=1024, tokens_to_text=256),
        source="Perception-LM paper / model card: Llama-3.2-3B decoder (3.21B) + PE-L/14 encoder (0.32B) "
        "+ projector; shapes from config.json",
    ),
    "meta-llama/Llama-3.2-11B-Vision-Instruct": ModelFacts(
        "meta-llama/Llama-3.2-11B-Vision-Instruct",
        weight_bytes=int(10.67e9) * LOADED_FLOAT_BYTES,
        text=TextShape(
            hidden=4096, intermediate=14336, layers=32, kv_heads=8, head_dim=128, vocab=128256, cross_layers=8
        ),
        # up to 4 tiles of 560 px: (560 / 14)^2 + 1 = 1601 tokens each
        vision=VisionShape(hidden=1280, intermediate=5120, tokens_per_image=1601, tokens_to_text=1601),
        images_per_input=4,
        source="Llama 3.2 Vision model card (10.6B parameters) and config.json (40 text layers, 8 of them "
        "cross-attention; vision 1280 wide, 4 tiles x 1601 tokens)",
    ),
    "openai/gpt-oss-120b": ModelFacts(
        "openai/gpt-oss-120b",
        weight_bytes=int(65.0e9),
        text=_gpt_oss_text(layers=36),
        source="gpt-oss model card (117B parameters, MXFP4 MoE weights, ~65 GB checkpoint, fits one 80 GB "
        "GPU) and config.json (36 layers alternating full and 128-token sliding attention, 8 KV heads of 64)",
    ),
    "openai/gpt-oss-20b": ModelFacts(
        "openai/gpt-oss-20b",
        weight_bytes=int(13.8e9),
        text=_gpt_oss_text(layers=24),
        source="gpt-oss model card (21B parameters, MXFP4 MoE weights, ~14 GB checkpoint, runs in 16 GB) "
        "and config.json (24 layers alternating full and sliding attention)",
    ),
}


def _whisper(name: str, parameters: float, decoder_layers: int, source: str) -> ModelFacts:
    """Whisper large-v3's shape (1280 wide, 20 heads, 128 mel bins, 1500 encoder positions per
    30 s window) with its decoder's depth."""
    return ModelFacts(
        name,
        weight_bytes=int(parameters) * LOADED_FLOAT_BYTES,
        text=TextShape(hidden=1280, intermediate=5120, layers=decoder_layers, kv_heads=20, head_dim=64, vocab=51866),
        vision=VisionShape(hidden=1280, intermediate=5120, tokens_per_image=1500, input_pixels=128 * 3000),
        source=source,
    )


DOCUMENTED["openai/whisper-large-v3"] = _whisper(
    "openai/whisper-large-v3", 1.55e9, 32, "Whisper model card (large-v3, 1550M parameters) and config.json"
)
DOCUMENTED["openai/whisper-large-v3-turbo"] = _whisper(
    "openai/whisper-large-v3-turbo",
    0.809e9,
    4,
    "Whisper large-v3-turbo model card (809M parameters: large-v3 with 4 decoder layers) and config.json",
)


class UnknownModel(LookupError):
    """A model with neither local files nor documented facts."""


def safetensors_bytes(files: list[Path]) -> int:
    """Bytes the tensors of these safetensors files take as loaded (headers only are read)."""
    total = 0
    for path in files:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        for name, tensor in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for size in tensor["shape"]:
                count *= size
            total += count * _LOADED_BYTES.get(tensor["dtype"], 2)
    return total


def _text_shape(config: dict[str, Any]) -> TextShape | None:
    if "num_hidden_layers" not in config or "hidden_size" not in config:
        return None
    layers = int(config["num_hidden_layers"])
    heads = int(config.get("num_attention_heads", 1))
    cross = len(config.get("cross_attention_layers", []) or [])
    layer_types = config.get("layer_types") or []
    sliding = sum(1 for kind in layer_types if kind == "sliding_attention")
    return TextShape(
        hidden=int(config["hidden_size"]),
        intermediate=int(config.get("intermediate_size", 4 * config["hidden_size"])),
        layers=layers - cross,
        kv_heads=int(config.get("num_key_value_heads", heads)),
        head_dim=int(config.get("head_dim") or config["hidden_size"] // heads),
        vocab=int(config.get("vocab_size", 0)),
        sliding_layers=sliding,
        sliding_window=int(config.get("sliding_window") or 0) if sliding else 0,
        cross_layers=cross,
    )


def _vision_shape(config: dict[str, Any], kind: str) -> VisionShape | None:
    if kind == "vjepa2":
        frames, tubelet = int(config.get("frames_per_clip", 64)), int(config.get("tubelet_size", 2))
        side = int(config.get("crop_size", 256)) // int(config.get("patch_size", 16))
        hidden, crop = int(config["hidden_size"]), int(config.get("crop_size", 256))
        intermediate = int(hidden * config.get("mlp_ratio", 4))
        return VisionShape(hidden, intermediate, frames // tubelet * side * side, input_pixels=frames * crop * crop)
    vision = config.get("vision_config") or {}
    hidden = int(vision.get("hidden_size") or vision.get("width") or 1024)
    intermediate = int(vision.get("intermediate_size") or 4 * hidden)
    if kind == "mllama":
        side = int(vision.get("image_size", 560)) // int(vision.get("patch_size", 14))
        return VisionShape(hidden, intermediate, side * side + 1, side * side + 1)
    if kind == "perception_lm":  # a timm Perception Encoder: its width, image size and patch in model_args
        args = vision.get("model_args") or {}
        hidden = int(args.get("embed_dim", hidden))
        size = int((args.get("img_size") or [448])[0])
        patch = re.search(r"patch(\d+)", str(vision.get("architecture", "")))
        side = size // (int(patch.group(1)) if patch else 14)
        pooled = side // int(config.get("projector_pooling_ratio", 2))
        return VisionShape(hidden, 4 * hidden, side * side, pooled * pooled, input_pixels=size * size)
    return None


def facts_from_dir(path: Path, name: str | None = None) -> ModelFacts:
    """A model's facts from its own directory: config.json and the safetensors headers."""
    config = json.loads((path / "config.json").read_text())
    files = sorted(path.glob("*.safetensors"))
    if files:
        weight_bytes = safetensors_bytes(files)
    elif (path / "model.safetensors.index.json").exists():
        index = json.loads((path / "model.safetensors.index.json").read_text())
        weight_bytes = int(index["metadata"]["total_size"])
    else:
        raise UnknownModel(f"{path}: no safetensors weights (and no model.safetensors.index.json)")
    kind = str(config.get("model_type", ""))
    if kind == "whisper":
        heads = int(config["decoder_attention_heads"])
        width = int(config["d_model"])
        return ModelFacts(
            name or str(path),
            weight_bytes,
            text=TextShape(
                width,
                int(config["decoder_ffn_dim"]),
                int(config["decoder_layers"]),
                heads,
                width // heads,
                int(config["vocab_size"]),
            ),
            vision=VisionShape(
                width,
                int(config["encoder_ffn_dim"]),
                int(config["max_source_positions"]),
                input_pixels=int(config["num_mel_bins"]) * 2 * int(config["max_source_positions"]),
            ),
            source=f"{path}: safetensors headers and config.json",
        )
    text_config = config.get("text_config") or (config if kind != "vjepa2" else {})
    return ModelFacts(
        name or str(path),
        weight_bytes,
        text=_text_shape(text_config),
        vision=_vision_shape(config, kind),
        images_per_input=int((config.get("vision_config") or {}).get("max_num_tiles", 1)) if kind == "mllama" else 1,
        source=f"{path}: safetensors headers and config.json",
    )


def _cached_dir(model: str) -> Path | None:
    """The local snapshot of a hub id in the Hugging Face cache, when its config and weights are there."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    config = try_to_load_from_cache(model, "config.json")
    if not isinstance(config, str):
        return None
    folder = Path(config).parent
    has_weights = any(folder.glob("*.safetensors")) or (folder / "model.safetensors.index.json").exists()
    return folder if has_weights else None


def model_facts(model: str) -> ModelFacts:
    """Facts for a local directory, a hub id found in the local cache, or a documented model."""
    path = Path(model)
    if path.is_dir():
        return facts_from_dir(path)
    cached = _cached_dir(model)
    if cached is not None:
        return replace(facts_from_dir(cached, model), source=f"the Hugging Face cache ({cached})")
    if model in DOCUMENTED:
        return DOCUMENTED[model]
    raise UnknownModel(
        f"{model}: not a local directory, not in the Hugging Face cache, and not one of the documented "
        f"models ({', '.join(DOCUMENTED)}); download it first (huggingface-cli download) or give its directory"
    )
