"""Per-video durability: the captioner is killed (-9) in the middle of a multi-video call.

The pipeline step sees the call die, resumes against the restarted service, and sends only the
videos that had not been published; what was published before the kill is never touched again,
and every video's captions equal those of an undisturbed run.

Which stages are deterministic under another batch composition: the segmenter (one video at a
time, no batching) always; the captioner at batch size 1 (each job runs alone), as here. The
embedder and the captioner with batches > 1, and the refiner (vLLM's continuous batching), are
deterministic only up to floating-point summation order: a different batch changes padding and
kernel tiling, so a recomputed video can differ in the last bits, and greedy decoding can then
pick another token.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from action100m.common.store import ArtifactStore
from action100m.devtools.synthetic_video import write_video
from action100m.embedder.encoder import VJepa2Encoder
from action100m.embedder.pipeline import embed_videos
from action100m.pipelines.executor import RetryPolicy, execute
from action100m.pipelines.keys import uid_key
from action100m.pipelines.local.presets import preset_env, preset_options
from action100m.pipelines.registry import stage
from action100m.pipelines.state import ShardState, StageConfig, VideoEntry
from action100m.segmenter.segment import segment_video

from ..support import ServiceProcess, first_published, free_port, never_written_again

VIDEOS = {"v1": (0, 90), "v2": (0, 60, 120), "v3": (0, 100), "v4": (0, 50, 110)}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trees(tiny_models, tmp_path_factory):
    """Four short synthetic videos and the trees the real embedder and segmenter make of them."""
    folder = tmp_path_factory.mktemp("kill-videos")
    paths = {
        uid: write_video(folder / f"{uid}.mp4", frames=150, fps=25, scene_starts=cuts) for uid, cuts in VIDEOS.items()
    }
    encoder = VJepa2Encoder(str(tiny_models["vjepa2"]), device="cpu")
    embedded = dict(embed_videos(encoder, [(uid, str(p)) for uid, p in paths.items()]))
    return {uid: (paths[uid], segment_video(uid, embedded[uid].embeddings)) for uid in VIDEOS}


def shard_for(store: ArtifactStore, prefix: str, trees) -> ShardState:
    """A shard whose segment stage is done: the trees under a segment fingerprint of their own."""
    state = ShardState(run="kill", shard=0, shards=1, prefix=prefix, videos=[], stages={})
    state.stages["segment"] = StageConfig("segments", [], {})
    for uid, (path, tree) in trees.items():
        video_uri = store.put_file(f"{prefix}/videos/{uid}.mp4", path)
        state.videos.append(VideoEntry(uid, video_uri))
        store.put_bytes(state.artifact(stage("segment"), state.videos[-1]), tree.to_json())
    return state


def captions_of(store: ArtifactStore, state: ShardState) -> dict[str, dict]:
    return {v.video_uid: json.loads(store.get_bytes(state.artifact(stage("caption"), v))) for v in state.videos}


def test_a_killed_call_costs_only_the_unpublished_videos(trees, tiny_models, tmp_path):
    root = f"file://{tmp_path}/store"
    store = ArtifactStore([root])
    env = {
        **preset_env("tiny", Path(tiny_models["vjepa2"]).parent),
        "A100M_ALLOWED_ROOTS": root,
        "A100M_CAPTION_BATCH_SIZE": "1",  # deterministic whatever the call's composition
        "A100M_METRICS_PORT": "-1",
    }
    service = ServiceProcess("captioner", env, free_port(), tmp_path / "captioner.log")
    address = f"127.0.0.1:{service.port}"
    options = preset_options("tiny")
    caption = [stage("caption")], {"caption": address}
    policy = RetryPolicy(attempts=60, initial_backoff=0.5, max_backoff=1.0)
    service.start()
    try:
        service.wait_serving()
        undisturbed = execute(
            shard_for(store, f"{root}/undisturbed", trees), *caption, options, store=store, policy=policy
        )
        expected = captions_of(store, undisturbed)

        state = shard_for(store, f"{root}/killed", trees)
        outcome: dict[str, object] = {}
        step = threading.Thread(
            target=lambda: outcome.update(state=execute(state, *caption, options, store=store, policy=policy))
        )
        step.start()
        published = first_published(store, f"{root}/killed/captions")
        service.kill()  # mid-call: at least one video published, not all
        assert 1 <= len(published) < len(VIDEOS), published.keys()
        service.start()
        step.join(600)
        assert not step.is_alive()

        done: ShardState = outcome["state"]  # type: ignore[assignment]
        stats = done.stats["caption"]
        assert not done.failed, done.failed
        assert stats.retries >= 1 and stats.calls >= 2
        # every video exactly once; after the restart only unpublished ones were computed
        assert stats.done + stats.cached + stats.joined == len(VIDEOS)
        assert stats.done <= len(VIDEOS)
        never_written_again(published)  # published before the kill
        log = (tmp_path / "captioner.log").read_text()
        second_life = log.rsplit("listening on", 1)[1]
        recomputed = {uid for uid in VIDEOS if f"{uid}:OUTCOME_DONE" in second_life}
        published_uids = {
            uid for uid in VIDEOS for uri in published if uri.rsplit("/", 1)[1].startswith(f"{uid_key(uid)}.")
        }
        assert recomputed == set(VIDEOS) - published_uids
        assert captions_of(store, done) == expected  # identical to the undisturbed run, video by video
    finally:
        service.stop()
