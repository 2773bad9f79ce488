"""Checks before any service starts on this machine: each problem is one line, not a traceback
minutes later.

- a CUDA GPU when the models need one (any preset but `tiny`, unless those services run elsewhere);
- a Hugging Face token when a gated model is named and not already downloaded;
- disk room in the Hugging Face cache for the weights not yet there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..memory.facts import GIB, UnknownModel, model_facts
from ..registry import STAGES, stage

# Models whose Hub repositories ask users to accept a license first (a token of an account that did).
GATED_PREFIXES = ("meta-llama/", "facebook/Perception-LM")


def configured_models(env: Mapping[str, str]) -> dict[str, list[str]]:
    """The models each service would load with `env` (service -> model names)."""
    models = {spec.service: spec.models(env) for spec in STAGES}
    return {service: names for service, names in models.items() if names}


def is_downloaded(model: str) -> bool:
    if Path(model).is_dir():
        return True
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(model, "config.json"), str)


def _has_token(env: Mapping[str, str]) -> bool:
    if env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN"):
        return True
    try:
        from huggingface_hub import get_token
    except ImportError:
        return False
    return bool(get_token())


def hub_cache(env: Mapping[str, str]) -> Path:
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"])
    return Path(env.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"


def hardware_problems(
    env: Mapping[str, str],
    services: Sequence[str],
    needs_gpu: bool,
    gpu_count: int,
    free_bytes: int | None = None,
) -> list[str]:
    """What stops the services in `services` from starting here, one line each ([] when nothing)."""
    problems: list[str] = []
    on_gpu = [s for s in services if stage(s).on_gpu]
    if needs_gpu and on_gpu and gpu_count == 0:
        problems.append(
            f"the {', '.join(on_gpu)} need a CUDA GPU for these models and none is visible here "
            "(torch.cuda.is_available() is False): use --preset tiny, or --services to use services running elsewhere"
        )
    models = [m for s in on_gpu for m in configured_models(env).get(s, [])]
    missing = [m for m in dict.fromkeys(models) if not is_downloaded(m)]
    gated = [m for m in missing if m.startswith(GATED_PREFIXES)]
    if gated and env.get("HF_HUB_OFFLINE", "") not in ("1", "true") and not _has_token(env):
        problems.append(
            f"{', '.join(gated)} {'is' if len(gated) == 1 else 'are'} gated on the Hugging Face Hub and not "
            "downloaded: accept the license on the model's page, then set HF_TOKEN (or `huggingface-cli login`)"
        )
    if env.get("HF_HUB_OFFLINE", "") in ("1", "true") and missing:
        problems.append(f"HF_HUB_OFFLINE is set and {', '.join(missing)} not downloaded")
    need = 0
    for model in missing:
        try:
            need += model_facts(model).weight_bytes
        except UnknownModel:
            continue  # its size is unknown until the Hub answers; the service says so if it cannot
    if need:
        cache = hub_cache(env)
        folder = next((p for p in [cache, *cache.parents] if p.exists()), Path("/"))
        free = shutil.disk_usage(folder).free if free_bytes is None else free_bytes
        if free < need:
            problems.append(
                f"the weights still to download ({need / GIB:.0f} GiB: {', '.join(missing)}) do not fit the "
                f"{free / GIB:.0f} GiB free under {cache}: free space, or set HF_HOME to a larger disk"
            )
    return problems


def environment(settings: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the services would start with: this process's (or `base`), then the run's settings."""
    return {**(os.environ if base is None else base), **settings}
