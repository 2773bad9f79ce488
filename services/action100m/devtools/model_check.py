"""`a100m models check DIR`: does a model folder speak the format its stage sends, as published?

For each stage that uses the model, the report renders the request of a sample segment exactly as
the service renders it (the refiner through harmony, the captioner through the model's own chat
template and processor), counts its tokens and the control tokens in it, and compares it with what
the published model expects:

- a **mismatch** (exit 1) is a format the model would misread: control tokens with other ids, a
  tokenizer that splits text otherwise than the model's, a request without the turn structure;
- a **difference** is a setting other than the published checkpoint's (tile size, frames, crop):
  legitimate for another variant or a tiny test model, shown so that it is a choice.

The published facts below are numbers and token names from the models' configuration files
(openai/gpt-oss-20b, facebook/Perception-LM-3B, meta-llama/Llama-3.2-11B-Vision-Instruct,
facebook/vjepa2-vitg-fpc64-384, openai/whisper-large-v3); the GPT-OSS reference is `openai_harmony`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MISMATCH, DIFFERS = "mismatch", "differs"

# processor settings of the published checkpoints: (what, published value, how to read it here)
PUBLISHED_SETTINGS: dict[str, list[tuple[str, Any, Callable[[Any], Any]]]] = {
    "perception_lm": [
        ("video frame side (px)", 448, lambda p: p.video_processor.size["height"]),
        ("image tile side (px)", 448, lambda p: p.image_processor.tile_size),
        ("image tiles at most", 36, lambda p: p.image_processor.max_num_tiles),
        ("image input", "thumb+tile", lambda p: p.image_processor.vision_input_type),
        ("patch size", 14, lambda p: p.patch_size),
        ("pooling ratio", 2, lambda p: p.pooling_ratio),
    ],
    "mllama": [
        ("tile side (px)", 560, lambda p: p.image_processor.size["height"]),
        ("tiles at most", 4, lambda p: p.image_processor.max_image_tiles),
    ],
    "vjepa2": [
        ("crop side (px)", 384, lambda p: p.crop_size["height"]),
        ("resize shortest edge (px)", 438, lambda p: p.size["shortest_edge"]),
        ("mean", [0.485, 0.456, 0.406], lambda p: [round(x, 3) for x in p.image_mean]),
        ("std", [0.229, 0.224, 0.225], lambda p: [round(x, 3) for x in p.image_std]),
    ],
    "whisper": [
        ("mel bins", 128, lambda p: p.feature_size),
        ("sampling rate (Hz)", 16000, lambda p: p.sampling_rate),
        ("window (s)", 30, lambda p: p.chunk_length),
    ],
}
# the frames the service hands the model: square 320 px video frames; a leaf's middle frame as it was decoded
SAMPLE_FRAMES = {"320x320": (320, 320), "1080p": (1080, 1920), "portrait 1080p": (1920, 1080)}
LLAMA3_TURN = re.compile(
    r"^(?P<bos><\|begin_of_text\|>)?"
    r"(?P<system><\|start_header_id\|>system<\|end_header_id\|>\n\n.*?<\|eot_id\|>)?"
    r"<\|start_header_id\|>user<\|end_header_id\|>\n\n(?P<media>(<\|image\|>|<\|video\|>)*)(?P<text>.*?)<\|eot_id\|>"
    r"<\|start_header_id\|>assistant<\|end_header_id\|>\n\n$",
    re.DOTALL,
)


@dataclass
class StageReport:
    model: str
    model_type: str
    stage: str
    request: str = ""  # the rendered request (text)
    tokens: int = 0
    control_tokens: dict[str, int] = field(default_factory=dict)
    facts: list[str] = field(default_factory=list)  # measured: vision tokens per frame, tiles ...
    findings: list[tuple[str, str]] = field(default_factory=list)  # (MISMATCH | DIFFERS, what)

    @property
    def mismatched(self) -> bool:
        return any(kind == MISMATCH for kind, _ in self.findings)


def check_models(directory: str | Path) -> list[StageReport]:
    """Reports for the model in `directory`, or for each model folder directly under it."""
    root = Path(directory)
    folders = (
        [root] if (root / "config.json").exists() else sorted(p for p in root.iterdir() if (p / "config.json").exists())
    )
    if not folders:
        raise FileNotFoundError(f"{root}: no config.json in it or in its sub-folders")
    reports = []
    for folder in folders:
        try:
            model_type = json.loads((folder / "config.json").read_text()).get("model_type", "")
        except (ValueError, AttributeError) as error:  # not JSON, or not an object
            raise ValueError(f"{folder / 'config.json'}: not a model's config ({error})") from None
        check = CHECKS.get(model_type)
        if check is None:
            reports.append(
                StageReport(str(folder), model_type, "none", findings=[(MISMATCH, "no stage uses this architecture")])
            )
            continue
        report = check(folder)
        report.findings += weight_findings(folder)
        if not weight_files(folder):  # the processor and config alone: the format is what is checked
            report.facts.append("weights: none in the folder (the format alone is checked)")
        reports.append(report)
    return reports


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())


def weight_findings(folder: Path) -> list[tuple[str, str]]:
    """What is wrong with the folder's weight files (empty, a safetensors file whose header does not
    read): a model whose format checks out may still not load."""
    found = []
    for path in weight_files(folder):
        size = path.stat().st_size
        if size == 0:
            found.append((MISMATCH, f"{path.name} is empty (0 bytes)"))
        elif path.suffix == ".safetensors":
            with open(path, "rb") as handle:
                length = int.from_bytes(handle.read(8), "little")
                try:
                    if not 0 < length <= size - 8:
                        raise ValueError(f"a header of {length} bytes in a file of {size}")
                    json.loads(handle.read(length))
                except ValueError as error:
                    found.append((MISMATCH, f"{path.name} is not a safetensors file ({str(error)[:120]})"))
    return found


def _settings(report: StageReport, model_type: str, processor: Any) -> None:
    for what, published, read in PUBLISHED_SETTINGS[model_type]:
        value = read(processor)
        report.facts.append(f"{what}: {value}")
        if value != published:
            report.findings.append((DIFFERS, f"{what} {value}; the published checkpoint uses {published}"))


def _control_counts(ids: list[int], names: dict[int, str]) -> dict[str, int]:
    return dict(Counter(names[i] for i in ids if i in names))


def check_gpt_oss(folder: Path) -> StageReport:
    from transformers import AutoConfig, AutoTokenizer

    from action100m.refiner.harmony import GPT_OSS_VOCAB_SIZE, HarmonyFormat, control_token_ids

    report = StageReport(str(folder), "gpt_oss", "refine (harmony, openai_harmony's renderer)")
    harmony = HarmonyFormat("high")
    messages = sample_refine_request(harmony.count_tokens)
    ids = harmony.prompt_ids(messages)
    report.request, report.tokens = harmony.encoding.decode_utf8(ids), len(ids)
    names = {i: t for t, i in control_token_ids().items()}
    report.control_tokens = _control_counts(ids, names)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    theirs = {t: tokenizer.convert_tokens_to_ids(t) for t, i in control_token_ids().items() if i < GPT_OSS_VOCAB_SIZE}
    wrong_ids = {t: i for t, i in theirs.items() if i != control_token_ids()[t]}
    if wrong_ids:
        shown = ", ".join(f"{t}={i}" for t, i in sorted(wrong_ids.items())[:5])
        report.findings.append((MISMATCH, f"{len(wrong_ids)} control token(s) have other ids than harmony's: {shown}"))
    text = messages[-1]["content"]
    ours = tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    if ours != harmony.encoding.encode(text, disallowed_special=()):
        report.findings.append((MISMATCH, "the tokenizer splits the request's text otherwise than o200k_harmony"))
    vocab = AutoConfig.from_pretrained(folder).vocab_size
    report.facts.append(f"vocabulary: {vocab} rows (published {GPT_OSS_VOCAB_SIZE})")
    if vocab < max(names) and vocab != GPT_OSS_VOCAB_SIZE:
        report.findings.append(
            (MISMATCH, f"the embedding has {vocab} rows: harmony's control tokens reach {GPT_OSS_VOCAB_SIZE - 1}")
        )
    if tokenizer.chat_template:
        template = str(
            tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, reasoning_effort="high")
        )
        if template != report.request:
            report.findings.append(
                (
                    DIFFERS,
                    f"the folder's chat template renders otherwise ({_first_difference(template, report.request)}); the refiner renders with harmony, an OpenAI-compatible server with the template",
                )
            )
    return report


def check_perception_lm(folder: Path) -> StageReport:
    from action100m.captioner.backends import caption_request

    processor, report = _processor(folder, "perception_lm", "caption: plm_caption, plm_action (video)")
    request = caption_request(processor, "plm_caption")
    _llama3_request(report, processor, request, "<|video|>")
    frames = [np.zeros((32, h, w, 3), np.uint8) for h, w in SAMPLE_FRAMES.values()]
    for name, clip in zip(SAMPLE_FRAMES, frames, strict=True):
        inputs = processor(text=[request], videos=[clip], return_tensors="np")
        video_tokens = int((inputs["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|video|>")).sum())
        side = inputs["pixel_values_videos"].shape[-1]
        report.facts.append(
            f"32 frames of {name}: each {side}x{side} px, {video_tokens // 32} video tokens per frame, {inputs['input_ids'].shape[1]} tokens in all"
        )
    if "system" not in _roles(request):
        report.findings.append((DIFFERS, "no system turn: the published template adds its default system prompt"))
    _settings(report, "perception_lm", processor)
    return report


def check_mllama(folder: Path) -> StageReport:
    from action100m.captioner.backends import caption_request

    processor, report = _processor(folder, "mllama", "caption: llama3_caption (a leaf's middle frame)")
    request = caption_request(processor, "llama3_caption")
    _llama3_request(report, processor, request, "<|image|>")
    for name, (h, w) in SAMPLE_FRAMES.items():
        inputs = processor(text=[request], images=[[np.zeros((h, w, 3), np.uint8)]], return_tensors="np")
        side = inputs["pixel_values"].shape[-1]
        tiles = int(inputs["aspect_ratio_mask"][0][0].sum())  # the tiles this frame fills
        report.facts.append(f"{name} frame: {tiles} tile(s) of {side} px")
    if "system" in _roles(request):
        report.findings.append((MISMATCH, "a system turn beside an image: the published template refuses that"))
    _settings(report, "mllama", processor)
    return report


def check_vjepa2(folder: Path) -> StageReport:
    from transformers import AutoVideoProcessor

    report = StageReport(str(folder), "vjepa2", "embed (V-JEPA 2 windows of 64 frames)")
    processor = AutoVideoProcessor.from_pretrained(folder)
    for name, (h, w) in SAMPLE_FRAMES.items():
        shape = processor(np.zeros((4, h, w, 3), np.uint8), return_tensors="np")["pixel_values_videos"].shape
        report.facts.append(f"{name} frames -> {shape[-2]}x{shape[-1]} px (resize shortest edge, centre crop)")
    _settings(report, "vjepa2", processor)
    return report


def check_whisper(folder: Path) -> StageReport:
    from transformers import AutoFeatureExtractor, AutoTokenizer

    report = StageReport(str(folder), "whisper", "transcribe (30 s windows of speech)")
    _settings(report, "whisper", AutoFeatureExtractor.from_pretrained(folder))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    timestamps = sum(1 for t in tokenizer.get_vocab() if re.fullmatch(r"<\|\d+\.\d\d\|>", t))
    report.facts.append(f"timestamp tokens: {timestamps} (0.00 s to 30.00 s in 0.02 s steps: 1501)")
    if timestamps != 1501 or tokenizer.convert_tokens_to_ids("<|notimestamps|>") is None:
        report.findings.append(
            (MISMATCH, f"{timestamps} timestamp tokens; Whisper's timestamps need 1501 and <|notimestamps|>")
        )
    return report


CHECKS: dict[str, Callable[[Path], StageReport]] = {
    "gpt_oss": check_gpt_oss,
    "perception_lm": check_perception_lm,
    "mllama": check_mllama,
    "vjepa2": check_vjepa2,
    "whisper": check_whisper,
}


def _processor(folder: Path, model_type: str, stage: str) -> tuple[Any, StageReport]:
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(folder), StageReport(str(folder), model_type, stage)


def _roles(request: str) -> list[str]:
    return re.findall(r"<\|start_header_id\|>(\w+)<\|end_header_id\|>", request)


def _llama3_request(report: StageReport, processor: Any, request: str, media: str) -> None:
    """The Llama 3 turn structure both captioners share: begin_of_text, headed turns ended by
    <|eot_id|>, the media token first in the user's turn, the assistant's header to generate after."""
    tokenizer = processor.tokenizer
    ids = tokenizer(request, add_special_tokens=False)["input_ids"]
    report.request, report.tokens = request, len(ids)
    names = {i: t.content for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    report.control_tokens = _control_counts(ids, names)
    turn = LLAMA3_TURN.match(request)
    if turn is None:
        report.findings.append((MISMATCH, "the request is not a Llama 3 user turn followed by the assistant's header"))
        return
    if not turn["bos"]:
        report.findings.append((MISMATCH, "the request does not open with <|begin_of_text|>"))
    if turn["media"] != media:
        report.findings.append(
            (MISMATCH, f"the user's turn opens with {turn['media'] or 'no media token'!r}, not one {media}")
        )
    for token in ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", media):
        if report.control_tokens.get(token, 0) == 0:
            report.findings.append((MISMATCH, f"{token} is not a single control token of this tokenizer"))


def _first_difference(a: str, b: str) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"at character {at}: {a[max(0, at - 30) : at + 12]!r} vs {b[max(0, at - 30) : at + 12]!r}"


def sample_refine_request(count_tokens: Callable[[str], int]) -> list[dict[str, str]]:
    """The first-round request for the root of a small sample video (two segments, captions)."""
    from action100m.common.artifacts import Captions, NodeCaptions, SegmentTree, TreeNode
    from action100m.refiner.markdown import TreeView
    from action100m.refiner.profiles import OursProfile
    from action100m.refiner.prompts import PromptLimits, Templates

    nodes = [
        TreeNode("root", None, 0, 0.0, 20.0),
        TreeNode("a", "root", 1, 0.0, 8.0),
        TreeNode("b", "root", 1, 8.0, 20.0),
    ]
    tree = SegmentTree("sample", 20.0, nodes)
    said = {
        "root": ("A person repairs a bicycle wheel.", "Repair the wheel."),
        "a": ("Hands remove the tyre with a lever.", "Remove the tyre."),
        "b": ("A new inner tube is fitted and inflated.", "Inflate the tube."),
    }
    captions = Captions("sample", {n: NodeCaptions(plm_caption=c, plm_action=a) for n, (c, a) in said.items()})
    metadata = {"title": "Fixing a flat tyre", "description": "How to change an inner tube.", "transcript": None}
    context = OursProfile(Templates()).context(TreeView(tree, captions.nodes), metadata, PromptLimits())
    messages, _ = context.first_messages(nodes[0], count_tokens)
    return messages


def print_reports(reports: list[StageReport], show_request: bool = True) -> None:
    for report in reports:
        print(f"== {report.model} ({report.model_type}) -> {report.stage}")
        if report.request and show_request:
            print("-- request --")
            print(
                report.request
                if len(report.request) < 1600
                else report.request[:1200] + "\n[...]\n" + report.request[-300:]
            )
            print("-- end of request --")
        if report.tokens:
            print(f"tokens: {report.tokens}")
        if report.control_tokens:
            print("control tokens: " + ", ".join(f"{t} x{n}" for t, n in report.control_tokens.items()))
        for fact in report.facts:
            print(f"  {fact}")
        for kind, what in report.findings:
            print(f"  {kind.upper()}: {what}")
        print("format: " + ("MISMATCH" if report.mismatched else "as published") + "\n")
