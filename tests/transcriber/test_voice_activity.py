"""Silero VAD read as parallel streams finds the speech the package finds reading one chunk at a time."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from action100m.transcriber.audio import SAMPLE_RATE
from action100m.transcriber.vad import VoiceActivity

from ..conftest import SPOKEN

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng here to say the sentence")


@pytest.fixture(scope="module")
def talk():
    """Eight times: 5 s of silence, the sentence, as much silence again (2 min 40 s)."""
    from action100m.devtools.synthetic_video import spoken

    said = spoken(SPOKEN)
    return np.concatenate([np.zeros(5 * SAMPLE_RATE, np.float32), said, np.zeros_like(said)] * 8)


@pytest.fixture(scope="module")
def vad():
    return VoiceActivity()


def package_regions(vad, audio):
    from silero_vad import get_speech_timestamps

    found = get_speech_timestamps(
        torch.from_numpy(audio), vad._model, sampling_rate=SAMPLE_RATE, min_speech_duration_ms=250
    )
    return [(r["start"], r["end"]) for r in found]


def test_one_stream_is_the_package_exactly(vad, talk):
    short = talk[: 50 * SAMPLE_RATE]  # under two minutes: one stream
    assert vad.speech(short) == package_regions(vad, short)


@pytest.mark.parametrize("streams", [None, 8])  # two streams of 80 s (the default), eight of 20 s
def test_parallel_streams_find_the_same_speech_within_a_chunk_or_two(vad, talk, streams):
    expected = package_regions(vad, talk)
    assert len(vad.probabilities(talk, streams)) == -(-len(talk) // 512)  # one per chunk, padding cut
    found = vad.speech(talk, streams)
    assert len(found) == len(expected) >= 8
    for (start, end), (want_start, want_end) in zip(found, expected, strict=True):
        assert abs(start - want_start) <= 2 * 512 and abs(end - want_end) <= 2 * 512
