"""Window placement and the token-to-frame interpolation of docs/method.md, "Stage 1"."""

from __future__ import annotations

import numpy as np
import pytest

from action100m.embedder.windows import token_to_frame_weights, window_starts, windows_per_hour


@pytest.mark.parametrize(
    "n,expected",
    [
        (0, []),
        (1, [0]),
        (63, [0]),  # short video: one padded window
        (64, [0]),
        (72, [0, 8]),
        (75, [0, 8, 11]),  # tail window anchored at the last 64 frames
        (200, [0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136]),
    ],
)
def test_window_starts(n, expected):
    assert window_starts(n) == expected


@pytest.mark.parametrize("n", [1000, 1003])
def test_every_frame_is_covered_and_inner_frames_by_eight_windows(n):
    cover = np.zeros(n, int)
    for start in window_starts(n):
        cover[start : start + 64] += 1
    assert cover.min() >= 1 and cover.max() <= 9  # 8 regular windows, plus the tail near the end
    assert (cover[56 : n - 64] == 8).all()


def test_token_weights_interpolate_between_tubelet_centres():
    weights = token_to_frame_weights(32, 64)
    assert weights.shape == (64, 32)
    np.testing.assert_allclose(weights.sum(1), 1.0)
    # Token j sits at frame 2j + 0.5: frames 0 and 63 take the end tokens whole...
    assert weights[0, 0] == 1.0 and weights[63, 31] == 1.0
    # ...frame 1 lies a quarter of the way from token 0 (0.5) to token 1 (2.5), frame 2 three quarters.
    np.testing.assert_allclose(weights[1, :2], [0.75, 0.25])
    np.testing.assert_allclose(weights[2, :2], [0.25, 0.75])
    # A linear signal over frames is reproduced exactly between the end tokens.
    token_positions = 2 * np.arange(32) + 0.5
    np.testing.assert_allclose(weights @ token_positions, np.clip(np.arange(64), 0.5, 62.5))


def test_window_count_per_video_hour():
    # 30 fps: 27,000 sampled frames per hour, a window every 8 from 0 to 26,936 -> 3,368 windows.
    assert windows_per_hour(30.0) == 3368
    # 25 fps: 22,500 sampled frames: 2,805 regular windows and one tail window.
    assert windows_per_hour(25.0) == 2806
