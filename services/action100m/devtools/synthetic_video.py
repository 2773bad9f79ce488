"""Synthetic videos with known content, for tests, benchmarks and the offline demo.

Every frame carries its own index as a row of black/white bars across the top quarter
(`read_frame_stamp` reads it back after lossy coding), and the rest of the picture shows the
current scene: a colour and a stripe pattern that differ strongly from scene to scene, so scene
cuts are known exactly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

STAMP_BITS = 14  # frame indices up to 16383
DEFAULT_SCENE_COLOURS = [
    (230, 40, 40),
    (40, 200, 60),
    (50, 70, 230),
    (240, 220, 40),
    (200, 60, 220),
    (40, 220, 220),
    (250, 140, 30),
    (120, 120, 120),
]


def scene_picture(scene: int, width: int, height: int) -> np.ndarray:
    """The picture of one scene: a colour with stripes whose angle and period depend on the scene."""
    colour = np.array(DEFAULT_SCENE_COLOURS[scene % len(DEFAULT_SCENE_COLOURS)], dtype=np.float32)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = (scene * 0.7) % np.pi
    period = 12 + 9 * (scene % 5)
    wave = 0.5 + 0.5 * np.sin((xs * np.cos(angle) + ys * np.sin(angle)) * 2 * np.pi / period)
    picture = colour[None, None, :] * (0.45 + 0.55 * wave[..., None])
    result: np.ndarray = picture.clip(0, 255).astype(np.uint8)
    return result


def stamp_frame(picture: np.ndarray, index: int) -> np.ndarray:
    """Writes `index` in binary as STAMP_BITS bars over the top quarter of the picture."""
    out = picture.copy()
    height, width = out.shape[:2]
    band = max(height // 4, 2)
    edges = np.linspace(0, width, STAMP_BITS + 1).astype(int)
    for bit in range(STAMP_BITS):
        out[:band, edges[bit] : edges[bit + 1]] = 255 if (index >> bit) & 1 else 0
    return out


def read_frame_stamp(picture: np.ndarray) -> int:
    """The index written by `stamp_frame` (robust to lossy coding and resizing)."""
    height, width = picture.shape[:2]
    band = max(height // 4, 2)
    edges = np.linspace(0, width, STAMP_BITS + 1).astype(int)
    value = 0
    for bit in range(STAMP_BITS):
        left, right = edges[bit], edges[bit + 1]
        margin_x = max((right - left) // 4, 0)
        cell = picture[band // 4 : band - band // 4 or 1, left + margin_x : right - margin_x or right + 1]
        if cell.mean() > 127:
            value |= 1 << bit
    return value


def write_video(
    path: str | os.PathLike[str],
    frames: int,
    fps: float | Fraction = 25,
    size: tuple[int, int] = (160, 120),
    scene_starts: Sequence[int] = (0,),
    codec: str = "libx264",
    rotation: int = 0,
    frame_times: Sequence[float] | None = None,
    with_audio: bool = False,
    soundtrack: np.ndarray | None = None,
    audio_starts: float = 0.0,
    audio_codec: str = "aac",
    tags: Mapping[str, str] | None = None,
) -> Path:
    """Writes a video whose frame i shows scene k for scene_starts[k] <= i < scene_starts[k+1].

    `fps` may be a Fraction (24000/1001 for 23.976). `frame_times` (seconds) gives a variable frame
    rate instead. `rotation` stores a display matrix (counter-clockwise degrees) without turning
    the pixels, as phones do. The soundtrack (16 kHz mono) starts `audio_starts` seconds after the
    first frame, in `audio_codec` (`pcm_f32le` keeps any float, NaN included: in .mkv). `tags` are
    the container's metadata (`title`, `comment`, `date`, `creation_time`, ...).
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
    width, height = size
    with av.open(str(path), mode="w") as container:
        container.metadata.update(tags or {})
        stream: Any = container.add_stream(codec, rate=rate)  # a video stream (PyAV types it as any stream)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if codec in ("libx264", "libvpx-vp9"):
            stream.options = {"crf": "18"} if codec == "libx264" else {"crf": "20", "b": "0"}
        else:
            stream.bit_rate = 4_000_000
        if frame_times is not None:  # millisecond timestamps in both the codec and the container
            stream.time_base = Fraction(1, 1000)
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        audio = container.add_stream(audio_codec, rate=16000) if with_audio or soundtrack is not None else None
        starts = list(scene_starts)
        pictures: dict[int, np.ndarray] = {}
        for index in range(frames):
            scene = max(k for k, start in enumerate(starts) if start <= index)
            if scene not in pictures:
                pictures[scene] = scene_picture(scene, width, height)
            frame = av.VideoFrame.from_ndarray(stamp_frame(pictures[scene], index), format="rgb24")
            if frame_times is not None:
                frame.pts = round(frame_times[index] * 1000)
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None:
            seconds = frames / float(rate)
            _write_samples(container, audio, soundtrack if soundtrack is not None else tone(seconds), audio_starts)
    return path


def write_audio_only(path: str | os.PathLike[str], seconds: float = 1.0) -> Path:
    """A file with an AAC audio stream and no video stream."""
    import av

    path = Path(path)
    with av.open(str(path), mode="w") as container:
        _write_samples(container, container.add_stream("aac", rate=16000), tone(seconds))
    return path


def tone(seconds: float) -> np.ndarray:
    """A 440 Hz tone, 16 kHz mono float32."""
    return (0.2 * np.sin(np.arange(int(16000 * seconds)) * 2 * np.pi * 440 / 16000)).astype(np.float32)


def spoken(
    text: str, silence_before: float = 0.0, silence_after: float = 0.0, voice: str = "", words_per_minute: int = 0
) -> np.ndarray:
    """`text` said by Debian's speech synthesizer (`apt-get install espeak-ng`), 16 kHz mono
    float32, between the given seconds of silence; in another `voice` (`en-us+f3`) or speed."""
    import shutil
    import subprocess
    import tempfile

    from action100m.transcriber.audio import read_audio

    program = shutil.which("espeak-ng")
    if program is None:
        raise FileNotFoundError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "speech.wav"
        options = [*(["-v", voice] if voice else []), *(["-s", str(words_per_minute)] if words_per_minute else [])]
        subprocess.run([program, *options, "-w", str(wav), text], check=True, capture_output=True)
        said = read_audio(wav)
    assert said is not None, "espeak-ng wrote no audio"
    speech = said.samples
    quiet = np.zeros
    return np.concatenate([quiet(int(16000 * silence_before)), speech, quiet(int(16000 * silence_after))]).astype(
        np.float32
    )


def _write_samples(container: Any, stream: Any, samples: np.ndarray, starts: float = 0.0) -> None:
    import av

    frame_size, first = 1024, round(starts * 16000)
    for offset in range(0, len(samples), frame_size):
        chunk = samples[offset : offset + frame_size]
        if len(chunk) < frame_size:
            chunk = np.pad(chunk, (0, frame_size - len(chunk)))
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        frame.sample_rate = 16000
        frame.pts = first + offset
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
