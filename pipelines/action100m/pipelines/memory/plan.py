"""The GPU memory plan of a one-machine run (`a100m plan`, and `a100m run` on a GPU machine).

For each service: its models' weights (`common/model_memory`), the activations of its configured
batch, the refiner's KV cache; then the schedule that fits the GPUs:

- `together`: every service at once, each with an explicit budget: its own GPU(s) when there are
  enough ("spread"), else sharing (the refiner's vLLM `gpu_memory_utilization` computed from its
  budget, the torch services capped with their per-process memory fraction);
- `stagewise`: one service at a time, each with every GPU it can use;
- nothing: a service does not fit even alone; the plan says which and what to change.

Every estimate is an upper bound built from the model's shapes, documented in `Need.parts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from action100m.pipelines.memory.facts import GIB, ModelFacts, model_facts, working_bytes

# A CUDA context, cuBLAS / cuDNN workspaces and the caching allocator's slack, per process.
PROCESS_OVERHEAD_BYTES = int(0.75 * GIB)
# vLLM's own: CUDA graphs, the sampler and the profiled activations of a chunked-prefill step.
VLLM_RUNTIME_BYTES = int(1.5 * GIB)
VLLM_BATCHED_TOKENS = 8192  # tokens of one chunked-prefill step (vLLM's default on large GPUs)
# Of each GPU's memory, the share a plan hands out (the rest: the driver, fragmentation, other users).
USABLE_SHARE = 0.95
# Budget a torch service gets above its estimate when sharing a GPU.
TORCH_HEADROOM = 1.15
TENSOR_PARALLEL_SIZES = (1, 2, 4, 8)
GPU_SERVICES = ("embedder", "captioner", "refiner")
PROMPT_TOKENS_PER_CAPTION = 96  # the captioners' instruction and chat markup


@dataclass
class Need:
    """What one service takes on the GPU, part by part (bytes); `gpus` > 1 splits it (tensor parallel)."""

    service: str
    models: list[str]
    parts: dict[str, int]
    kv_bytes_per_token: int = 0  # the refiner: what the rest of its budget buys
    typical_sequence: int = 0
    gpus: int = 1
    on_gpu: bool = True

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    def per_gpu(self, gpus: int) -> int:
        shared = self.parts.get("runtime", 0) + self.parts.get("process", 0)
        return (self.total - shared) // gpus + shared


@dataclass
class Placement:
    service: str
    gpus: list[int]
    budget_bytes: int  # per GPU
    env: dict[str, str]


@dataclass
class Schedule:
    kind: str  # together | stagewise | none
    placements: list[Placement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class MemoryPlan:
    gpus: list[int]
    gpu_bytes: int
    needs: list[Need]
    schedule: Schedule

    def refiner_shares_a_gpu(self) -> bool:
        placed = {p.service: set(p.gpus) for p in self.schedule.placements}
        mine = placed.get("refiner", set())
        return self.schedule.kind == "together" and any(mine & gpus for s, gpus in placed.items() if s != "refiner")

    def to_dict(self) -> dict[str, object]:
        return {
            "gpus": self.gpus,
            "gpu_gib": round(self.gpu_bytes / GIB, 2),
            "rows": [
                {
                    "service": need.service,
                    "models": need.models,
                    **{f"{name}_gib": round(size / GIB, 2) for name, size in need.parts.items()},
                    "total_gib": round(need.total / GIB, 2),
                    "on_gpu": need.on_gpu,
                }
                for need in self.needs
            ],
            "schedule": asdict(self.schedule),
        }


def _decoder_needs(facts: ModelFacts, batch: int, prompt_tokens: int, new_tokens: int) -> tuple[int, int]:
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


def embedder_need(env: Mapping[str, str]) -> Need:
    from action100m.embedder.service import EmbedderConfig

    config = EmbedderConfig.from_env(env)
    facts = model_facts(config.model)
    assert facts.vision is not None, f"{config.model}: no video encoder shape"
    batch = config.windows_per_batch
    frames = facts.vision.tokens_per_image  # (frames / tubelet) x patches per window
    window_bytes = facts.vision.input_pixels * 3 * 2  # one window of bf16 RGB frames
    return Need(
        "embedder",
        [facts.name],
        {
            "weights": facts.weight_bytes,
            "activations": batch * working_bytes(frames, facts.vision.hidden, facts.vision.intermediate),
            "inputs": (batch + 2) * window_bytes,  # the batch and the device frame buffer (about two windows)
            "process": PROCESS_OVERHEAD_BYTES,
        },
    )


def captioner_need(env: Mapping[str, str]) -> Need:
    from action100m.captioner.prompts import CaptionLimits
    from action100m.captioner.service import CaptionerConfig

    config = CaptionerConfig.from_env(env)
    limits = CaptionLimits()
    video, image = model_facts(config.video_model), model_facts(config.image_model)
    batch = config.batch_size
    # Perception-LM over 32 frames of a node: its encoder on every frame, then the decoder's generation.
    assert video.vision is not None and image.vision is not None
    video_encoder = (
        batch
        * limits.video_frames
        * working_bytes(video.vision.tokens_per_image, video.vision.hidden, video.vision.intermediate)
    )
    video_prompt = limits.video_frames * video.vision.tokens_to_text + PROMPT_TOKENS_PER_CAPTION
    video_kv, video_work = _decoder_needs(video, batch, video_prompt, limits.caption_max_new_tokens)
    # Llama 3.2 Vision on a leaf's middle frame: its tiles through the encoder, then generation.
    tiles = batch * image.images_per_input
    image_encoder = tiles * working_bytes(image.vision.tokens_per_image, image.vision.hidden, image.vision.intermediate)
    image_kv, image_work = _decoder_needs(image, batch, PROMPT_TOKENS_PER_CAPTION, limits.image_max_new_tokens)
    # The two models are loaded together and run one after the other: the larger peak counts.
    return Need(
        "captioner",
        [video.name, image.name],
        {
            "weights": video.weight_bytes + image.weight_bytes,
            "activations": max(video_encoder + video_work, image_encoder + image_work),
            "kv_cache": max(video_kv, image_kv),
            "process": PROCESS_OVERHEAD_BYTES,
        },
    )


def refiner_need(env: Mapping[str, str]) -> Need:
    from action100m.refiner.service import RefinerConfig

    config = RefinerConfig.from_env(env)
    if config.backend == "openai":
        return Need("refiner", [f"{config.model} (served at {config.openai_url or 'an OpenAI URL'})"], {}, on_gpu=False)
    facts = model_facts(config.model)
    assert facts.text is not None, f"{config.model}: no decoder shape"
    text = facts.text
    runtime = VLLM_RUNTIME_BYTES + working_bytes(VLLM_BATCHED_TOKENS, text.hidden, text.intermediate)
    runtime += config.max_num_seqs * text.vocab * 4
    # vLLM refuses to start without room for one sequence of the full context; the rest of its
    # budget becomes KV cache, which sets how many requests run at once.
    typical = min(config.max_model_len, config.subtree_token_budget + 2000 + config.max_output_tokens // 2)
    return Need(
        "refiner",
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


def service_needs(env: Mapping[str, str]) -> list[Need]:
    segmenter = Need("segmenter", ["(scikit-learn, CPU)"], {}, on_gpu=False)
    return [embedder_need(env), segmenter, captioner_need(env), refiner_need(env)]


def _gpu_env(service: str, gpus: Sequence[int], budget: int, gpu_bytes: int) -> dict[str, str]:
    env = {"CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus))}
    share = f"{min(budget / gpu_bytes, USABLE_SHARE):.3f}"
    if service == "refiner":
        env["A100M_REFINER_GPU_MEMORY_UTILIZATION"] = share
        env["A100M_REFINER_TENSOR_PARALLEL_SIZE"] = str(len(gpus))
    else:
        env["A100M_GPU_MEMORY_FRACTION"] = share
    return env


def _smallest_split(need: Need, usable: int, available: int) -> int | None:
    """The fewest GPUs (a tensor-parallel size) on which `need` fits; torch services use one."""
    sizes = TENSOR_PARALLEL_SIZES if need.service == "refiner" else (1,)
    for size in sizes:
        if size <= available and size >= need.gpus and need.per_gpu(size) <= usable:
            return size
    return None


def _refiner_note(need: Need, budget: int, gpus: int) -> str:
    left = budget - need.per_gpu(gpus) + need.parts["kv_cache"] // gpus
    sequences = left * gpus // max(need.kv_bytes_per_token * need.typical_sequence, 1)
    return (
        f"refiner: {left * gpus / GIB:.1f} GiB of KV cache over {gpus} GPU(s): about {sequences} requests of "
        f"{need.typical_sequence} tokens at once"
    )


def _together(needs: list[Need], gpus: list[int], gpu_bytes: int) -> Schedule | None:
    usable = int(gpu_bytes * USABLE_SHARE)
    on_gpu = sorted((n for n in needs if n.on_gpu), key=lambda n: n.total, reverse=True)
    found = {n.service: _smallest_split(n, usable, len(gpus)) for n in on_gpu}
    splits = {name: split for name, split in found.items() if split is not None}
    if len(splits) < len(found):
        return None
    free = {gpu: usable for gpu in gpus}
    assigned: dict[str, list[int]] = {}
    if sum(splits.values()) <= len(gpus):  # spread: each service on GPUs of its own
        remaining = list(gpus)
        for need in on_gpu:
            size = splits[need.service]
            assigned[need.service], remaining = remaining[:size], remaining[size:]
            for gpu in assigned[need.service]:
                free[gpu] -= need.per_gpu(size)
    else:  # share: largest service first, onto the GPUs with the most room left
        for need in on_gpu:
            size = splits[need.service]
            fitting = sorted((g for g in gpus if free[g] >= need.per_gpu(size)), key=lambda g: -free[g])
            if len(fitting) < size:
                return None
            assigned[need.service] = fitting[:size]
            for gpu in fitting[:size]:
                free[gpu] -= need.per_gpu(size)
    placements, notes = [], []
    # torch services get headroom out of what is free; the refiner then takes what is left (its KV cache)
    for need in sorted(on_gpu, key=lambda n: (n.service == "refiner", GPU_SERVICES.index(n.service))):
        mine = assigned[need.service]
        alone = not any(other != need.service and set(owned) & set(mine) for other, owned in assigned.items())
        per = need.per_gpu(len(mine))
        if alone:
            budget = usable
        else:
            extra = min(free[g] for g in mine)
            if need.service != "refiner":
                extra = min(extra, int(per * (TORCH_HEADROOM - 1)))
            budget = per + extra
            for gpu in mine:
                free[gpu] -= extra
        placements.append(Placement(need.service, mine, budget, _gpu_env(need.service, mine, budget, gpu_bytes)))
        if need.service == "refiner":
            notes.append(_refiner_note(need, budget, len(mine)))
    placements.sort(key=lambda p: GPU_SERVICES.index(p.service))
    shared = {g: [p.service for p in placements if g in p.gpus] for g in gpus}
    shared = {g: names for g, names in shared.items() if len(names) > 1}
    if not shared:
        notes.insert(0, "spread: no two services share a GPU")
    for gpu, names in shared.items():
        first = (
            " (the refiner starts first: vLLM sizes itself from the memory free at its start)"
            if "refiner" in names
            else ""
        )
        notes.insert(0, f"GPU {gpu} shared by {', '.join(names)}, each within its budget{first}")
    unused = [g for g in gpus if not any(g in p.gpus for p in placements)]
    if unused:
        notes.append(f"GPU(s) {','.join(map(str, unused))} unused: `a100m run` starts one replica per service")
    return Schedule("together", placements, notes)


def _stagewise(needs: list[Need], gpus: list[int], gpu_bytes: int) -> Schedule:
    usable = int(gpu_bytes * USABLE_SHARE)
    placements, problems, notes = [], [], []
    for need in (n for n in needs if n.on_gpu):
        split = _smallest_split(need, usable, len(gpus))
        if split is None:
            problems.append(
                f"the {need.service} needs {need.per_gpu(1) / GIB:.1f} GiB "
                + (
                    f"(at least {need.per_gpu(min(len(gpus), 8)) / GIB:.1f} GiB per GPU over {min(len(gpus), 8)}) "
                    if need.service == "refiner" and len(gpus) > 1
                    else ""
                )
                + f"and a GPU has {usable / GIB:.1f} GiB to give"
            )
            continue
        mine = gpus[:split]
        placements.append(Placement(need.service, mine, usable, _gpu_env(need.service, mine, usable, gpu_bytes)))
        if need.service == "refiner":
            notes.append(_refiner_note(need, usable, split))
    if problems:
        return Schedule("none", [], problems + _advice(needs, usable))
    return Schedule(
        "stagewise", placements, ["one service at a time, in stage order, each with the GPUs above", *notes]
    )


def _advice(needs: list[Need], usable: int) -> list[str]:
    advice = ["what to change:"]
    by_name = {n.service: n for n in needs}
    refiner = by_name["refiner"]
    if refiner.on_gpu and refiner.per_gpu(1) > usable:
        advice.append(
            "  - a smaller refiner (--preset single-gpu: gpt-oss-20b), more GPUs for it (--gpus 0,1,...: tensor "
            "parallel), or the openai backend against a model served elsewhere (A100M_REFINER_BACKEND=openai)"
        )
    captioner = by_name["captioner"]
    if captioner.per_gpu(1) > usable:
        advice.append(
            "  - a smaller caption batch (A100M_CAPTION_BATCH_SIZE) or a GPU with more memory: the captioner "
            f"holds both of its models ({captioner.parts['weights'] / GIB:.1f} GiB of weights)"
        )
    if by_name["embedder"].per_gpu(1) > usable:
        advice.append("  - fewer windows per batch (A100M_WINDOWS_PER_BATCH)")
    return advice


def plan_memory(
    env: Mapping[str, str],
    gpus: Sequence[int],
    gpu_bytes: int,
    schedule: str = "auto",
    elsewhere: Sequence[str] = (),
) -> MemoryPlan:
    """The needs of the services configured by `env`, and the schedule that fits `gpus` of `gpu_bytes`;
    services in `elsewhere` run on another machine and take nothing here."""
    needs = [
        Need(n.service, [*n.models, "(running elsewhere)"], {}, on_gpu=False) if n.service in elsewhere else n
        for n in service_needs(env)
    ]
    gpus = list(gpus)
    chosen: Schedule | None = None
    if schedule in ("auto", "together"):
        chosen = _together(needs, gpus, gpu_bytes)
        if chosen is None and schedule == "together":
            fallback = _stagewise(needs, gpus, gpu_bytes)
            reason = "the services do not fit the GPUs together"
            return MemoryPlan(gpus, gpu_bytes, needs, Schedule("none", [], [reason, *fallback.notes]))
    if chosen is None:
        chosen = _stagewise(needs, gpus, gpu_bytes)
        if chosen.kind == "stagewise" and schedule == "auto":
            total = sum(n.total for n in needs if n.on_gpu)
            chosen.notes.insert(
                0,
                f"together they need {total / GIB:.1f} GiB, more than {len(gpus)} GPU(s) of "
                f"{gpu_bytes * USABLE_SHARE / GIB:.1f} GiB usable hold; each fits alone",
            )
    return MemoryPlan(gpus, gpu_bytes, needs, chosen)


def detected_gpus() -> tuple[list[int], int]:
    """This machine's CUDA GPUs (as CUDA_VISIBLE_DEVICES numbers them) and the smallest one's memory."""
    try:
        import torch
    except ImportError:
        return [], 0
    if not torch.cuda.is_available():
        return [], 0
    count = torch.cuda.device_count()
    return list(range(count)), min(torch.cuda.get_device_properties(i).total_memory for i in range(count))


@dataclass(frozen=True)
class TargetGpus:
    gpus: list[int]  # what to plan for: --gpus, else every visible GPU
    gpu_bytes: int  # each one's memory: --gpu-memory-gib, else the smallest visible (0: unknown)
    visible: int  # CUDA GPUs this machine has


def target_gpus(gpus: str | None = None, gpu_memory_gib: float | None = None) -> TargetGpus:
    """The GPUs a plan is for, from the options where given and from this machine otherwise."""
    visible, measured = detected_gpus()
    chosen = parse_gpus(gpus) if gpus else visible
    return TargetGpus(chosen, int(gpu_memory_gib * GIB) if gpu_memory_gib else measured, len(visible))


def format_plan(plan: MemoryPlan) -> str:
    columns = ("weights", "activations", "inputs", "kv_cache", "runtime", "process")
    header = ["service", *columns, "total GiB", "models"]
    rows = [
        [
            need.service,
            *[f"{need.parts[c] / GIB:.2f}" if c in need.parts else "-" for c in columns],
            f"{need.total / GIB:.2f}" if need.on_gpu else "-",
            ", ".join(need.models),
        ]
        for need in plan.needs
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        f"GPUs {','.join(map(str, plan.gpus))}: {plan.gpu_bytes / GIB:.1f} GiB each, {USABLE_SHARE:.0%} of it planned",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
        *["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows],
        "",
        f"schedule: {plan.schedule.kind}",
    ]
    for p in plan.schedule.placements:
        settings = " ".join(f"{k}={v}" for k, v in p.env.items())
        lines.append(
            f"  {p.service:<10} GPU {','.join(map(str, p.gpus)):<8} {p.budget_bytes / GIB:6.1f} GiB  {settings}"
        )
    lines += [f"  {note}" for note in plan.schedule.notes]
    return "\n".join(lines)


def parse_gpus(text: str) -> list[int]:
    try:
        gpus = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--gpus {text!r}: expected GPU numbers separated by commas (0,1,2)") from None
    if not gpus or len(set(gpus)) != len(gpus) or min(gpus) < 0:
        raise ValueError(f"--gpus {text!r}: expected distinct GPU numbers (0,1,2)")
    return gpus
