"""The overlapped embedder against a plain reference: same features, each frame decoded and preprocessed once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from action100m.common.video import CorruptVideo, VideoNotFound, VideoReader
from action100m.devtools.synthetic_video import write_video
from action100m.embedder.encoder import VJepa2Encoder
from action100m.embedder.pipeline import EmbeddedVideo, EmbedSettings, EmbedStats, embed_videos
from action100m.embedder.windows import window_starts


@pytest.fixture(scope="session")
def tiny_encoder(tiny_models):
    return VJepa2Encoder(str(tiny_models["vjepa2"]), device="cpu", dtype="float32")


class CountingEncoder:
    """The real tiny encoder, counting the frames it preprocesses and the windows it encodes."""

    def __init__(self, encoder):
        self.inner, self.name, self.device = encoder, encoder.name, encoder.device
        self.frames_preprocessed = self.windows_encoded = 0

    def decode_size(self, width, height):
        return self.inner.decode_size(width, height)

    def preprocess(self, frames):
        self.frames_preprocessed += len(frames)
        return self.inner.preprocess(frames)

    def encode(self, windows):
        self.windows_encoded += len(windows)
        return self.inner.encode(windows)


def reference_features(encoder: VJepa2Encoder, path, stride=4, window=64, step=8) -> np.ndarray:
    """docs/method.md, "Stage 1", written plainly: all frames in memory, one window at a time."""
    reader = VideoReader(path)
    info = reader.probe()
    frames, _ = reader.read_every(stride, encoder.decode_size(info.width, info.height))
    pixels = encoder.preprocess(frames)
    n = len(frames)
    sums, counts = torch.zeros(n, encoder.shape.dim), torch.zeros(n)
    for start in window_starts(n, window, step):
        clip = pixels[start : start + window]
        valid = len(clip)
        if valid < window:
            clip = torch.cat([clip, clip[-1:].expand(window - valid, *clip.shape[1:])])
        per_frame = encoder.encode(clip[None])[0][:valid]
        sums[start : start + valid] += per_frame
        counts[start : start + valid] += 1
    return (sums / counts[:, None]).numpy()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("embedder-videos")
    return {
        "long": write_video(folder / "long.mp4", frames=610, fps=25, scene_starts=(0, 200, 420)),  # 153 sampled
        "short": write_video(folder / "short.webm", frames=37, fps=30, codec="libvpx-vp9"),  # 10 sampled: padded
        "exact": write_video(folder / "exact.mp4", frames=256, fps=30),  # 64 sampled: one window
    }


def test_features_match_the_plain_reference_and_frames_are_handled_once(tiny_encoder, clips, tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(clips["long"].read_bytes()[:5000])
    counting = CountingEncoder(tiny_encoder)
    stats = EmbedStats()
    videos = [
        ("long", str(clips["long"])),
        ("corrupt", str(corrupt)),
        ("short", str(clips["short"])),
        ("missing", str(tmp_path / "missing.mp4")),
        ("exact", str(clips["exact"])),
    ]
    yielded = list(embed_videos(counting, videos, EmbedSettings(windows_per_batch=3, chunk_frames=16), stats))
    results = dict(yielded)
    assert sorted(uid for uid, _ in yielded) == sorted(uid for uid, _ in videos)  # each video exactly once

    assert isinstance(results["corrupt"], CorruptVideo) and str(corrupt) in str(results["corrupt"])
    assert isinstance(results["missing"], VideoNotFound)
    expected_sampled = {"long": 153, "short": 10, "exact": 64}
    for uid, n in expected_sampled.items():
        video = results[uid]
        assert isinstance(video, EmbeddedVideo), video
        emb = video.embeddings
        assert emb.features.shape == (n, tiny_encoder.shape.dim) and emb.features.dtype == np.float16
        assert video.windows == len(window_starts(n))
        np.testing.assert_allclose(
            emb.features.astype(np.float32), reference_features(tiny_encoder, clips[uid]), rtol=2e-3, atol=2e-3
        )
        np.testing.assert_allclose(np.diff(emb.times), 4 / {"long": 25, "short": 30, "exact": 30}[uid], atol=1e-3)
    assert results["short"].embeddings.duration == pytest.approx(37 / 30, abs=2e-3)  # webm: ms timestamps

    sampled_total = sum(expected_sampled.values())
    assert counting.frames_preprocessed == sampled_total  # once each, though up to 8 windows use a frame
    assert stats.frames_sampled == sampled_total
    assert stats.frames_decoded == 610 + 37 + 256  # every frame decoded once (the codec forces it)
    assert counting.windows_encoded == stats.windows == sum(len(window_starts(n)) for n in expected_sampled.values())
    assert stats.batches == -(-stats.windows // 3)  # full batches across videos, one partial at the end


def test_a_cancelled_request_stops_between_batches(tiny_encoder, clips):
    class Cancelled(Exception):
        pass

    calls = []

    def check_alive():
        calls.append(1)
        if len(calls) > 1:
            raise Cancelled()

    with pytest.raises(Cancelled):
        list(
            embed_videos(
                tiny_encoder,
                [("long", str(clips["long"]))],
                EmbedSettings(windows_per_batch=2),
                EmbedStats(),
                check_alive,
            )
        )


def test_each_video_is_yielded_as_soon_as_its_last_window_is_encoded(tiny_encoder, clips):
    """Per-video durability: the first video's result comes out before the last video is decoded."""
    decoded_when_first_came_out = []

    class Watching(CountingEncoder):
        pass

    watching = Watching(tiny_encoder)
    videos = [("exact", str(clips["exact"])), ("long", str(clips["long"]))]
    settings = EmbedSettings(windows_per_batch=1, chunk_frames=16, queue_chunks=1)
    for uid, result in embed_videos(watching, videos, settings, EmbedStats()):
        assert isinstance(result, EmbeddedVideo)
        decoded_when_first_came_out.append((uid, watching.frames_preprocessed))
    (first, frames_then), (last, frames_at_end) = decoded_when_first_came_out
    assert (first, last) == ("exact", "long")
    assert frames_then < 64 + 153  # "long" was not fully decoded when "exact" was yielded
    assert frames_at_end == 64 + 153
