"""Decoding settings and the per-request sampler: the same draws whether a request is batched or alone."""

from __future__ import annotations

import pytest
import torch

from action100m.common.decoding import GPT_OSS, LLAMA_VISION, PERCEPTION_LM, Decoding, per_row_sampler


def draws(decoding: Decoding, keys: list[str], logits: torch.Tensor, steps: int = 12) -> list[list[int]]:
    """The tokens the sampler leaves for each row over `steps` steps of the same logits."""
    sampler = per_row_sampler(decoding, keys)
    chosen = []
    for _ in range(steps):
        scores = sampler(torch.zeros((len(keys), 1), dtype=torch.long), logits.clone())
        assert torch.isfinite(scores).sum(dim=-1).tolist() == [1] * len(keys)  # one candidate a row
        chosen.append(scores.argmax(dim=-1).tolist())
    return [list(row) for row in zip(*chosen, strict=True)]


def test_a_request_draws_the_same_tokens_batched_or_alone_and_another_seed_draws_others():
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(1))
    decoding = Decoding(temperature=1.0, top_p=1.0, seed=7)
    keys = ["v/n1/plm_caption", "v/n2/plm_caption", "v/n3/plm_caption"]
    batched = draws(decoding, keys, logits)
    assert batched[1] == draws(decoding, keys[1:2], logits[1:2])[0]
    assert batched != draws(Decoding(1.0, 1.0, seed=8), keys, logits)
    assert len({tuple(row) for row in batched}) == 3  # rows draw from generators of their own


def test_top_p_keeps_the_nucleus_and_temperature_follows_the_model():
    logits = torch.tensor([[4.0, 3.0, 0.0, -1.0, -2.0]])
    nucleus = {t for k in range(200) for t in draws(Decoding(1.0, 0.9), [f"k{k}"], logits, steps=1)[0]}
    assert nucleus == {0, 1}  # 0.70 + 0.26 crosses 0.9 at token 1: tokens 2..4 are never drawn
    counts = torch.bincount(
        torch.tensor([draws(Decoding(1.0, 1.0), [f"k{k}"], logits, steps=1)[0][0] for k in range(600)]), minlength=5
    )
    expected = torch.softmax(logits[0], dim=-1) * 600
    assert abs(int(counts[0]) - float(expected[0])) < 4 * float(expected[0] * (1 - expected[0] / 600)) ** 0.5


def test_request_seeds_depend_on_the_key_and_the_runs_seed_only():
    decoding = Decoding(1.0, 1.0, seed=3)
    assert decoding.request_seed("v/n/0") == Decoding(1.0, 1.0, seed=3).request_seed("v/n/0")
    assert (
        decoding.request_seed("v/n/0") != decoding.request_seed("v/n/1") != Decoding(1.0, 1.0, 4).request_seed("v/n/1")
    )
    assert 0 <= decoding.request_seed("x") < 2**63


def test_the_publishers_defaults_and_bounds():
    assert (GPT_OSS.temperature, GPT_OSS.top_p) == (1.0, 1.0)
    assert PERCEPTION_LM.greedy and (LLAMA_VISION.temperature, LLAMA_VISION.top_p) == (0.6, 0.9)
    with pytest.raises(ValueError, match="top_p must be in"):
        Decoding(1.0, 0.0)
