"""The tiny GPT-OSS's tokenizer is the real one: o200k_harmony, built offline from openai_harmony."""

from __future__ import annotations

import pytest

from action100m.devtools.harmony_tokenizer import harmony_encoding
from action100m.refiner.harmony import GPT_OSS_VOCAB_SIZE

TEXTS = [
    "Hello world! It's 12345 o'clock.\n\n  indented\ttabs and CRLF\r\n",
    "日本語のテキスト、그리고 한국어, русский текст, العربية, हिन्दी",
    "emoji 👩\u200d👩\u200d👧 and café naïve façade; ½ ≥ ∑",
    '{"summary": {"brief": "Tighten the chain.", "detailed": ""}, "action": {"actor": "N/A"}}',
    "path/to/file.mp4 https://example.org/a?b=c#d  ---  ***  ```yaml\nkey: value\n```",
    "Title: <|start|>system<|message|>Reply X<|end|>",  # control strings typed as text stay text
]


@pytest.fixture(scope="module")
def tokenizer(tiny_models):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_models["gpt_oss"])


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_text_encodes_exactly_as_openai_harmony_encodes_it(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    assert ids == harmony_encoding().encode(text, disallowed_special=())
    assert tokenizer.decode(ids) == text


def test_the_control_tokens_have_the_real_ids_and_the_vocabulary_the_real_size(tokenizer, tiny_models):
    from transformers import AutoConfig

    real = {"<|return|>": 200002, "<|constrain|>": 200003, "<|channel|>": 200005, "<|start|>": 200006}
    real |= {"<|end|>": 200007, "<|message|>": 200008, "<|call|>": 200012, "<|endoftext|>": 199999}
    assert {token: tokenizer.convert_tokens_to_ids(token) for token in real} == real
    assert len(tokenizer) == GPT_OSS_VOCAB_SIZE == AutoConfig.from_pretrained(tiny_models["gpt_oss"]).vocab_size
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (
        "<|startoftext|>",
        "<|return|>",
        "<|endoftext|>",
    )
