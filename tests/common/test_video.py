"""The video reader on synthetic videos whose frames carry their own index."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from action100m.common.video import (
    CorruptVideo,
    EmptyVideo,
    NoVideoStream,
    VideoError,
    VideoNotFound,
    VideoReader,
    evenly_spaced_times,
    frame_indices_for_times,
)
from action100m.devtools.synthetic_video import read_frame_stamp, write_audio_only, write_video

FORMATS = [
    ("libx264", "mp4", Fraction(24000, 1001)),
    ("libx264", "mp4", 25),
    ("libvpx-vp9", "webm", Fraction(30000, 1001)),
    ("mpeg4", "avi", 30),
]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """One 3-scene video per (codec, fps), 90 frames each."""
    folder = tmp_path_factory.mktemp("videos")
    made = {}
    for codec, ext, fps in FORMATS:
        path = folder / f"{codec}-{float(fps):.3f}.{ext}"
        made[(codec, fps)] = write_video(path, frames=90, fps=fps, scene_starts=(0, 30, 60), codec=codec)
    return made


def stamps(frames: np.ndarray) -> list[int]:
    return [read_frame_stamp(frame) for frame in frames]


@pytest.mark.parametrize("codec,ext,fps", FORMATS, ids=lambda v: str(v))
def test_probe_and_every_kth_frame(videos, codec, ext, fps):
    reader = VideoReader(videos[(codec, fps)])
    info = reader.probe()
    assert info.codec == {"libx264": "h264", "libvpx-vp9": "vp9", "mpeg4": "mpeg4"}[codec]
    assert (info.width, info.height, info.frame_count, info.rotation) == (160, 120, 90, 0)
    assert info.duration == pytest.approx(90 / float(fps), abs=1e-3)
    assert info.fps == pytest.approx(float(fps), rel=1e-3)

    frames, times = reader.read_every(4, size=(96, 64))
    assert frames.shape == (23, 64, 96, 3) and frames.dtype == np.uint8
    assert stamps(frames) == list(range(0, 90, 4))
    np.testing.assert_allclose(times, np.arange(0, 90, 4) / float(fps), atol=1e-3)


@pytest.mark.parametrize("codec,ext,fps", FORMATS, ids=lambda v: str(v))
def test_frame_at_time_and_evenly_spaced_span(videos, codec, ext, fps):
    reader = VideoReader(videos[(codec, fps)])
    rate = float(fps)
    assert read_frame_stamp(reader.frame_at(0.0)) == 0
    assert read_frame_stamp(reader.frame_at(41.5 / rate)) == 41  # inside frame 41's interval
    assert read_frame_stamp(reader.frame_at(1000.0)) == 89  # past the end: the last frame
    span = reader.frames_between(10 / rate, 20 / rate, 32)
    assert span.shape[0] == 32
    expected = frame_indices_for_times(np.arange(90) / rate, evenly_spaced_times(10 / rate, 20 / rate, 32))
    assert stamps(span) == expected.tolist()
    assert expected.min() == 10 and expected.max() == 19  # never the frame at `end`, repeats allowed


def test_many_spans_come_from_one_decoding_pass(videos):
    path = videos[("libx264", 25)]
    reader = VideoReader(path)
    requests = {
        "root": evenly_spaced_times(0, 3.6, 32),
        "first-scene": evenly_spaced_times(0, 1.2, 32),
        "leaf": evenly_spaced_times(2.4, 2.9, 32),  # a 0.5 s node: 12-13 frames for 32 slots
        "middle-frame": [1.8],
    }
    got = reader.gather(requests, size=(64, 48))
    assert reader.stats.passes == 1
    assert reader.stats.frames_decoded == 90
    assert reader.stats.frames_converted < 90  # only wanted frames are converted
    assert stamps(got["middle-frame"]) == [45]
    for key, times in requests.items():
        assert stamps(got[key]) == frame_indices_for_times(np.arange(90) / 25, times).tolist(), key
    leaf = stamps(got["leaf"])
    assert leaf[0] == 60 and leaf[-1] == 72 and len(set(leaf)) < 32


def test_variable_frame_rate_times_come_from_timestamps(tmp_path):
    times = [0.0, 0.1, 0.15, 0.4, 0.5, 0.55, 0.9, 1.0, 1.3, 1.31]
    path = write_video(tmp_path / "vfr.mp4", frames=len(times), frame_times=times)
    reader = VideoReader(path)
    frames, got = reader.read_every(1)
    np.testing.assert_allclose(got, times, atol=1e-6)
    assert stamps(frames) == list(range(10))
    assert read_frame_stamp(reader.frame_at(0.45)) == 3
    info = reader.probe()
    assert info.frame_count == 10 and info.duration == pytest.approx(1.31 + 0.01, abs=0.05)


def test_rotation_metadata_is_applied(tmp_path):
    path = write_video(tmp_path / "phone.mp4", frames=5, size=(160, 120), rotation=90)
    reader = VideoReader(path)
    info = reader.probe()
    assert (info.rotation, info.width, info.height) == (90, 120, 160)
    upright = reader.frame_at(0.0)
    assert upright.shape == (160, 120, 3)
    # Turned back clockwise, the picture is the stored one with its stamp along the top.
    assert read_frame_stamp(np.rot90(upright, k=-1)) == 0
    assert reader.frame_at(0.0, size=(60, 80)).shape == (80, 60, 3)


@pytest.mark.parametrize("size", [(161, 121), (97, 55)])
def test_odd_sizes(tmp_path, size):
    path = write_video(tmp_path / "odd.webm", frames=8, size=size, codec="libvpx-vp9")
    reader = VideoReader(path)
    assert (reader.probe().width, reader.probe().height) == size
    frames, _ = reader.read_every(2)
    assert frames.shape == (4, size[1], size[0], 3)
    assert stamps(frames) == [0, 2, 4, 6]


def test_one_frame_and_a_third_of_a_second(tmp_path):
    single = VideoReader(write_video(tmp_path / "one.mp4", frames=1))
    assert (single.probe().frame_count, single.probe().duration) == (1, pytest.approx(0.04))
    assert stamps(single.frames_between(0, 0.04, 32)) == [0] * 32
    short = VideoReader(write_video(tmp_path / "short.mp4", frames=9, fps=30))
    assert short.probe().duration == pytest.approx(0.3)
    assert stamps(short.read_every(4)[0]) == [0, 4, 8]


def test_a_video_with_audio_reads_its_video(tmp_path):
    reader = VideoReader(write_video(tmp_path / "talk.mp4", frames=25, with_audio=True))
    assert reader.probe().frame_count == 25


def _truncated(tmp_path, ext, codec):
    whole = write_video(tmp_path / f"whole.{ext}", frames=250, codec=codec)
    cut = tmp_path / f"cut.{ext}"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return cut


@pytest.mark.parametrize("ext,codec", [("mp4", "libx264"), ("webm", "libvpx-vp9"), ("avi", "mpeg4")])
def test_truncated_files_are_corrupt(tmp_path, ext, codec):
    cut = _truncated(tmp_path, ext, codec)
    with pytest.raises(CorruptVideo, match=str(cut)):
        VideoReader(cut).probe()
    with pytest.raises(CorruptVideo, match=r"truncated|corrupt"):
        VideoReader(cut).read_every(4)


def test_unreadable_files_raise_typed_errors_naming_file_and_problem(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is a text file, not a video\n" * 40)
    audio = write_audio_only(tmp_path / "voice.m4a")
    cases = [
        (empty, EmptyVideo, "empty"),
        (text, CorruptVideo, "not a readable video container"),
        (audio, NoVideoStream, "no video stream.*audio"),
        (tmp_path / "missing.mp4", VideoNotFound, "no such file"),
        (tmp_path, VideoNotFound, "directory"),
    ]
    for path, error, problem in cases:
        with pytest.raises(error, match=problem) as caught:
            VideoReader(path).probe()
        assert str(path) in str(caught.value)
        assert isinstance(caught.value, VideoError) and caught.value.path == str(path)


def test_evenly_spaced_times_are_centres_of_equal_parts():
    np.testing.assert_allclose(evenly_spaced_times(0, 4, 4), [0.5, 1.5, 2.5, 3.5])
    with pytest.raises(ValueError):
        evenly_spaced_times(2, 1, 4)
    with pytest.raises(ValueError):
        evenly_spaced_times(0, 1, 0)


def test_stream_yields_each_key_when_complete_with_its_own_size(videos):
    reader = VideoReader(videos[("libx264", 25)])
    requests = {"late": [3.5], "early": evenly_spaced_times(0.0, 0.5, 4), "middle": [1.0, 2.0]}
    sizes = {"late": (32, 24), "early": (64, 48), "middle": None}
    order = []
    for key, frames in reader.stream(requests, sizes):
        order.append(key)
        assert frames.shape[1:3] == {"late": (24, 32), "early": (48, 64), "middle": (120, 160)}[key]
    assert order == ["early", "middle", "late"]
    assert reader.stats.passes == 1
