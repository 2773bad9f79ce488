"""What one service takes on the GPU, part by part: the `Need` each stage's entry in the registry
computes from its service's settings (`Stage.memory_need`), and the shared facts those estimates
are built from. Every estimate is an upper bound built from the model's shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .facts import GIB, ModelFacts, working_bytes

# A CUDA context, cuBLAS / cuDNN workspaces and the caching allocator's slack, per process.
PROCESS_OVERHEAD_BYTES = int(0.75 * GIB)
# vLLM's own: CUDA graphs, the sampler and the profiled activations of a chunked-prefill step.
VLLM_RUNTIME_BYTES = int(1.5 * GIB)
VLLM_BATCHED_TOKENS = 8192  # tokens of one chunked-prefill step (vLLM's default on large GPUs)


@dataclass
class Need:
    """What one service takes on the GPU, part by part (bytes); `gpus` > 1 splits it (tensor parallel)."""

    models: list[str]
    parts: dict[str, int]
    kv_bytes_per_token: int = 0  # an LLM engine: what the rest of its budget buys
    typical_sequence: int = 0
    gpus: int = 1
    on_gpu: bool = True
    service: str = ""  # set by the registry (`Stage.need`)

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def per_gpu(self, gpus: int) -> int:
        shared = self.parts.get("runtime", 0) + self.parts.get("process", 0)
        return (self.total - shared) // gpus + shared


def decoder_needs(facts: ModelFacts, batch: int, prompt_tokens: int, new_tokens: int) -> tuple[int, int]:
    """KV cache and the prefill working set of a batch of generations (transformers' generate)."""
    assert facts.text is not None
    sequence = prompt_tokens + new_tokens
    kv = batch * facts.text.kv_bytes(sequence)
    if facts.text.cross_layers and facts.vision:  # Mllama's cross-attention KV over the image tokens
        image_tokens = facts.vision.tokens_to_text * facts.images_per_input
        kv += batch * facts.text.cross_layers * image_tokens * facts.text.kv_bytes_per_layer_token
    prefill = working_bytes(batch * prompt_tokens, facts.text.hidden, facts.text.intermediate)
    logits = batch * facts.text.vocab * 4  # the last position's float32 logits
    return kv, prefill + logits
