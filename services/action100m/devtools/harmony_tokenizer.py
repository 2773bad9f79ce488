"""A Hugging Face tokenizer with GPT-OSS's real vocabulary, built offline.

GPT-OSS speaks o200k_harmony: o200k_base's 199,998 byte-level BPE ranks plus harmony's special
tokens (`<|start|>` = 200006 ...). `openai_harmony` carries that encoding inside its package (the
`oss-harmony` distribution vLLM depends on), so the vocabulary is read from it, not downloaded;
transformers' tiktoken converter turns the ranks into BPE merges. The result encodes text exactly
as `openai_harmony` does (tests/devtools/test_harmony_tokenizer.py checks it on many scripts), which
is what vLLM's structured output and detokenizer need from a tiny model that uses the real format.
"""

from __future__ import annotations

from typing import Any

from action100m.refiner.harmony import GPT_OSS_VOCAB_SIZE, HarmonyFormat, control_token_ids

# o200k_base's pre-tokenization (split before BPE): letters with their case run, up to three
# digits, punctuation runs (slashes and line breaks kept with them), whitespace.
O200K_PATTERN = "|".join(
    [
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)


def harmony_encoding() -> Any:
    """o200k_harmony as openai_harmony loads it (once per process, shared with the refiner)."""
    return HarmonyFormat().encoding


def bpe_ranks(encoding: Any) -> dict[bytes, int]:
    """Every ordinary token's bytes and rank (= id), as the encoding itself gives them back."""
    first_special = min(control_token_ids().values())
    return {bytes(encoding._inner.decode_bytes([rank])): rank for rank in range(first_special)}


def build_harmony_tokenizer() -> Any:
    """A PreTrainedTokenizerFast equal to o200k_harmony: BOS `<|startoftext|>`, EOS `<|return|>`,
    PAD `<|endoftext|>`, as in openai/gpt-oss-20b's special_tokens_map.json."""
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    encoding = harmony_encoding()
    ranks = bpe_ranks(encoding)

    class _FromRanks(TikTokenConverter):
        @staticmethod
        def load_tiktoken_bpe(tiktoken_url: str) -> dict[bytes, int]:
            return ranks

    backend = _FromRanks(vocab_file="o200k_harmony", pattern=O200K_PATTERN).converted()
    specials = sorted((i, t) for t, i in control_token_ids().items() if i < GPT_OSS_VOCAB_SIZE)
    if [i for i, _ in specials] != list(range(len(ranks), len(ranks) + len(specials))):
        raise ValueError("harmony's special tokens are not contiguous after the ordinary ones")
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True) for _, t in specials])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|startoftext|>",
        eos_token="<|return|>",
        pad_token="<|endoftext|>",
        model_max_length=131072,
    )
