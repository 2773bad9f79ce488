"""Which stream is the video: containers whose first video track is a thumbnail or a cover picture,
or that carry several video tracks, are read from their main video; a manifest may name a stream."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from action100m.common.video import NoVideoStream, VideoFile, VideoReader
from action100m.devtools.synthetic_video import scene_picture


def mux(path: Path, tracks: list[tuple[str, int, tuple[int, int]]], attached_first: bool = False) -> Path:
    """A container with one video track per (codec, frames at 25 fps, size), in that order; with
    `attached_first`, the first track is flagged as an attached picture (cover art)."""
    with av.open(str(path), "w") as container:
        streams = []
        for codec, _, (width, height) in tracks:
            stream = container.add_stream(codec, rate=25)
            stream.width, stream.height = width, height
            stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
            stream.time_base = Fraction(1, 25)
            streams.append(stream)
        if attached_first:
            streams[0].disposition = av.stream.Disposition.attached_pic
        for stream, (_, frames, (width, height)) in zip(streams, tracks, strict=True):
            for index in range(frames):
                picture = scene_picture(index // 25, width, height)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
                frame.pts = index
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize(
    ("name", "tracks", "attached"),
    [
        ("thumbnail-first.mp4", [("mjpeg", 1, (64, 48)), ("h264", 175, (96, 64))], False),
        ("thumbnail-first.mkv", [("mjpeg", 1, (64, 48)), ("h264", 175, (96, 64))], False),
        ("cover-art.mkv", [("mjpeg", 1, (64, 48)), ("h264", 175, (96, 64))], True),
        ("two-videos.mkv", [("h264", 50, (96, 64)), ("h264", 175, (64, 48))], False),
    ],
)
def test_the_main_video_is_read_not_a_thumbnail_or_a_shorter_track(tmp_path, name, tracks, attached):
    path = mux(tmp_path / name, tracks, attached)
    info = VideoReader(path).probe()
    assert info.frame_count == 175 and info.duration == pytest.approx(7.0, abs=0.05)


def test_a_named_stream_is_read_and_a_stream_that_is_not_a_video_is_refused(tmp_path):
    path = mux(tmp_path / "two.mkv", [("h264", 50, (96, 64)), ("h264", 175, (64, 48))])
    assert VideoReader(VideoFile(str(path), stream=0)).probe().frame_count == 50
    assert VideoReader(VideoFile(str(path), stream=1)).probe().frame_count == 175
    with pytest.raises(NoVideoStream, match="stream 7 is not a video stream"):
        VideoReader(VideoFile(str(path), stream=7))
