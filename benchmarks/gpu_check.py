"""The first thing to run on a GPU box: every stage, its real service, its CUDA path, measured.

Builds the models (`--shapes paper`: the paper's architectures at their published sizes with random
weights, no download, about 33 GB of disk; `--shapes tiny`: the tiny test models), writes a few
synthetic videos with speech (espeak-ng, when installed), then runs the stages in pipeline order,
each with its own service process started alone on the machine (as `a100m run` starts them; bf16 on
CUDA, the services' batching, vLLM with its memory utilisation), through the executor:

  service      the service, and the model it ran
  start_s      from process start to SERVING (model load, vLLM's profiling and graphs)
  first_s      one video alone, its call's wall time: the time to a first result
  wall_s       every video in one call (they share batches)
  throughput   per second over that call: frames decoded (embed), nodes (segment), caption tokens
               (caption), transcript entries (transcribe), generated tokens (refine)
  peak_gib     the service's peak memory: on CUDA, its process tree's GPU memory as the driver
               reports it (nvidia-smi, sampled every 0.2 s); on CPU, its process tree's peak RSS
  plan_gib     what `a100m plan` predicts the service needs (weights, activations, KV cache)
A large gap between peak_gib and plan_gib is a bug in the plan or a leak in the service. vLLM takes
A100M_REFINER_GPU_MEMORY_UTILIZATION of the GPU whatever the model needs (its KV cache fills it).
Cost grows linearly with video length in every stage but segment (quadratic in a video's windows).

    python benchmarks/gpu_check.py --shapes paper [--videos 3] [--seconds 60] [--json]
    python benchmarks/gpu_check.py --shapes tiny            # any machine, CPU included
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from report import emit, parser

from action100m.common.store import ArtifactStore
from action100m.devtools.synthetic_video import spoken, write_video
from action100m.pipelines.executor import execute
from action100m.pipelines.local.presets import preset_env, preset_options
from action100m.pipelines.local.services import local_services
from action100m.pipelines.memory.plan import service_needs
from action100m.pipelines.plan import plan_run
from action100m.pipelines.registry import STAGES, stage
from action100m.pipelines.state import StageStats

# what each stage's throughput counts, from its result counters
THROUGHPUT = {
    "transcribe": ("segments", "entries/s"),
    "embed": ("frames_decoded", "frames/s"),
    "segment": ("nodes", "nodes/s"),
    "caption": ("output_tokens", "tokens/s"),
    "refine": ("output_tokens", "tokens/s"),
}
SENTENCES = ("Now tighten the chain to five newton metres.", "Check that the wheel turns freely before you ride.")


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def model_settings(shapes: str, models: Path, cuda: bool) -> dict[str, str]:
    """The services' settings for the chosen models."""
    if shapes == "tiny":
        settings = preset_env("tiny", models)
        if cuda:  # the tiny preset pins the CPU; here the CUDA paths are the point
            settings = {k: v for k, v in settings.items() if k not in ("A100M_DEVICE", "A100M_REFINER_ENFORCE_EAGER")}
        return settings
    if not cuda:
        raise SystemExit("--shapes paper needs a CUDA GPU (33 GB of bf16 weights); use --shapes tiny here")
    from action100m.devtools.paper_shapes import build_paper_shaped

    built = build_paper_shaped(models)
    return {
        "A100M_EMBEDDER_MODEL": str(built["vjepa2"]),
        "A100M_CAPTIONER_VIDEO_MODEL": str(built["perception_lm"]),
        "A100M_CAPTIONER_IMAGE_MODEL": str(built["mllama"]),
        "A100M_TRANSCRIBER_MODEL": str(built["whisper"]),
        "A100M_REFINER_MODEL": str(built["gpt_oss"]),
        "A100M_REFINER_LOAD_FORMAT": "dummy",  # vLLM draws GPT-OSS-20B's weights itself
        "A100M_REFINER_MAX_REASONING_TOKENS": "256",  # random weights would reason to the token limit
        "A100M_REFINER_MAX_OUTPUT_TOKENS": "1024",
        "A100M_TRANSCRIBE_MAX_NEW_TOKENS": "64",
        "HF_HUB_OFFLINE": "1",
    }


def write_videos(folder: Path, count: int, seconds: float) -> list[Path]:
    """Videos with scene cuts every few seconds and, where espeak-ng is installed, speech."""
    import numpy as np

    fps = 25
    frames = int(seconds * fps)
    voice = None
    if shutil.which("espeak-ng"):
        said = [spoken(s, silence_after=1.0) for s in SENTENCES]
        voice = np.tile(np.concatenate(said), int(seconds * 16000 / sum(len(s) for s in said)) + 1)[
            : int(seconds * 16000)
        ]
    return [
        write_video(
            folder / f"check-{index}.mp4",
            frames=frames,
            fps=fps,
            size=(640, 360),
            scene_starts=tuple(range(0, frames, fps * (4 + index))),
            soundtrack=voice,
        )
        for index in range(count)
    ]


class PeakMemory:
    """The peak memory of a process and its children, sampled on a thread."""

    def __init__(self, pid: int, cuda: bool):
        self.pid, self.cuda, self.peak = pid, cuda, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> set[int]:
        pids, parents = {self.pid}, {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                parents[int(stat.parent.name)] = int(fields[1])
            except (OSError, ValueError, IndexError):
                continue
        grew = True
        while grew:
            found = {pid for pid, parent in parents.items() if parent in pids} - pids
            pids |= found
            grew = bool(found)
        return pids

    def _sample(self) -> int:
        pids = self._tree()
        if self.cuda:
            out = subprocess.run(
                ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            rows = [line.split(",") for line in out.splitlines() if line.strip()]
            return sum(int(mib) * 1024**2 for pid, mib in rows if int(pid) in pids)
        total = 0
        for pid in pids:  # the peak resident set of each process (VmHWM), summed over the tree
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            total += next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0)
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self._sample())

    def stop(self) -> int:
        self.peak = max(self.peak, self._sample())
        self._stop.set()
        self._thread.join()
        return self.peak


def stage_options(shapes: str) -> dict:
    """Generation lengths: random weights never stop by themselves, so each caption and answer runs
    to its limit; the paper's limits (1024 tokens a caption) would make the check an hour long."""
    if shapes == "tiny":
        return preset_options("tiny")
    caption = stage("caption").options(caption_max_new_tokens=128, action_max_new_tokens=32, image_max_new_tokens=128)
    return {"caption": caption}


def run_stage(spec, shard, addresses, store, options) -> StageStats:  # type: ignore[no-untyped-def]
    state = execute(shard, [spec], addresses, options, store=store)
    return state.stats_of(spec.name)


def check(shapes: str, videos: int, seconds: float, models_dir: str | None) -> tuple[list[dict], list[str]]:
    cuda = cuda_available()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        models = Path(models_dir) if models_dir else root / "models"
        settings = model_settings(shapes, models, cuda)
        predicted = {}
        for need in service_needs({**os.environ, **settings}):
            predicted[need.service] = need.total / 1024**3 if need.on_gpu else None
        files = write_videos(root / "videos", videos, seconds)
        store = ArtifactStore([f"file://{root}"])
        lines = [json.dumps({"video_uid": f.stem, "uri": f"file://{f}"}) + "\n" for f in files]
        store.put_bytes(f"file://{root}/all.jsonl", "".join(lines).encode())
        store.put_bytes(f"file://{root}/first.jsonl", lines[0].encode())
        # the first video alone, then all of them, under separate prefixes: nothing found cached
        first_plan = plan_run(
            store, f"file://{root}/first.jsonl", f"file://{root}/first", shard_size=1, modes={"transcribe": "always"}
        )
        all_plan = plan_run(
            store, f"file://{root}/all.jsonl", f"file://{root}/all", shard_size=videos, modes={"transcribe": "always"}
        )
        first_shard = first_plan.shard(store, 0, f"file://{root}/first")
        all_shard = all_plan.shard(store, 0, f"file://{root}/all")
        options = stage_options(shapes)
        service_settings = {
            **settings,
            "A100M_ALLOWED_ROOTS": f"file://{root}",
            "A100M_READ_ONLY_ROOTS": f"file://{root}",
        }
        for spec in STAGES:
            started = time.monotonic()
            with local_services(service_settings, root / "logs", only=[spec.name]) as services:
                start_s = time.monotonic() - started
                process = services.supervisor.services[spec.service].process
                memory = PeakMemory(process.pid, cuda)
                first = run_stage(spec, first_shard, services.addresses, store, options)
                stats = run_stage(spec, all_shard, services.addresses, store, options)
                peak = memory.stop()
                models_info = list(first_shard.stages[spec.name].models)
            counter, unit = THROUGHPUT[spec.name]
            failed = first.failed + stats.failed
            rows.append(
                {
                    "service": spec.service,
                    "model": ", ".join(Path(m).name for m in models_info) or "-",
                    "start_s": round(start_s, 1),
                    "first_s": round(first.seconds, 2),
                    "wall_s": round(stats.seconds, 2),
                    "throughput": round(stats.counters.get(counter, 0) / max(stats.seconds, 1e-9), 1),
                    "unit": unit,
                    "peak_gib": round(peak / 1024**3, 2),
                    "plan_gib": round(predicted[spec.service], 2) if predicted.get(spec.service) is not None else None,
                    "videos_failed": failed,
                }
            )
    device = "CUDA: " + _gpu_name() if cuda else "CPU (no CUDA GPU): peak_gib is resident memory, not GPU memory"
    notes = [
        f"shapes: {shapes}; {videos} videos of {seconds:.0f} s (640x360, 25 fps); device: {device}",
        "first_s: one video alone; wall_s and throughput: all videos in one call; plan_gib: `a100m plan`'s prediction (GPU services)",
        f"generation limits: { ({k: str(v).replace(chr(10), ' ') for k, v in options.items()}) }",
    ]
    return rows, notes


def _gpu_name() -> str:
    import torch

    return f"{torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).total_memory / 1024**3:.0f} GiB"


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--shapes", choices=("tiny", "paper"), default="tiny")
    p.add_argument("--videos", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20.0, help="each video's length")
    p.add_argument("--models", default=None, help="where to build (or find) the models; default a temporary folder")
    args = p.parse_args()
    with contextlib.redirect_stdout(sys.stderr):  # the services' start-up lines: not the table's stream
        rows, notes = check(args.shapes, args.videos, args.seconds, args.models)
    emit(rows, args.json, notes)
    if any(row["videos_failed"] for row in rows):
        raise SystemExit("some videos failed: see the services' logs")


if __name__ == "__main__":
    main()
