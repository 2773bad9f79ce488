"""`a100m models check`: each stage's request rendered through a model folder and compared with the
published format; the captioners' and the embedder's processors with the published settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from action100m.cli import main
from action100m.devtools.model_check import DIFFERS, MISMATCH, check_models

FORMATS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "model_formats"


def needs_formats() -> Path:
    if not FORMATS.exists():
        pytest.skip(f"the published model formats are not here ({FORMATS}); they live in the project's shared/ folder")
    return FORMATS


def test_the_tiny_models_speak_the_published_formats_at_their_own_sizes(tiny_models, capsys):
    root = tiny_models["gpt_oss"].parent
    assert main(["models", "check", str(root), "--no-request"]) == 0
    printed = capsys.readouterr().out
    assert "5 model(s) checked; format mismatch in 0" in printed
    reports = {r.model_type: r for r in check_models(root)}
    refine = reports["gpt_oss"]
    assert refine.request.startswith("<|start|>system<|message|>You are ChatGPT") and refine.tokens > 300
    assert refine.control_tokens == {
        "<|start|>": 4,
        "<|message|>": 3,
        "<|end|>": 3,
    }  # system, developer, user, assistant
    assert reports["perception_lm"].control_tokens["<|video|>"] == 1
    assert reports["mllama"].control_tokens["<|image|>"] == 1
    # the sizes shrink with the networks: listed as differences, never as format mismatches
    assert (DIFFERS, "crop side (px) 64; the published checkpoint uses 384") in reports["vjepa2"].findings
    assert not any(kind == MISMATCH for r in reports.values() for kind, _ in r.findings)


def test_a_gpt_oss_folder_with_another_tokenizer_is_a_mismatch(tiny_models, tmp_path, capsys):
    """A GPT-OSS config beside a tokenizer of another vocabulary (the Llama's): harmony's control
    tokens would be other ids to the model."""
    folder = tmp_path / "gpt-oss-wrong-tokenizer"
    folder.mkdir()
    shutil.copy(tiny_models["gpt_oss"] / "config.json", folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_models["mllama"] / name, folder)
    assert main(["models", "check", str(folder), "--no-request"]) == 1
    printed = capsys.readouterr().out
    assert "MISMATCH: " in printed and "control token(s) have other ids than harmony's" in printed
    assert "format mismatch in 1" in printed


def test_a_folder_without_models_is_an_error(tmp_path, capsys):
    assert main(["models", "check", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err


def published_processor_folder(kind: str, tiny_models, tmp_path: Path) -> Path:
    """A model folder with the published processor settings and chat template (from ../shared),
    the tiny model's config and tokenizer: what the real checkpoint's processor does, no weights."""
    from transformers import (
        AutoTokenizer,
        MllamaImageProcessor,
        MllamaProcessor,
        PerceptionLMImageProcessor,
        PerceptionLMProcessor,
        PerceptionLMVideoProcessor,
        VJEPA2VideoProcessor,
    )

    formats = needs_formats() / kind

    def settings(name: str) -> dict:
        values = json.loads((formats / name).read_text())
        return {k: v for k, v in values.items() if not k.endswith(("_type", "_class"))}

    folder = tmp_path / kind
    folder.mkdir()
    shutil.copy(tiny_models[kind] / "config.json", folder)
    if kind == "vjepa2":
        VJEPA2VideoProcessor(**settings("video_preprocessor_config.json")).save_pretrained(folder)
        return folder
    tokenizer = AutoTokenizer.from_pretrained(tiny_models[kind])
    template = (formats / "chat_template.jinja").read_text()
    if kind == "perception_lm":
        processor = PerceptionLMProcessor(
            video_processor=PerceptionLMVideoProcessor(**settings("video_preprocessor_config.json")),
            image_processor=PerceptionLMImageProcessor(**settings("preprocessor_config.json")),
            tokenizer=tokenizer,
            chat_template=template,
            **settings("processor_config.json"),
        )
    else:
        image = MllamaImageProcessor(**settings("preprocessor_config.json"))
        processor = MllamaProcessor(image_processor=image, tokenizer=tokenizer, chat_template=template)
    processor.save_pretrained(folder)
    return folder


def test_perception_lm_with_the_published_processor(tiny_models, tmp_path):
    from transformers import AutoProcessor

    folder = published_processor_folder("perception_lm", tiny_models, tmp_path)
    (report,) = check_models(folder)
    assert not report.findings, report.findings  # the published settings and template: nothing differs
    # every frame, whatever its shape, is one 448 px tile of 448/14/2 = 16 x 16 = 256 video tokens
    for name in ("320x320", "1080p", "portrait 1080p"):
        assert f"32 frames of {name}: each 448x448 px, 256 video tokens per frame" in " ".join(report.facts)
    # our caption request has the structure of the fixture's rendering: the template's default
    # system turn, then the user's turn with the video token before the question
    example = json.loads((FORMATS / "perception_lm" / "example_messages.json").read_text())
    processor = AutoProcessor.from_pretrained(folder)
    published = (FORMATS / "perception_lm" / "example_render.txt").read_text()
    assert processor.apply_chat_template(example["messages"], add_generation_prompt=True) == published
    system_turn = report.request.split("<|start_header_id|>user", 1)[0]
    assert system_turn.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n")
    assert report.request.endswith(
        "<|start_header_id|>user<|end_header_id|>\n\n<|video|>Describe this video in detail.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_llama_vision_with_the_published_processor(tiny_models, tmp_path):
    from transformers import AutoProcessor

    folder = published_processor_folder("mllama", tiny_models, tmp_path)
    (report,) = check_models(folder)
    assert not report.findings, report.findings
    # a 320 px frame fills one 560 px tile; a 1080p frame, landscape or portrait, all four
    assert "320x320 frame: 1 tile(s) of 560 px" in report.facts
    assert (
        "1080p frame: 4 tile(s) of 560 px" in report.facts
        and "portrait 1080p frame: 4 tile(s) of 560 px" in report.facts
    )
    # our request is the fixture's image-and-text rendering with our question: no system turn (the
    # published template refuses one beside an image), the image token first
    published = (FORMATS / "mllama" / "example_render_user_image.txt").read_text()
    assert report.request == published.replace("Describe this image.", "Describe this image in detail.")
    processor = AutoProcessor.from_pretrained(folder)
    ids = processor(text=[report.request], images=[[__import__("numpy").zeros((320, 320, 3), "uint8")]])["input_ids"][0]
    assert list(ids).count(processor.tokenizer.convert_tokens_to_ids("<|image|>")) == 1  # cross-attention: one token


def test_vjepa2_with_the_published_processor(tiny_models, tmp_path):
    import numpy as np
    from transformers import AutoVideoProcessor

    folder = published_processor_folder("vjepa2", tiny_models, tmp_path)
    (report,) = check_models(folder)
    assert not report.findings, report.findings
    assert all("-> 384x384 px" in fact for fact in report.facts if "frames ->" in fact)
    # 1080p: the shortest edge to 438 (1920 -> 778 wide), then the centre 384 columns of 778, which
    # are the original's columns ~486 to ~1434: a black band a little wider fills the crop, one a
    # little narrower leaves its edges white
    processor = AutoVideoProcessor.from_pretrained(folder)
    black, white = (0 - 0.485) / 0.229, (1 - 0.485) / 0.229  # ImageNet normalisation, red channel

    def crop_of_band(first: int, last: int) -> np.ndarray:
        frame = np.full((1080, 1920, 3), 255, np.uint8)
        frame[:, first:last] = 0
        return processor(frame[None], return_tensors="np")["pixel_values_videos"][0, 0, 0]

    wider, narrower = crop_of_band(466, 1454), crop_of_band(506, 1414)
    assert wider.shape == (384, 384)
    assert wider[192, [0, 192, 383]] == pytest.approx([black] * 3, abs=1e-3)
    assert narrower[192, [0, 383]] == pytest.approx([white] * 2, abs=1e-3) and narrower[192, 192] == pytest.approx(
        black, abs=1e-3
    )


def test_an_empty_or_broken_weights_file_is_a_mismatch_and_a_broken_config_one_line(tiny_models, tmp_path, capsys):
    folder = tmp_path / "gpt_oss"
    shutil.copytree(tiny_models["gpt_oss"], folder)
    weights = next(folder.glob("*.safetensors"))
    weights.write_bytes(b"")
    (report,) = check_models(folder)
    assert (MISMATCH, f"{weights.name} is empty (0 bytes)") in report.findings
    weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    (report,) = check_models(folder)
    assert any(kind == MISMATCH and "is not a safetensors file" in what for kind, what in report.findings)
    (folder / "config.json").write_text("{not json")
    assert main(["models", "check", str(folder)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {folder / 'config.json'}: not a model's config") and len(error.splitlines()) == 1
