"""Where and in what precision a service's models run: bf16 on a GPU, float32 on the CPU, unless configured."""

from __future__ import annotations

import os

import torch

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


# The share of its GPU a torch service may allocate (`a100m plan` computes it when services share one).
MEMORY_FRACTION_ENV = "A100M_GPU_MEMORY_FRACTION"


def pick_device(requested: str = "auto") -> torch.device:
    device = (
        torch.device("cuda" if torch.cuda.is_available() else "cpu") if requested == "auto" else torch.device(requested)
    )
    fraction = os.environ.get(MEMORY_FRACTION_ENV, "")
    if device.type == "cuda" and fraction:
        # the caching allocator raises OutOfMemoryError past this share instead of taking a neighbour's memory
        torch.cuda.set_per_process_memory_fraction(float(fraction), device)
    return device


def pick_dtype(requested: str, device: torch.device) -> torch.dtype:
    if requested == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if requested not in DTYPES:
        raise ValueError(f"unknown dtype {requested!r} (expected auto, {', '.join(DTYPES)})")
    return DTYPES[requested]
