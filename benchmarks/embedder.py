"""The embedder's overlap of decoding and encoding, on a synthetic video (tiny model on CPU by default).

Rows, all from the same run and the same video:
  decode only      decode every 4th frame + preprocess, nothing encoded          -> decode_s
  encode only      all windows encoded from frames already in memory              -> encode_s
  overlapped       the real path (decode thread -> bounded queue -> encode)        -> wall_s
The overlapped wall time should sit near max(decode_s, encode_s), not their sum (ratio columns).
A length sweep shows how cost grows with video length (linearly: windows and frames both do).

    python benchmarks/embedder.py [--json] [--minutes 2] [--model DIR_OR_HUB_ID --device cuda]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from report import emit, parser

from action100m.common.video import VideoReader
from action100m.devtools.synthetic_video import write_video
from action100m.devtools.tiny_models import build_tiny_models
from action100m.embedder.encoder import VJepa2Encoder
from action100m.embedder.pipeline import EmbedSettings, EmbedStats, embed_videos
from action100m.embedder.windows import window_starts, windows_per_hour

FPS = 30


def decode_only(encoder, path: Path, settings: EmbedSettings) -> tuple[float, torch.Tensor, int]:
    t0 = time.perf_counter()
    reader = VideoReader(path)
    info = reader.probe()
    chunks, frames = [], []
    for _, _, picture in reader.iter_frames(settings.frame_stride, encoder.decode_size(info.width, info.height)):
        frames.append(picture)
        if len(frames) == settings.chunk_frames:
            chunks.append(encoder.preprocess(np.stack(frames)))
            frames = []
    if frames:
        chunks.append(encoder.preprocess(np.stack(frames)))
    return time.perf_counter() - t0, torch.cat(chunks), reader.stats.frames_decoded


def encode_only(encoder, pixels: torch.Tensor, settings: EmbedSettings) -> tuple[float, int]:
    pixels = pixels.to(encoder.device)
    starts = window_starts(len(pixels), settings.window_frames, settings.window_stride)
    t0 = time.perf_counter()
    for i in range(0, len(starts), settings.windows_per_batch):
        batch = [pixels[s : s + settings.window_frames] for s in starts[i : i + settings.windows_per_batch]]
        batch = [
            w
            if len(w) == settings.window_frames
            else torch.cat([w, w[-1:].expand(settings.window_frames - len(w), *w.shape[1:])])
            for w in batch
        ]
        encoder.encode(torch.stack(batch))
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, len(starts)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=2.0, help="length of the main synthetic video")
    p.add_argument("--sweep", type=float, nargs="*", default=[0.5, 1.0], help="extra lengths (minutes) for cost growth")
    p.add_argument("--size", type=int, nargs=2, default=[320, 180], metavar=("W", "H"))
    p.add_argument("--model", default=None, help="encoder dir or hub id (default: a tiny random V-JEPA 2)")
    p.add_argument("--device", default="auto")
    p.add_argument("--windows-per-batch", type=int, default=8)
    p.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="CPU threads for the encoder; on a small CPU-only machine 1 leaves the decoder a core, "
        "as a GPU would (0: torch's default)",
    )
    args = p.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(build_tiny_models(Path(tmp) / "models", only=["vjepa2"])["vjepa2"])
        encoder = VJepa2Encoder(model, device=args.device)
        settings = EmbedSettings(windows_per_batch=args.windows_per_batch)
        rows = []
        for minutes in [args.minutes, *args.sweep]:
            frames = int(minutes * 60 * FPS)
            path = write_video(
                Path(tmp) / f"video-{minutes}.mp4",
                frames=frames,
                fps=FPS,
                size=tuple(args.size),
                scene_starts=tuple(range(0, frames, FPS * 20)),
            )
            decode_s, pixels, _decoded = decode_only(encoder, path, settings)
            encode_s, windows = encode_only(encoder, pixels, settings)
            stats = EmbedStats()
            list(embed_videos(encoder, [("bench", str(path))], settings, stats))
            base = {"minutes": minutes, "sampled_frames": len(pixels), "windows": windows}
            if minutes == args.minutes:
                rows.append({**base, "path": "decode only", "decode_s": decode_s})
                rows.append({**base, "path": "encode only", "encode_s": encode_s})
            rows.append(
                {
                    **base,
                    "path": "overlapped",
                    "decode_s": stats.decode_seconds,
                    "encode_s": stats.encode_seconds,
                    "wall_s": stats.wall_seconds,
                    "wall_over_max": stats.wall_seconds / max(decode_s, encode_s),
                    "wall_over_sum": stats.wall_seconds / (decode_s + encode_s),
                    "decoded_per_sampled": stats.frames_decoded / stats.frames_sampled,
                    "wall_s_per_minute": stats.wall_seconds / minutes,
                }
            )
    notes = [
        f"model: {model if args.model else 'tiny random V-JEPA 2'} on {encoder.device} ({encoder.dtype}), "
        f"{torch.get_num_threads()} torch thread(s), {os.cpu_count()} CPUs",
        "decoded_per_sampled: raw frames decoded per sampled frame; the codec forces 4 (every frame is decoded), "
        "a per-window decoder would pay 64*4/8 = 32",
        f"windows per video-hour: {windows_per_hour(25.0)} at 25 fps, {windows_per_hour(30.0)} at 30 fps, "
        f"{windows_per_hour(60.0)} at 60 fps",
    ]
    emit(rows, args.json, notes)


if __name__ == "__main__":
    main()
