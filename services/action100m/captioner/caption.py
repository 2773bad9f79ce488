"""Captioning the nodes of several videos: one decoding pass per video, batches across nodes and videos.

A CPU thread decodes each video once and hands over every node as soon as the pass completes its
frames; the shared loop (common.batching) turns each node into caption jobs (plm_caption and
plm_action on the node's 32 frames, llama3_caption on a leaf's middle frame), batches jobs of the
same field from any video, and yields each video as soon as its last caption is written. A batch
that fails is retried job by job, so one bad node gets a null caption and its reason while the
others keep theirs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from action100m.common.artifacts import Captions, NodeCaptions, SegmentTree
from action100m.common.batching import (
    VideoChunk,
    VideoEnded,
    VideoEvent,
    VideoFailed,
    VideoStarted,
    cross_video_batches,
)
from action100m.common.video import VideoReader, VideoSource

from .backends import VIDEO_FIELDS, CaptionBackend, CaptionJob, Generated
from .frames import FrameKey, stream_node_frames
from .prompts import CaptionLimits

log = logging.getLogger("action100m.captioner")


@dataclass
class CaptionedVideo:
    captions: Captions
    frames_decoded: int
    decode_passes: int
    output_tokens: int

    @property
    def nodes_failed(self) -> int:
        return sum(1 for c in self.captions.nodes.values() if c.errors)


@dataclass
class CaptionStats:
    decode_seconds: float = 0.0
    generate_seconds: float = 0.0
    wall_seconds: float = 0.0
    batches: int = 0
    jobs: int = 0


class _CaptionSession:
    """One video: its tree, the captions written so far, and the jobs each node of the decoding pass makes."""

    def __init__(self, uid: str, tree: SegmentTree, limits: CaptionLimits, models: dict[str, str]):
        self.uid, self.tree, self.limits, self.models = uid, tree, limits, models
        self.captions = {n.node_id: NodeCaptions() for n in tree.nodes}
        self.frames_decoded = self.passes = self.output_tokens = 0
        self.max_new_tokens = {
            "plm_caption": limits.caption_max_new_tokens,
            "plm_action": limits.action_max_new_tokens,
            "llama3_caption": limits.image_max_new_tokens,
        }

    def on_chunk(self, node_frames: tuple[FrameKey, np.ndarray]) -> list[CaptionJob]:
        key, frames = node_frames
        fields = VIDEO_FIELDS if key.kind == "video" else ("llama3_caption",)
        return [CaptionJob(self.uid, key.node_id, name, frames, self.max_new_tokens[name]) for name in fields]

    def on_end(self, decoding: tuple[int, int]) -> list[CaptionJob]:
        self.frames_decoded, self.passes = decoding
        return []

    def apply(self, job: CaptionJob, output: Generated | BaseException) -> None:
        node = self.captions[job.node_id]
        if isinstance(output, BaseException):
            node.errors[job.field] = f"{type(output).__name__}: {output}"
        else:
            setattr(node, job.field, output.text)
            self.output_tokens += output.output_tokens

    def finish(self) -> CaptionedVideo:
        models = {"video": self.models.get("video", ""), "image": self.models.get("image", "")}
        return CaptionedVideo(
            Captions(self.uid, self.captions, models), self.frames_decoded, self.passes, self.output_tokens
        )


def caption_videos(
    backend: CaptionBackend,
    videos: Sequence[tuple[str, VideoSource, SegmentTree]],
    limits: CaptionLimits = CaptionLimits(),
    stats: CaptionStats | None = None,
    keep_going: Callable[[], None] = lambda: None,
) -> Iterator[tuple[str, CaptionedVideo | BaseException]]:
    """Captions (video_uid, local path, tree) triples; yields each video's result or error as soon as it is done."""
    stats = stats if stats is not None else CaptionStats()
    started = time.monotonic()

    def generate(jobs: list[CaptionJob]) -> list[Generated | BaseException]:
        t0 = time.monotonic()
        outputs: list[Generated | BaseException]
        try:
            outputs = list(backend.generate(jobs))
        except Exception as batch_error:  # retried one by one to isolate the bad job
            log.warning("a batch of %d %s jobs failed (%s); retrying one by one", len(jobs), jobs[0].field, batch_error)
            outputs = []
            for job in jobs:
                try:
                    outputs.append(backend.generate([job])[0])
                except Exception as error:
                    outputs.append(error)
        stats.generate_seconds += time.monotonic() - t0
        stats.batches += 1
        stats.jobs += len(jobs)
        return outputs

    def open_session(event: VideoStarted[SegmentTree]) -> _CaptionSession:
        return _CaptionSession(event.video_uid, event.info, limits, backend.models)

    yield from cross_video_batches(
        _decode_all(videos, limits, stats),
        open_session,
        generate,
        limits.batch_size,
        batch_key=lambda job: job.field,
        keep_going=keep_going,
        queue_depth=4 * limits.batch_size,
        name="captioner-decode",
        unit="captions",
    )
    stats.wall_seconds += time.monotonic() - started


def _decode_all(
    videos: Sequence[tuple[str, VideoSource, SegmentTree]], limits: CaptionLimits, stats: CaptionStats
) -> Iterator[VideoEvent]:
    """Per video: started (with its tree), one chunk per node as the single decoding pass completes
    its frames, then ended (frames decoded, passes), or failed."""
    for uid, path, tree in videos:
        t0 = time.monotonic()
        try:
            reader = VideoReader(path)
            yield VideoStarted(uid, tree)
            for key, frames in stream_node_frames(reader, tree, limits.video_frames, limits.video_frame_size):
                stats.decode_seconds += time.monotonic() - t0
                yield VideoChunk(uid, (key, frames))
                t0 = time.monotonic()
            stats.decode_seconds += time.monotonic() - t0
            yield VideoEnded(uid, (reader.stats.frames_decoded, reader.stats.passes))
        except Exception as error:
            yield VideoFailed(uid, error)
