"""transcribe: Whisper on each video's speech (the transcriber), beside the embedder: it reads the
video, nothing upstream, so neither waits for the other. It runs on the videos the plan marks (by
`--transcribe`: those without a transcript, all, or none); the refine stage and the export take the
transcript from its artifact for those videos."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from action100m.v1 import transcriber_pb2, transcriber_pb2_grpc

from ..memory.facts import model_facts, working_bytes
from ..memory.needs import PROCESS_OVERHEAD_BYTES, Need
from ..state import VideoEntry
from .stage import Settings, Stage, StageMode

PROMPT_TOKENS = 4  # <|startoftranscript|><|lang|><|transcribe|> and the first timestamp


def transcribe_item(video: VideoEntry, upstream: Mapping[str, str], output: str) -> transcriber_pb2.TranscribeItem:
    return transcriber_pb2.TranscribeItem(
        video_uid=video.video_uid, video_uri=video.uri, output_uri=output, video_signature=video.signature
    )


def _config(settings: Settings):  # type: ignore[no-untyped-def]
    from action100m.transcriber.service import TranscriberConfig

    return TranscriberConfig.from_env(settings)


def transcriber_models(settings: Settings) -> list[str]:
    return [_config(settings).model]


def transcriber_need(settings: Settings) -> Need:
    config = _config(settings)
    if config.engine_backend() == "ctranslate2":
        return ctranslate2_need(config.model, config.transcribe_batch_size)
    facts = model_facts(config.model)
    assert facts.text is not None and facts.vision is not None, f"{config.model}: no Whisper shape"
    batch = config.transcribe_batch_size
    positions = facts.vision.tokens_per_image  # encoder positions of one 30 s window
    sequence = PROMPT_TOKENS + config.transcribe_max_new_tokens
    # self-attention KV over the generated tokens and cross-attention KV over the window, per layer
    kv = batch * facts.text.layers * (sequence + positions) * facts.text.kv_bytes_per_layer_token
    return Need(
        [facts.name],
        {
            "weights": facts.weight_bytes,
            "activations": batch * working_bytes(positions, facts.vision.hidden, facts.vision.intermediate),
            "kv_cache": kv,
            "inputs": batch * facts.vision.input_pixels * 2,  # log-mel windows at bf16
            "process": PROCESS_OVERHEAD_BYTES,
        },
    )


def ctranslate2_need(model: str, batch: int) -> Need:
    """A CTranslate2 Whisper folder: its weights as stored (int8 or float16; a GPU loads float16 at
    most twice an int8 file), and a batch's working memory, taken as a fifth of the weights per
    window (the encoder's activations over 1500 positions; measured on tiny.en at most that)."""
    from pathlib import Path

    weights = (Path(model) / "model.bin").stat().st_size if (Path(model) / "model.bin").is_file() else 0
    return Need(
        [f"{Path(model).name} (CTranslate2)"],
        {"weights": 2 * weights, "activations": batch * weights // 5, "process": PROCESS_OVERHEAD_BYTES},
    )


def wants_transcriber(choice: str, metadata: Mapping[str, Any] | None) -> bool:
    """`missing` (the default): the videos without a transcript (a given one, even empty, is used as
    is); `always`: every video (its transcript replaces a given one); `never`: none."""
    return choice == "always" or (choice == "missing" and (metadata or {}).get("transcript") is None)


def with_heard_transcript(body: bytes, uri: str, metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """The video's metadata with what the transcriber heard as its transcript."""
    from action100m.common.artifacts import Transcript

    return Transcript.from_json(body, uri).into(metadata)


TRANSCRIBE_MODE = StageMode(
    choices=("missing", "always", "never"),
    default="missing",
    help="the videos the transcriber (Whisper) runs on: those without a transcript in the manifest or a "
    "subtitle file (default), all (its transcript replaces theirs), or none",
    runs_on=wants_transcriber,
    source="speech-recognition",
)


TRANSCRIBE = Stage(
    name="transcribe",
    service="transcriber",
    kind="transcripts",
    extension="json",
    stub=transcriber_pb2_grpc.TranscriberStub,
    method="Transcribe",
    request=transcriber_pb2.TranscribeRequest,
    options=transcriber_pb2.TranscribeOptions,
    make_item=transcribe_item,
    mode=TRANSCRIBE_MODE,
    not_for="they have a transcript, or the run says --transcribe never",
    release_fields=("metadata.transcript",),
    adds_metadata=with_heard_transcript,
    counters=("segments", "windows"),
    shared_by_input=True,  # what is said in the file: the same file under many uids is transcribed once
    models=transcriber_models,
    memory_need=transcriber_need,
    too_big_advice=lambda need: "fewer windows per batch (A100M_TRANSCRIBE_BATCH_SIZE) or whisper-large-v3-turbo",
)
