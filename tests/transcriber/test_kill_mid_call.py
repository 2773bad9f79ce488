"""The transcriber killed (-9) in the middle of a multi-video call: the step resumes against the
restarted service and sends only the videos whose transcript was not published; what was
published is never written again, and a rerun recomputes nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from action100m.common.store import ArtifactStore
from action100m.pipelines.executor import RetryPolicy, execute
from action100m.pipelines.local.presets import preset_env
from action100m.pipelines.registry import stage
from action100m.pipelines.state import ShardState, VideoEntry

from ..support import ServiceProcess, first_published, free_port, never_written_again

UIDS = [f"talk{i}" for i in range(8)]
pytestmark = pytest.mark.slow


def test_a_killed_transcriber_costs_only_the_unpublished_videos(sound_videos, tiny_models, tmp_path):
    root = f"file://{tmp_path}/store"
    store = ArtifactStore([root])
    state = ShardState(run="kill", shard=0, shards=1, prefix=f"{root}/art", videos=[])
    for uid in UIDS:  # the same speech under eight files: eight inputs, eight transcripts
        uri = store.put_file(f"{root}/videos/{uid}.mp4", sound_videos["speech"])
        state.videos.append(VideoEntry(uid, uri, signature=store.signature(uri), optional_stages=("transcribe",)))
    planned = state.to_json()
    env = {
        **preset_env("tiny", Path(tiny_models["whisper"]).parent),
        "A100M_ALLOWED_ROOTS": root,
        "A100M_TRANSCRIBE_BATCH_SIZE": "1",
        "A100M_METRICS_PORT": "-1",
    }
    service = ServiceProcess("transcriber", env, free_port(), tmp_path / "transcriber.log")
    transcribe = [stage("transcribe")], {"transcribe": f"127.0.0.1:{service.port}"}
    policy = RetryPolicy(attempts=60, initial_backoff=0.5, max_backoff=1.0)
    service.start()
    try:
        service.wait_serving()
        outcome: dict[str, ShardState] = {}
        step = threading.Thread(
            target=lambda: outcome.update(state=execute(state, *transcribe, store=store, policy=policy))
        )
        step.start()
        published = first_published(store, f"{root}/art/transcripts")
        service.kill()  # mid-call: at least one video published, not all
        assert 1 <= len(published) < len(UIDS), published.keys()
        service.start()
        step.join(600)
        assert not step.is_alive()

        done = outcome["state"]
        stats = done.stats["transcribe"]
        assert not done.failed and stats.retries >= 1 and stats.calls >= 2
        assert stats.done + stats.cached + stats.joined == len(UIDS)
        never_written_again(published)  # published before the kill
        second_life = (tmp_path / "transcriber.log").read_text().rsplit("listening on", 1)[1]
        recomputed = {uid for uid in UIDS if f"{uid}:OUTCOME_DONE" in second_life}
        # keyed by the file, not the uid (the same file under many uids is transcribed once)
        published_uids = {v.video_uid for v in done.videos if done.artifact(stage("transcribe"), v) in published}
        assert recomputed == set(UIDS) - published_uids

        again = execute(ShardState.from_json(planned), *transcribe, store=store, policy=policy)
        assert again.stats["transcribe"].cached == len(UIDS) and again.stats["transcribe"].calls == 0
    finally:
        service.stop()
