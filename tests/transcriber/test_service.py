"""The transcriber over real gRPC with the tiny random Whisper and the real Silero VAD.

The tiny model's words are noise, but the voice activity detector is real: what it keeps of the
test videos (5 s of silence, then a sentence said by espeak-ng) decides where entries may start,
and silence costs no Whisper window at all.
"""

from __future__ import annotations

import json
from decimal import Decimal

import grpc
import pytest

from action100m.common.artifacts import Transcript
from action100m.common.store import ArtifactStore
from action100m.transcriber.service import SERVICE_NAME, TranscriberConfig, TranscriberService
from action100m.v1 import common_pb2, transcriber_pb2, transcriber_pb2_grpc

from ..conftest import SPEECH_STARTS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def transcriber(serve_in_process_once, tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("transcriber")
    store = ArtifactStore([f"file://{root}"], read_only_roots=["file:///"])
    config = TranscriberConfig(model=str(tiny_models["whisper"]), device="cpu", transcribe_max_new_tokens=16)
    _, channel = serve_in_process_once(
        TranscriberService(store, config), transcriber_pb2_grpc.add_TranscriberServicer_to_server, SERVICE_NAME
    )
    return transcriber_pb2_grpc.TranscriberStub(channel), root


def transcribe(stub, root, videos, folder, **options):
    items = [
        transcriber_pb2.TranscribeItem(
            video_uid=name, video_uri=f"file://{path}", output_uri=f"file://{root}/{folder}/{name}.json"
        )
        for name, path in videos.items()
    ]
    request = transcriber_pb2.TranscribeRequest(videos=items, options=transcriber_pb2.TranscribeOptions(**options))
    return {r.status.video_uid: r for r in stub.Transcribe(request, timeout=300)}


def published(root, folder, name) -> Transcript:
    return Transcript.from_json((root / folder / f"{name}.json").read_bytes())


def test_speech_silence_and_no_sound(transcriber, sound_videos):
    stub, root = transcriber
    results = transcribe(stub, root, sound_videos, "vad")
    assert {uid: r.status.outcome for uid, r in results.items()} == {
        "speech": common_pb2.OUTCOME_DONE,
        "silent": common_pb2.OUTCOME_DONE,
        "mute": common_pb2.OUTCOME_DONE,
    }

    speech = published(root, "vad", "speech")
    assert speech.entries, "the sentence yields entries"
    times = [Decimal(entry["time"]) for entry in speech.entries]
    assert times == sorted(times)  # in order
    assert min(times) >= Decimal(str(SPEECH_STARTS)) - Decimal("0.2")  # nothing before the speech
    assert max(times) <= Decimal(str(speech.audio_seconds))  # everything inside the video
    assert all(entry["time"] == str(Decimal(entry["time"])) for entry in speech.entries)  # "5.36", as released
    assert speech.language in ("en", "de", "fr", "es", "it")  # detected: one of the model's languages
    assert 1.0 < speech.speech_seconds < speech.audio_seconds - SPEECH_STARTS
    assert results["speech"].segments == len(speech.entries) and results["speech"].windows == 1

    for name in ("silent", "mute"):  # no speech, no sound: null, and the video is done
        assert published(root, "vad", name).entries is None
        assert results[name].windows == 0 and results[name].segments == 0
    assert results["silent"].audio_seconds == pytest.approx(8.0, abs=0.1)
    assert results["mute"].audio_seconds == 0.0

    again = transcribe(stub, root, sound_videos, "vad")
    assert {r.status.outcome for r in again.values()} == {common_pb2.OUTCOME_CACHED}


def test_without_voice_activity_detection_silence_costs_whisper_windows(transcriber, sound_videos):
    stub, root = transcriber
    results = transcribe(stub, root, {"silent": sound_videos["silent"]}, "no-vad", vad=False)
    assert results["silent"].status.outcome == common_pb2.OUTCOME_DONE
    assert results["silent"].windows == 1  # the 8 s of silence went through Whisper
    assert results["silent"].speech_seconds == pytest.approx(results["silent"].audio_seconds)


def test_a_broken_video_fails_alone_and_a_wrong_language_fails_the_call(transcriber, sound_videos, tmp_path):
    stub, root = transcriber
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(sound_videos["speech"].read_bytes()[:3000])
    results = transcribe(stub, root, {"broken": broken, "mute": sound_videos["mute"]}, "broken")
    assert results["broken"].status.outcome == common_pb2.OUTCOME_FAILED
    assert "broken.mp4" in results["broken"].status.error_message
    assert results["mute"].status.outcome in (common_pb2.OUTCOME_DONE, common_pb2.OUTCOME_CACHED)

    with pytest.raises(grpc.RpcError) as error:
        transcribe(stub, root, {"mute": sound_videos["mute"]}, "klingon", language="tlh")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "'tlh'" in error.value.details()


def test_info_names_the_model_and_the_settings_that_change_the_output(transcriber, tiny_models):
    stub, _ = transcriber
    info = stub.Info(common_pb2.InfoRequest(), timeout=30)
    assert info.service == "transcriber" and info.models[0].name == str(tiny_models["whisper"])
    defaults = transcriber_pb2.TranscribeOptions()
    assert info.default_options.Unpack(defaults) and defaults.vad is True and defaults.language == ""
    assert json.loads(json.dumps(dict(info.output_settings))) == {"max_new_tokens": 16.0}


def test_audio_is_heard_on_the_videos_clock_and_nothing_past_the_video(transcriber, tmp_path):
    """A soundtrack that starts 3 s after the first frame is heard 3 s later; speech that plays after
    the video's last frame (a soundtrack longer than the video) is not in the video."""
    from action100m.devtools.synthetic_video import spoken, write_video
    from action100m.transcriber.audio import read_audio

    from ..conftest import SPOKEN

    stub, root = transcriber
    speech = spoken(SPOKEN, silence_before=SPEECH_STARTS, silence_after=2.0)
    seconds = len(speech) / 16000
    late = write_video(
        tmp_path / "late.mp4", frames=int((seconds + 3) * 8), fps=8, size=(96, 64), soundtrack=speech, audio_starts=3.0
    )
    short = write_video(tmp_path / "short.mp4", frames=4 * 8, fps=8, size=(96, 64), soundtrack=speech)
    assert read_audio(late).starts_at == pytest.approx(3.0, abs=0.07)  # within AAC's priming (1024 samples)
    results = transcribe(stub, root, {"late": late, "short": short}, "clock")
    assert {r.status.outcome for r in results.values()} == {common_pb2.OUTCOME_DONE}
    times = [Decimal(entry["time"]) for entry in published(root, "clock", "late").entries]
    assert min(times) >= Decimal(str(3 + SPEECH_STARTS)) - Decimal("0.2") and max(times) <= Decimal(str(seconds + 3))
    assert published(root, "clock", "short").entries is None  # its speech starts at 5 s, after its 4 s of video
    assert results["short"].windows == 0


def test_a_soundtrack_of_nans_fails_alone_in_a_call_of_eight(transcriber, sound_videos, tmp_path):
    import numpy as np

    from action100m.devtools.synthetic_video import write_video

    stub, root = transcriber
    broken = np.full(4 * 16000, np.nan, np.float32)
    broken[:16000] = 0.0
    nan = write_video(tmp_path / "nan.mkv", frames=32, fps=8, size=(96, 64), soundtrack=broken, audio_codec="pcm_f32le")
    videos = {f"talk{i}": sound_videos["speech"] for i in range(7)} | {"nan": nan}
    results = transcribe(stub, root, videos, "nan")
    done = sorted(uid for uid, r in results.items() if r.status.outcome == common_pb2.OUTCOME_DONE)
    assert done == [f"talk{i}" for i in range(7)]
    failed = results["nan"].status
    assert failed.outcome == common_pb2.OUTCOME_FAILED and failed.error_code == "INVALID_ARGUMENT"
    assert (
        "nan.mkv: audio stream 1 has 48000 samples that are not numbers (NaN or infinite), the first at 1.00 s"
        in failed.error_message
    )
