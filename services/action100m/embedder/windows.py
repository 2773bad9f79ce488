"""The windowing of docs/method.md, "Stage 1", independent of any model.

Sampled frames (every 4th decoded frame) are encoded in windows of 64 with a stride of 8, plus one
window anchored at the last 64 frames; a video shorter than a window is padded by repeating its
last frame. A window's 32 temporal tokens (2-frame tubelets) are interpolated linearly to its 64
frames, token j centred at frame 2j + 0.5, and every frame averages the vectors of all windows
covering it.
"""

from __future__ import annotations

import numpy as np


def window_starts(n_frames: int, window: int = 64, stride: int = 8) -> list[int]:
    """First sampled frame of each window: 0, stride, ... and a tail window ending at the last frame."""
    if n_frames <= 0:
        return []
    if n_frames <= window:
        return [0]
    starts = list(range(0, n_frames - window + 1, stride))
    if starts[-1] != n_frames - window:
        starts.append(n_frames - window)
    return starts


def windows_per_hour(fps: float, frame_stride: int = 4, window: int = 64, stride: int = 8) -> int:
    """How many windows an hour of video at `fps` costs."""
    sampled = -(-round(3600 * fps) // frame_stride)
    return len(window_starts(sampled, window, stride))


def token_to_frame_weights(tokens: int = 32, frames: int = 64) -> np.ndarray:
    """[frames, tokens] linear interpolation weights; token j sits at frame tubelet*j + (tubelet-1)/2."""
    tubelet = frames // tokens
    centres = tubelet * np.arange(tokens) + (tubelet - 1) / 2
    weights = np.zeros((frames, tokens), dtype=np.float32)
    for f in range(frames):
        if f <= centres[0]:
            weights[f, 0] = 1.0
        elif f >= centres[-1]:
            weights[f, -1] = 1.0
        else:
            j = int(np.searchsorted(centres, f, side="right")) - 1
            t = (f - centres[j]) / (centres[j + 1] - centres[j])
            weights[f, j], weights[f, j + 1] = 1.0 - t, t
    return weights
