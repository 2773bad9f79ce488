"""The S3 server goes away for a while in the middle of a stage: nothing is lost, nothing fails.

Timers are compressed: an outage of seconds stands for minutes, and the store's patience and the
step's backoff are shortened the same way. The server is cut by a proxy in front of moto (a real
S3 server restarting would lose moto's in-memory objects; a real one keeps them).
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import pytest

from action100m.common.store import ArtifactStore, S3Settings, is_unavailable
from action100m.devtools.synthetic_video import write_video
from action100m.embedder.service import SERVICE_NAME as EMBEDDER
from action100m.embedder.service import EmbedderConfig, EmbedderService
from action100m.pipelines.executor import RetryPolicy, execute
from action100m.pipelines.plan import plan_run
from action100m.pipelines.registry import stage
from action100m.segmenter.service import SERVICE_NAME as SEGMENTER
from action100m.segmenter.service import SegmenterService
from action100m.v1 import embedder_pb2_grpc, segmenter_pb2_grpc

from .network import OutageProxy

pytestmark = pytest.mark.slow
BUCKET = "a100m-outage"
FAST = RetryPolicy(attempts=8, initial_backoff=1.0, max_backoff=2.0)


def s3_store(endpoint: str, root: str, outage_seconds: float) -> ArtifactStore:
    settings = S3Settings(
        endpoint=urlsplit(endpoint).netloc,
        secure=False,
        access_key="testing",
        secret_key="testing",
        outage_seconds=outage_seconds,
    )
    return ArtifactStore([root], s3=settings)


@pytest.fixture
def embedded(moto_s3, tiny_models, serve_in_process, tmp_path):
    """Three videos embedded in a moto bucket; a segmenter whose store goes through a proxy the test
    can cut, and gives up on an unreachable store at once (its videos fail UNAVAILABLE)."""
    root = f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}"
    direct = s3_store(moto_s3, root, outage_seconds=0)
    if not direct._s3.bucket_exists(BUCKET):
        direct._s3.make_bucket(BUCKET)
    rows = []
    for index in range(3):
        path = write_video(tmp_path / f"v{index}.mp4", frames=100, fps=25, size=(96, 64), scene_starts=(0, 40))
        rows.append({"video_uid": f"v{index}", "uri": direct.put_file(f"{root}/videos/v{index}.mp4", path)})
    direct.put_bytes(f"{root}/manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    embedder = EmbedderService(direct, EmbedderConfig(model=str(tiny_models["vjepa2"]), device="cpu"))
    host, _ = serve_in_process(embedder, embedder_pb2_grpc.add_EmbedderServicer_to_server, EMBEDDER)
    plan = plan_run(direct, f"{root}/manifest.jsonl", f"{root}/art", shard_size=3)
    state = execute(
        plan.shard(direct, 0, f"{root}/art"), [stage("embed")], {"embed": f"127.0.0.1:{host.port}"}, store=direct
    )
    assert state.stats["embed"].done == 3

    proxy = OutageProxy(urlsplit(moto_s3).port)
    proxy.up()
    segmenter = SegmenterService(s3_store(proxy.endpoint, root, outage_seconds=0))
    host, _ = serve_in_process(segmenter, segmenter_pb2_grpc.add_SegmenterServicer_to_server, SEGMENTER)
    published = {uri: direct.get_bytes(uri) for uri in direct.list(f"{root}/art/embeddings")}
    yield proxy, direct, root, state, f"127.0.0.1:{host.port}", published
    proxy.down()


def test_a_store_outage_during_a_stage_is_ridden_out(embedded):
    proxy, direct, root, state, address, published = embedded
    step_store = s3_store(proxy.endpoint, root, outage_seconds=30)  # the step's client waits outages out
    proxy.cut_on(b"/embeddings/", seconds=4.0)  # the segmenter's first read of an embedding: S3 goes away

    state = execute(state, [stage("segment")], {"segment": address}, store=step_store, policy=FAST)

    stats = state.stats["segment"]
    assert proxy.cuts == 1 and not state.failed, state.failed
    assert stats.done == 3 and stats.retries >= 1  # the videos failed UNAVAILABLE were sent again
    assert all(direct.exists(state.artifact(stage("segment"), v)) for v in state.videos)
    assert {uri: direct.get_bytes(uri) for uri in published} == published  # published before: untouched


def test_without_the_step_resending_the_same_outage_loses_the_videos(embedded):
    """What the retries above prevent: one attempt, and the outage fails every video of the call."""
    proxy, direct, _root, state, address, _ = embedded
    proxy.cut_on(b"/embeddings/", seconds=4.0)
    state = execute(state, [stage("segment")], {"segment": address}, store=direct, policy=RetryPolicy(attempts=1))
    assert {f.code for f in state.failed.values()} == {"UNAVAILABLE"} and len(state.failed) == 3
    assert all("the artifact store is unavailable" in f.reason for f in state.failed.values())


def test_the_store_client_waits_out_a_short_outage_and_says_when_it_gives_up(embedded):
    proxy, _direct, root, _, _, published = embedded
    uri = next(iter(published))
    patient, impatient = (s3_store(proxy.endpoint, root, seconds) for seconds in (10, 0))
    assert patient.get_bytes(uri) == published[uri]
    timer = proxy.outage(3.0)
    assert patient.get_bytes(uri) == published[uri]  # retried until the server was back
    timer.join()
    proxy.outage(3.0)
    with pytest.raises(Exception) as error:
        impatient.get_bytes(uri)
    assert is_unavailable(error.value)
