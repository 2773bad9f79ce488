"""The paper's models at their published shapes with random weights, for a GPU check with no download.

V-JEPA 2 ViT-g/384, Perception-LM-3B (Llama-3.2-3B decoder, PE-L/14 at 448 px), Llama-3.2-11B-Vision,
Whisper large-v3 and GPT-OSS-20B (the single-GPU preset's refiner), each from the numbers of its
published config.json (see `action100m.pipelines.memory.facts.DOCUMENTED`, whose parameter counts
`tests/devtools/test_paper_shapes.py` checks these against on the meta device). The processors take
the published settings. Tokenizers: GPT-OSS's real one (o200k_harmony, built from openai_harmony);
the others' vocabularies are not available offline, so the tiny models' tokenizers stand in (their
ids fit the published embedding sizes). Weights are drawn on the GPU in bf16 and saved, except
GPT-OSS's: the refiner's vLLM engine draws them itself (`A100M_REFINER_LOAD_FORMAT=dummy`), which
spares 42 GB of disk.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

# role -> (what it is, the documented model whose shape it has)
PAPER_SHAPES = {
    "vjepa2": "facebook/vjepa2-vitg-fpc64-384",
    "perception_lm": "facebook/Perception-LM-3B",
    "mllama": "meta-llama/Llama-3.2-11B-Vision-Instruct",
    "whisper": "openai/whisper-large-v3",
    "gpt_oss": "openai/gpt-oss-20b",
}


def vjepa2_config() -> Any:
    from transformers import VJEPA2Config

    return VJEPA2Config(
        crop_size=384,
        frames_per_clip=64,
        patch_size=16,
        tubelet_size=2,
        hidden_size=1408,
        num_attention_heads=22,
        num_hidden_layers=40,
        mlp_ratio=48 / 11,
        pred_hidden_size=384,
        pred_num_attention_heads=12,
        pred_num_hidden_layers=12,
        pred_num_mask_tokens=10,
    )


def _llama3_text(**shape: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=128256, max_position_embeddings=131072, **shape)  # rope: no effect on sizes


def perception_lm_config(image_token_id: int, video_token_id: int) -> Any:
    from transformers import PerceptionLMConfig, TimmWrapperConfig

    vision = TimmWrapperConfig(
        architecture="vit_pe_core_large_patch14_336",
        model_args={
            "embed_dim": 1024,
            "depth": 24,
            "num_heads": 16,
            "img_size": [448, 448],
            "global_pool": "",
            "ref_feat_shape": [32, 32],
            "use_post_transformer_norm": False,
        },
    )
    text = _llama3_text(
        hidden_size=3072,
        intermediate_size=8192,
        num_hidden_layers=28,
        num_attention_heads=24,
        num_key_value_heads=8,
        tie_word_embeddings=True,  # as Llama-3.2-3B
    )
    return PerceptionLMConfig(
        vision_config=vision,
        text_config=text,
        vision_use_cls_token=True,
        projector_pooling_ratio=2,
        image_token_id=image_token_id,
        video_token_id=video_token_id,
    )


def mllama_config(image_token_id: int) -> Any:
    from transformers import MllamaConfig, MllamaTextConfig, MllamaVisionConfig

    text = MllamaTextConfig(
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=40,
        num_attention_heads=32,
        num_key_value_heads=8,
        cross_attention_layers=[3, 8, 13, 18, 23, 28, 33, 38],
    )
    vision = MllamaVisionConfig(
        hidden_size=1280, num_hidden_layers=32, num_global_layers=8, image_size=560, patch_size=14, max_num_tiles=4
    )
    return MllamaConfig(vision_config=vision, text_config=text, image_token_index=image_token_id)


def whisper_config(vocab_size: int, **ids: Any) -> Any:
    from transformers import WhisperConfig

    return WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=128,
        d_model=1280,
        encoder_layers=32,
        decoder_layers=32,
        encoder_attention_heads=20,
        decoder_attention_heads=20,
        encoder_ffn_dim=5120,
        decoder_ffn_dim=5120,
        max_source_positions=1500,
        max_target_positions=448,
        **ids,
    )


def gpt_oss_config() -> Any:
    from transformers import GptOssConfig

    from action100m.refiner.harmony import GPT_OSS_VOCAB_SIZE

    return GptOssConfig(
        vocab_size=GPT_OSS_VOCAB_SIZE,
        hidden_size=2880,
        intermediate_size=2880,
        head_dim=64,
        num_hidden_layers=24,
        num_attention_heads=64,
        num_key_value_heads=8,
        num_local_experts=32,
        num_experts_per_tok=4,
        sliding_window=128,
        layer_types=["sliding_attention", "full_attention"] * 12,
        max_position_embeddings=131072,
        rope_parameters={
            "rope_type": "yarn",
            "rope_theta": 150000.0,
            "factor": 32.0,
            "beta_fast": 32.0,
            "beta_slow": 1.0,
            "original_max_position_embeddings": 4096,
            "truncate": False,
        },
        tie_word_embeddings=False,
        bos_token_id=199998,
        eos_token_id=200002,
        pad_token_id=199999,
    )


def configs(tiny: dict[str, Path]) -> dict[str, tuple[Any, type[Any]]]:
    """role -> (its paper-shaped config, the model class), token ids from the tiny tokenizers in `tiny`."""
    from transformers import (
        AutoTokenizer,
        GptOssForCausalLM,
        MllamaForConditionalGeneration,
        PerceptionLMForConditionalGeneration,
        VJEPA2Model,
        WhisperConfig,
        WhisperForConditionalGeneration,
    )

    plm = AutoTokenizer.from_pretrained(tiny["perception_lm"])
    mllama = AutoTokenizer.from_pretrained(tiny["mllama"])
    whisper = WhisperConfig.from_pretrained(tiny["whisper"])
    ids = {k: getattr(whisper, k) for k in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")}
    return {
        "vjepa2": (vjepa2_config(), VJEPA2Model),
        "perception_lm": (
            perception_lm_config(plm.image_token_id, plm.video_token_id),
            PerceptionLMForConditionalGeneration,
        ),
        "mllama": (mllama_config(mllama.image_token_id), MllamaForConditionalGeneration),
        "whisper": (whisper_config(whisper.vocab_size, **ids), WhisperForConditionalGeneration),
        "gpt_oss": (gpt_oss_config(), GptOssForCausalLM),
    }


def parameter_count(config: Any, model_class: Any) -> int:
    """Parameters of the model a config describes, counted on the meta device (no memory)."""
    import torch

    with torch.device("meta"):
        return sum(p.numel() for p in model_class._from_config(config).parameters())


def build_paper_shaped(out: str | Path, device: str = "cuda") -> dict[str, Path]:
    """Writes the paper-shaped models under `out/<role>/` (about 33 GB of bf16 weights; GPT-OSS's
    config and tokenizer only); returns role -> folder."""
    import torch
    from transformers import GenerationConfig

    from .tiny_models import build_tiny_models

    root = Path(out)
    tiny = build_tiny_models(root / "tiny")
    built: dict[str, Path] = {}
    for role, (config, model_class) in configs(tiny).items():
        folder = root / role
        if (folder / "config.json").exists():
            built[role] = folder
            continue
        folder.mkdir(parents=True, exist_ok=True)
        if role == "gpt_oss":
            config.save_pretrained(folder)  # weights drawn by vLLM (load_format=dummy)
            for name in tiny[role].iterdir():
                if name.name.startswith(("tokenizer", "chat_template", "special_tokens")):
                    shutil.copy(name, folder)
            GenerationConfig(eos_token_id=[200002, 200012], pad_token_id=199999).save_pretrained(folder)
        else:
            with torch.device(device):
                model = model_class._from_config(config, dtype=torch.bfloat16)
            model.save_pretrained(folder)
            del model
            _published_processor(role, tiny[role], folder)
            if (tiny[role] / "generation_config.json").exists():
                shutil.copy(tiny[role] / "generation_config.json", folder)
            if device == "cuda":
                torch.cuda.empty_cache()
        built[role] = folder
    return built


def _published_processor(role: str, tiny: Path, folder: Path) -> None:
    """The tiny model's processor with the published settings (tokenizer and template kept)."""
    from transformers import (
        AutoFeatureExtractor,
        AutoTokenizer,
        MllamaImageProcessor,
        MllamaProcessor,
        PerceptionLMImageProcessor,
        PerceptionLMProcessor,
        PerceptionLMVideoProcessor,
        VJEPA2VideoProcessor,
    )

    if role == "vjepa2":
        VJEPA2VideoProcessor(size={"shortest_edge": 438}, crop_size={"height": 384, "width": 384}).save_pretrained(
            folder
        )
        return
    if role == "whisper":
        AutoFeatureExtractor.from_pretrained(tiny).save_pretrained(folder)  # large-v3's 128 mel bins already
        AutoTokenizer.from_pretrained(tiny).save_pretrained(folder)
        return
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    if role == "perception_lm":
        processor: Any = PerceptionLMProcessor(
            video_processor=PerceptionLMVideoProcessor(size={"height": 448, "width": 448}),
            image_processor=PerceptionLMImageProcessor(tile_size=448, max_num_tiles=36, vision_input_type="thumb+tile"),
            tokenizer=tokenizer,
            patch_size=14,
            pooling_ratio=2,
            chat_template=tokenizer.chat_template,
        )
    else:
        image = MllamaImageProcessor(size={"height": 560, "width": 560}, max_image_tiles=4)
        processor = MllamaProcessor(image_processor=image, tokenizer=tokenizer, chat_template=tokenizer.chat_template)
    processor.save_pretrained(folder)
