"""Captioning the nodes of several videos: one decoding pass per video, batches across nodes and videos.

A CPU thread decodes each video once and turns every node, as soon as the pass completes its
frames, into caption jobs (plm_caption and plm_action on the node's 32 frames, llama3_caption on a
leaf's middle frame). The caller's thread batches jobs of the same field, from any video, and
generates. A batch that fails is retried job by job, so one bad node gets a null caption and its
reason while the others keep theirs.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from action100m.common.artifacts import Captions, NodeCaptions, SegmentTree
from action100m.common.prefetch import prefetched
from action100m.common.stage import VideoFailed
from action100m.common.video import VideoReader

from .backends import CaptionBackend, CaptionJob
from .frames import stream_node_frames
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


@dataclass
class _Video:
    uid: str
    tree: SegmentTree
    captions: dict[str, NodeCaptions] = field(default_factory=dict)
    pending: int = 0
    ended: bool = False
    frames_decoded: int = 0
    passes: int = 0
    output_tokens: int = 0


def caption_videos(
    backend: CaptionBackend,
    videos: Sequence[tuple[str, str, SegmentTree]],
    limits: CaptionLimits = CaptionLimits(),
    stats: CaptionStats | None = None,
    check_alive: Callable[[], None] = lambda: None,
) -> dict[str, CaptionedVideo | BaseException]:
    """Captions (video_uid, local path, tree) triples; each value is the video's result or its error."""
    stats = stats if stats is not None else CaptionStats()
    started = time.monotonic()
    results: dict[str, CaptionedVideo | BaseException] = {}
    states: dict[str, _Video] = {}
    queues: dict[str, list[CaptionJob]] = defaultdict(list)

    def run(jobs: list[CaptionJob]) -> None:
        check_alive()
        t0 = time.monotonic()
        try:
            outputs = backend.generate(jobs)
            done = list(zip(jobs, outputs, [None] * len(jobs), strict=True))
        except Exception as batch_error:  # noqa: BLE001 - retried one by one to isolate the bad job
            log.warning("a batch of %d %s jobs failed (%s); retrying one by one", len(jobs), jobs[0].field, batch_error)
            done = []
            for job in jobs:
                try:
                    done.append((job, backend.generate([job])[0], None))
                except Exception as error:  # noqa: BLE001
                    done.append((job, None, error))
        stats.generate_seconds += time.monotonic() - t0
        stats.batches += 1
        stats.jobs += len(jobs)
        for job, output, error in done:
            video = states.get(job.video_uid)
            if video is None:
                continue
            node = video.captions[job.node_id]
            if error is None:
                setattr(node, job.field, output.text)
                video.output_tokens += output.output_tokens
            else:
                node.errors[job.field] = f"{type(error).__name__}: {error}"
            video.pending -= 1
        finish_ready()

    def finish_ready() -> None:
        for video in list(states.values()):
            if video.ended and video.pending == 0:
                captions = Captions(
                    video.uid,
                    video.captions,
                    {"video": backend.models.get("video", ""), "image": backend.models.get("image", "")},
                )
                results[video.uid] = CaptionedVideo(captions, video.frames_decoded, video.passes, video.output_tokens)
                del states[video.uid]

    for item in prefetched(_jobs_of(videos, limits, stats), depth=4 * limits.batch_size, name="captioner-decode"):
        if isinstance(item, VideoFailed):
            results[item.video_uid] = item.error
            states.pop(item.video_uid, None)
            for name in queues:
                queues[name] = [job for job in queues[name] if job.video_uid != item.video_uid]
            continue
        kind, uid, payload = item
        if kind == "start":
            states[uid] = _Video(uid, payload, {n.node_id: NodeCaptions() for n in payload.nodes})
        elif kind == "job":
            states[uid].pending += 1
            queues[payload.field].append(payload)
            if len(queues[payload.field]) >= limits.batch_size:
                jobs, queues[payload.field] = queues[payload.field], []
                run(jobs)
        elif kind == "end":
            states[uid].ended = True
            states[uid].frames_decoded, states[uid].passes = payload
            finish_ready()
    for name in list(queues):
        while queues[name]:
            jobs, queues[name] = queues[name][: limits.batch_size], queues[name][limits.batch_size :]
            run(jobs)
    finish_ready()
    stats.wall_seconds += time.monotonic() - started
    return results


def _jobs_of(videos, limits: CaptionLimits, stats: CaptionStats) -> Iterator:
    """start, job..., end per video (or VideoFailed), from one decoding pass each."""
    leaf_limit = {
        "plm_caption": limits.caption_max_new_tokens,
        "plm_action": limits.action_max_new_tokens,
        "llama3_caption": limits.image_max_new_tokens,
    }
    for uid, path, tree in videos:
        t0 = time.monotonic()
        try:
            reader = VideoReader(path)
            yield "start", uid, tree
            for key, frames in stream_node_frames(reader, tree, limits.video_frames, limits.video_frame_size):
                fields = ("plm_caption", "plm_action") if key.kind == "video" else ("llama3_caption",)
                stats.decode_seconds += time.monotonic() - t0
                for name in fields:
                    yield "job", uid, CaptionJob(uid, key.node_id, name, frames, leaf_limit[name])
                t0 = time.monotonic()
            stats.decode_seconds += time.monotonic() - t0
            yield "end", uid, (reader.stats.frames_decoded, reader.stats.passes)
        except Exception as error:  # noqa: BLE001 - the video fails, the others go on
            yield VideoFailed(uid, error)
