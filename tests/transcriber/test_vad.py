"""Speech packed into Whisper's 30 s windows, and Whisper's times put back on the video's clock."""

from __future__ import annotations

import numpy as np
import pytest

from action100m.transcriber.audio import SAMPLE_RATE
from action100m.transcriber.vad import Piece, whole, windows

S = SAMPLE_RATE


def test_speech_is_packed_without_the_silence_between_and_cut_at_30_seconds():
    """A pause of a second or more between two regions stays as one second of silence (Whisper ends
    a segment there); the rest of the silence is left out."""
    audio = np.arange(100 * S, dtype=np.float32) + 1
    regions = [(2 * S, 12 * S), (20 * S, 40 * S), (50 * S, 95 * S)]  # 10 s, 20 s, 45 s of speech
    cut = windows(audio, regions)
    assert [len(w.audio) / S for w in cut] == [30.0, 30.0, 17.0]  # 75 s of speech, two 1 s pauses
    assert cut[0].pieces == [Piece(2 * S, 12 * S, 0), Piece(20 * S, 39 * S, 11 * S)]
    assert cut[1].pieces == [Piece(39 * S, 40 * S, 0), Piece(50 * S, 78 * S, 2 * S)]  # a region goes on in the next
    assert cut[2].pieces == [Piece(78 * S, 95 * S, 0)]
    np.testing.assert_array_equal(cut[0].audio[: 10 * S], audio[2 * S : 12 * S])
    assert not cut[0].audio[10 * S : 11 * S].any()  # the kept pause: silence
    np.testing.assert_array_equal(cut[0].audio[11 * S :], audio[20 * S : 39 * S])
    assert [len(w.audio) / S for w in windows(audio, [(2 * S, 12 * S), (12 * S + S // 2, 20 * S)])] == [17.5]


@pytest.mark.parametrize(
    "inside,on_video",
    [
        (0.0, 2.0),  # the start of the first piece
        (9.5, 11.5),
        (10.0, 20.0),  # in the kept pause: the start of the piece after it
        (10.6, 20.0),
        (11.0, 20.0),  # the second piece starts 11 s into the window, at 20 s of the video
        (28.98, 37.98),
        (30.0, 38.0),  # past the speech: the end of the last piece
    ],
)
def test_a_time_in_a_window_is_a_time_of_the_video(inside, on_video):
    audio = np.zeros(60 * S, dtype=np.float32)
    (window,) = windows(audio, [(2 * S, 12 * S), (20 * S, 38 * S)])
    assert window.video_seconds(inside) == pytest.approx(on_video)


def test_without_voice_activity_detection_the_whole_soundtrack_is_read():
    audio = np.zeros(65 * S, dtype=np.float32)
    assert [len(w.audio) / S for w in windows(audio, whole(audio))] == [30.0, 30.0, 5.0]
    assert whole(np.zeros(0, np.float32)) == [] and windows(audio, []) == []


def test_segments_placed_at_one_time_are_one_entry_of_the_transcript():
    """Whisper's segments that land on one time (rounded, or held back to keep the order) are one
    entry, as the release has no two entries at one time."""
    import numpy as np

    from action100m.transcriber.transcribe import Soundtrack, _Session
    from action100m.transcriber.vad import whole, windows
    from action100m.transcriber.whisper import Spoken

    audio = np.zeros(16000 * 10, np.float32)
    (window,) = windows(audio, whole(audio))
    session = _Session("v", "tiny", Soundtrack(audio_seconds=10.0, speech_seconds=10.0))
    spoken = [Spoken(1.001, " one"), Spoken(1.004, " two"), Spoken(0.5, " three"), Spoken(6.0, " four")]
    session.results[0] = (window, "en", spoken)
    times = [(e["time"], e["text"]) for e in session.finish().entries or []]
    assert times == [("1.0", "one two three"), ("6.0", "four")]  # the release has no edge spaces
