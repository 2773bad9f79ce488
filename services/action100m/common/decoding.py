"""How a generating stage picks its tokens: temperature, top_p and a seed, with each model's
published default and where it comes from.

The paper does not say how its three models decode, so each default is its publisher's:

| model | temperature | top_p | source |
|---|---|---|---|
| GPT-OSS (refiner) | 1.0 | 1.0 | OpenAI's gpt-oss model card and repository: "sample with temperature=1.0 and top_p=1.0" |
| Perception-LM (plm_caption, plm_action) | 0.0 (greedy) | 1.0 | none published: its model card's example calls `generate()` with no sampling settings |
| Llama-3.2-Vision-Instruct (llama3_caption) | 0.6 | 0.9 | its `generation_config.json` on the Hub (`do_sample`, 0.6, 0.9) |

A run stays reproducible while it samples: every request draws from its own generator, seeded from
the run's seed and the request's key (video, node, field or round), so a node's text depends neither
on the batch it was decoded in nor on which nodes a resumed run still had to do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Decoding:
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 10.0:
            raise ValueError(f"temperature must be in [0, 10], got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def request_seed(self, key: str) -> int:
        """The seed of one request: the run's seed and the request's key, hashed (63 bits)."""
        digest = hashlib.sha256(f"{self.seed}\0{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") >> 1

    def describe(self) -> dict[str, Any]:
        """What the fingerprint and the card record."""
        return {"temperature": self.temperature, "top_p": self.top_p, "seed": self.seed}


# The publishers' defaults (see the module's table), by the model family's name.
GPT_OSS = Decoding(temperature=1.0, top_p=1.0)
PERCEPTION_LM = Decoding(temperature=0.0, top_p=1.0)
LLAMA_VISION = Decoding(temperature=0.6, top_p=0.9)


def per_row_sampler(decoding: Decoding, keys: list[str]) -> Any:
    """A transformers logits processor that samples each row of a batch from its own generator
    (seeded by `decoding.request_seed(key)`), with temperature and top_p, and leaves the chosen
    token as the row's only candidate: `generate(do_sample=False)` then takes it. Batched or alone,
    a request draws the same tokens."""
    import torch
    from transformers import LogitsProcessor

    class PerRowSampler(LogitsProcessor):
        def __init__(self) -> None:
            self.generators: list[torch.Generator] | None = None

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            if self.generators is None:
                self.generators = []
                for key in keys:
                    generator = torch.Generator(device=scores.device)
                    generator.manual_seed(decoding.request_seed(key))
                    self.generators.append(generator)
            probabilities = torch.softmax(scores.float() / decoding.temperature, dim=-1)
            if decoding.top_p < 1.0:
                ordered, order = probabilities.sort(dim=-1, descending=True)
                outside = ordered.cumsum(dim=-1) - ordered > decoding.top_p  # keeps the token that crosses it
                ordered = ordered.masked_fill(outside, 0.0)
                probabilities = torch.zeros_like(probabilities).scatter(-1, order, ordered)
            chosen = torch.stack(
                [
                    torch.multinomial(row, 1, generator=g)[0]
                    for row, g in zip(probabilities, self.generators, strict=True)
                ]
            )
            only = torch.full_like(scores, float("-inf"))
            return only.scatter(-1, chosen[:, None], 0.0)  # type: ignore[return-value]

    return PerRowSampler()
