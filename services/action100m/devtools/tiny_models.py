"""Random-weight tiny models of the paper's four architectures and Whisper, built offline in seconds.

They are the `tiny` preset: tests and the offline demo load them through exactly the same
`from_pretrained(dir)` calls as the real checkpoints, so every code path runs, on the CPU,
without a model hub. Their outputs are meaningless; their shapes, processors, tokenizers and
chat templates are the real ones' in miniature. Attention heads are 64 wide where vLLM's CPU
attention needs it (GPT-OSS).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Roles, as the presets name them.
ENCODER = "vjepa2"
VIDEO_CAPTIONER = "perception_lm"
IMAGE_CAPTIONER = "mllama"
LLM = "gpt_oss"
SPEECH = "whisper"

_WORDS = [
    "the",
    "a",
    "person",
    "hand",
    "hands",
    "cuts",
    "pours",
    "mixes",
    "opens",
    "closes",
    "picks",
    "places",
    "holds",
    "turns",
    "moves",
    "table",
    "bowl",
    "knife",
    "board",
    "paper",
    "pen",
    "journal",
    "page",
    "tape",
    "glue",
    "scissors",
    "water",
    "oil",
    "pan",
    "stove",
    "kitchen",
    "video",
    "image",
    "frame",
    "camera",
    "shows",
    "describe",
    "detail",
    "action",
    "segment",
    "summary",
    "actor",
    "brief",
    "detailed",
    "caption",
    "then",
    "while",
    "with",
    "on",
    "in",
    "of",
    "and",
    "to",
    "from",
    "into",
    "onto",
    "left",
    "right",
    "top",
    "bottom",
    "red",
    "green",
    "blue",
    "white",
    "black",
    "small",
    "large",
    "slowly",
    "quickly",
    "json",
    "yes",
    "no",
    "none",
    "first",
    "next",
    "finally",
    "step",
    "tool",
    "wood",
    "metal",
    "cloth",
    "screen",
    "text",
    "writes",
    "draws",
    "reads",
]

_LLAMA_STYLE_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|image|>{% elif part['type'] == 'video' %}<|video|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

# The shape of OpenAI's harmony format, enough for a tiny model to be prompted like the real one.
_HARMONY_STYLE_TEMPLATE = (
    "{% for message in messages %}"
    "<|start|>{{ message['role'] }}<|message|>{{ message['content'] }}<|end|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start|>assistant{% endif %}"
)


def _train_tokenizer(specials: list[str], extra: dict[str, str] | None = None, vocab_size: int = 640) -> Any:
    """A byte-level BPE tokenizer trained on a small built-in corpus (any text still encodes)."""
    from transformers import PreTrainedTokenizerFast

    corpus = ('{"summary": {"brief": "", "detailed": ""}, "action": {"brief": "", "detailed": "", "actor": ""}}',)
    return PreTrainedTokenizerFast(
        tokenizer_object=_byte_level_bpe(vocab_size, specials, corpus), extra_special_tokens=extra or {}
    )


def _byte_level_bpe(vocab_size: int, specials: list[str], extra_corpus: tuple[str, ...] = ()) -> Any:
    """A byte-level BPE (any text encodes) trained on the built-in words, `specials` first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [" ".join(_WORDS[(i * 7 + j) % len(_WORDS)] for j in range(12)) for i in range(400)]
    tokenizer.train_from_iterator([*corpus, *extra_corpus], trainer)
    return tokenizer


def _save_generator(model: Any, tokenizer: Any, out: Path) -> None:
    """Saves a generative model whose generate() pads and stops with the tokenizer's tokens."""
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)


def build_vjepa2(out: Path) -> Path:
    from transformers import VJEPA2Config, VJEPA2Model, VJEPA2VideoProcessor

    config = VJEPA2Config(
        crop_size=64,
        patch_size=16,
        frames_per_clip=64,
        tubelet_size=2,
        hidden_size=64,
        num_attention_heads=4,
        num_hidden_layers=2,
        mlp_ratio=2.0,
        pred_hidden_size=32,
        pred_num_attention_heads=2,
        pred_num_hidden_layers=1,
        num_pooler_layers=1,
    )
    VJEPA2Model(config).save_pretrained(out)
    # Same preprocessing recipe as the real checkpoint (resize shortest edge 256/224 of the crop, centre crop).
    VJEPA2VideoProcessor(size={"shortest_edge": 73}, crop_size={"height": 64, "width": 64}).save_pretrained(out)
    return out


def build_perception_lm(out: Path) -> Path:
    from transformers import (
        LlamaConfig,
        PerceptionLMConfig,
        PerceptionLMForConditionalGeneration,
        PerceptionLMImageProcessor,
        PerceptionLMProcessor,
        PerceptionLMVideoProcessor,
        TimmWrapperConfig,
    )

    specials = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|eot_id|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|image|>",
        "<|video|>",
        "<|finetune_right_pad_id|>",
    ]
    tokenizer = _train_tokenizer(specials, {"image_token": "<|image|>", "video_token": "<|video|>"})
    tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token = (
        "<|begin_of_text|>",
        "<|eot_id|>",
        "<|finetune_right_pad_id|>",
    )
    tokenizer.chat_template = _LLAMA_STYLE_TEMPLATE
    vision = TimmWrapperConfig(
        architecture="vit_pe_core_tiny_patch16_384",
        model_args={
            "embed_dim": 32,
            "depth": 2,
            "num_heads": 2,
            "img_size": [64, 64],
            "global_pool": "",
            "ref_feat_shape": [4, 4],
            "use_post_transformer_norm": False,
        },
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = PerceptionLMConfig(
        vision_config=vision,
        text_config=text,
        vision_use_cls_token=True,
        projector_pooling_ratio=2,
        image_token_id=tokenizer.image_token_id,
        video_token_id=tokenizer.video_token_id,
    )
    model = PerceptionLMForConditionalGeneration(config)
    _save_generator(model, tokenizer, out)
    processor = PerceptionLMProcessor(
        video_processor=PerceptionLMVideoProcessor(size={"height": 64, "width": 64}),
        image_processor=PerceptionLMImageProcessor(tile_size=64, max_num_tiles=1, vision_input_type="vanilla"),
        tokenizer=tokenizer,
        patch_size=16,
        pooling_ratio=2,
        chat_template=_LLAMA_STYLE_TEMPLATE,
    )
    processor.save_pretrained(out)
    return out


def build_mllama(out: Path) -> Path:
    from transformers import (
        MllamaConfig,
        MllamaForConditionalGeneration,
        MllamaImageProcessor,
        MllamaProcessor,
        MllamaTextConfig,
        MllamaVisionConfig,
    )

    specials = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|eot_id|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|image|>",
        "<|python_tag|>",
        "<|finetune_right_pad_id|>",
    ]
    tokenizer = _train_tokenizer(specials, {"image_token": "<|image|>"})
    tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token = (
        "<|begin_of_text|>",
        "<|eot_id|>",
        "<|finetune_right_pad_id|>",
    )
    tokenizer.chat_template = _LLAMA_STYLE_TEMPLATE
    vision = MllamaVisionConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_global_layers=1,
        attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=16,
        max_num_tiles=1,
        intermediate_layers_indices=[0],
        vision_output_dim=64,
        supported_aspect_ratios=[[1, 1]],
    )
    text = MllamaTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        cross_attention_layers=[1],
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = MllamaConfig(vision_config=vision, text_config=text, image_token_index=tokenizer.image_token_id)
    model = MllamaForConditionalGeneration(config)
    _save_generator(model, tokenizer, out)
    processor = MllamaProcessor(
        image_processor=MllamaImageProcessor(size={"height": 32, "width": 32}, max_image_tiles=1),
        tokenizer=tokenizer,
        chat_template=_LLAMA_STYLE_TEMPLATE,
    )
    processor.save_pretrained(out)
    return out


def build_gpt_oss(out: Path) -> Path:
    """A tiny GPT-OSS that speaks the real format: o200k_harmony's vocabulary and control tokens
    (201,088 embedding rows, from `openai_harmony`), a network of a few hundred thousand weights
    besides. Random weights reason for ever: runs cap its reasoning (A100M_REFINER_MAX_REASONING_TOKENS)."""
    import torch
    from transformers import GenerationConfig, GptOssConfig, GptOssForCausalLM

    from action100m.refiner.harmony import GPT_OSS_VOCAB_SIZE

    from .harmony_tokenizer import build_harmony_tokenizer

    tokenizer = build_harmony_tokenizer()
    tokenizer.chat_template = _HARMONY_STYLE_TEMPLATE  # for servers that render; the refiner uses harmony
    config = GptOssConfig(
        vocab_size=GPT_OSS_VOCAB_SIZE,
        hidden_size=64,
        intermediate_size=96,
        head_dim=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_local_experts=4,
        num_experts_per_tok=2,
        sliding_window=128,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=8192,
        rope_parameters={
            "rope_type": "yarn",
            "rope_theta": 150000.0,
            "factor": 2.0,
            "beta_fast": 32.0,
            "beta_slow": 1.0,
            "original_max_position_embeddings": 4096,
            "truncate": False,
        },
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = GptOssForCausalLM(config).to(torch.bfloat16)  # type: ignore[arg-type]  # half the disk: 201,088 rows
    # the stop tokens of an assistant turn: <|return|>, and <|call|> (openai/gpt-oss-20b's generation config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|call|>")],
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_llama(out: Path) -> Path:
    """A text-only Llama: vLLM's OpenAI server forces the harmony format on gpt_oss models, so the
    refiner's `openai` backend is tested against this one."""
    from transformers import LlamaConfig, LlamaForCausalLM

    specials = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|eot_id|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|finetune_right_pad_id|>",
    ]
    tokenizer = _train_tokenizer(specials)
    tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token = (
        "<|begin_of_text|>",
        "<|eot_id|>",
        "<|finetune_right_pad_id|>",
    )
    tokenizer.chat_template = _LLAMA_STYLE_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=8192,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    _save_generator(model, tokenizer, out)
    tokenizer.save_pretrained(out)
    return out


# Whisper's special tokens in its order (a few languages stand for its hundred); the 1,501
# timestamp tokens <|0.00|>..<|30.00|> come last, right after <|notimestamps|>, as generation expects.
_WHISPER_LANGUAGES = ("en", "de", "fr", "es", "it")
_WHISPER_SPECIALS = (
    "<|endoftext|>",
    "<|startoftranscript|>",
    *(f"<|{code}|>" for code in _WHISPER_LANGUAGES),
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nospeech|>",
    "<|notimestamps|>",
)


def build_whisper(out: Path) -> Path:
    """Whisper large-v3's input (128 mel bins, 30 s windows, 1,500 encoder positions) and token
    layout, with a 2-layer, 64-wide network."""
    from tokenizers import AddedToken
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    bpe = _byte_level_bpe(400, [])  # specials after training: timestamps must be the last ids
    bpe.add_special_tokens([AddedToken(token, special=True) for token in _WHISPER_SPECIALS])
    bpe.add_tokens([AddedToken(f"<|{i * 0.02:.2f}|>", special=False) for i in range(1501)])
    bpe.save(str(out / "tokenizer.json"))
    end = "<|endoftext|>"
    tokenizer = WhisperTokenizer(
        tokenizer_file=str(out / "tokenizer.json"), bos_token=end, eos_token=end, unk_token=end, pad_token=end
    )
    ids: dict[str, int] = {token: tokenizer.convert_tokens_to_ids(token) for token in _WHISPER_SPECIALS}  # type: ignore[misc]
    config = WhisperConfig(
        vocab_size=len(tokenizer),
        num_mel_bins=128,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=448,
        pad_token_id=ids[end],
        bos_token_id=ids[end],
        eos_token_id=ids[end],
        decoder_start_token_id=ids["<|startoftranscript|>"],
    )
    model = WhisperForConditionalGeneration(config)
    whisper_settings = {  # what Whisper's generate reads beyond the usual generation settings
        "decoder_start_token_id": ids["<|startoftranscript|>"],
        "eos_token_id": ids[end],
        "pad_token_id": ids[end],
        "no_timestamps_token_id": ids["<|notimestamps|>"],
        "prev_sot_token_id": ids["<|startofprev|>"],
        "lang_to_id": {f"<|{code}|>": ids[f"<|{code}|>"] for code in _WHISPER_LANGUAGES},
        "task_to_id": {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        "is_multilingual": True,
        "max_initial_timestamp_index": 50,
        "begin_suppress_tokens": [ids[end]],
        "suppress_tokens": [],
        "forced_decoder_ids": None,
        "max_length": 448,
    }
    generation = model.generation_config
    for name, value in whisper_settings.items():
        setattr(generation, name, value)
    generation._from_model_config = False  # else loading rebuilds it from config.json, without the above
    model.save_pretrained(out)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tokenizer).save_pretrained(
        out
    )
    return out


BUILDERS = {
    ENCODER: build_vjepa2,
    VIDEO_CAPTIONER: build_perception_lm,
    IMAGE_CAPTIONER: build_mllama,
    LLM: build_gpt_oss,
    SPEECH: build_whisper,
}
# Built only when asked for by name (`only=["llama"]`): not a paper architecture.
EXTRA_BUILDERS = {"llama": build_llama}


def build_tiny_models(
    directory: str | os.PathLike[str], seed: int = 0, only: list[str] | None = None
) -> dict[str, Path]:
    """Writes the tiny models under `directory/<role>/`; returns role -> folder."""
    import torch

    root = Path(directory)
    built = {}
    builders = {**BUILDERS, **EXTRA_BUILDERS} if only else BUILDERS
    for role, build in builders.items():
        if only and role not in only:
            continue
        torch.manual_seed(seed)
        target = root / role
        target.mkdir(parents=True, exist_ok=True)
        built[role] = build(target)
    return built
