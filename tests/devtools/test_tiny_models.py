"""The tiny models build offline and load through the same from_pretrained calls as real weights."""

from __future__ import annotations

import numpy as np
import torch


def test_vjepa2_encodes_a_64_frame_window(tiny_models):
    from transformers import AutoModel, AutoVideoProcessor

    processor = AutoVideoProcessor.from_pretrained(tiny_models["vjepa2"])
    model = AutoModel.from_pretrained(tiny_models["vjepa2"])
    assert type(model).__name__ == "VJEPA2Model"
    window = np.random.default_rng(0).integers(0, 255, (64, 90, 120, 3), dtype=np.uint8)
    inputs = processor(window, return_tensors="pt")
    with torch.no_grad():
        tokens = model(pixel_values_videos=inputs["pixel_values_videos"], skip_predictor=True).last_hidden_state
    # 32 tubelets of 2 frames x (64/16)^2 patches, hidden 64
    assert tuple(tokens.shape) == (1, 32 * 16, model.config.hidden_size)


def test_perception_lm_captions_32_frames(tiny_models):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_models["perception_lm"])
    model = AutoModelForImageTextToText.from_pretrained(tiny_models["perception_lm"])
    assert type(model).__name__ == "PerceptionLMForConditionalGeneration"
    messages = [
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Describe this video in detail."}]}
    ]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    frames = np.zeros((32, 320, 320, 3), dtype=np.uint8)
    inputs = processor(text=[prompt], videos=[frames], return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_mllama_captions_one_image(tiny_models):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_models["mllama"])
    model = AutoModelForImageTextToText.from_pretrained(tiny_models["mllama"])
    assert type(model).__name__ == "MllamaForConditionalGeneration"
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this image in detail."}]}
    ]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    image = np.zeros((240, 320, 3), dtype=np.uint8)
    inputs = processor(text=[prompt], images=[[image]], return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_gpt_oss_has_64_wide_heads_and_a_chat_template(tiny_models):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["gpt_oss"])
    model = AutoModelForCausalLM.from_pretrained(tiny_models["gpt_oss"])
    assert type(model).__name__ == "GptOssForCausalLM" and model.config.head_dim == 64
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Summarise the segment."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]
    assert tokenizer.decode(inputs["input_ids"][0]).endswith("<|start|>assistant")
