"""The artifacts' disk fills up during a stage (a 4 MB tmpfs): the videos that cannot be written
fail at once with the reason, nothing half-written is left, and once there is room a rerun finishes
them without touching what was published before. Needs root to mount a tmpfs (skipped otherwise).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from action100m.common.store import PARTIAL_SUFFIX, ArtifactStore
from action100m.devtools.synthetic_video import write_video
from action100m.embedder.service import SERVICE_NAME as EMBEDDER
from action100m.embedder.service import EmbedderConfig, EmbedderService
from action100m.pipelines.executor import execute
from action100m.pipelines.plan import plan_run
from action100m.pipelines.registry import stage
from action100m.v1 import embedder_pb2_grpc

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def fill(folder) -> None:
    """Writes a filler file until the disk is full."""
    with open(folder / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass


def test_a_full_disk_fails_the_videos_it_cannot_hold_and_a_rerun_finishes_them(
    small_disk, tiny_models, serve_in_process, tmp_path
):
    videos = tmp_path / "videos"
    art = f"file://{small_disk}/art"
    store = ArtifactStore([f"file://{small_disk}"], read_only_roots=[f"file://{videos}"])
    rows = []
    for index in range(3):
        path = write_video(videos / f"v{index}.mp4", frames=100, fps=25, size=(96, 64), scene_starts=(0, 40))
        rows.append({"video_uid": f"v{index}", "uri": f"file://{path}"})
    embedder = EmbedderService(store, EmbedderConfig(model=str(tiny_models["vjepa2"]), device="cpu"))
    host, _ = serve_in_process(embedder, embedder_pb2_grpc.add_EmbedderServicer_to_server, EMBEDDER)
    address = f"127.0.0.1:{host.port}"

    def manifest(count: int) -> str:
        (small_disk / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:count]))
        return f"file://{small_disk}/m.jsonl"

    embed = [stage("embed")], {"embed": address}
    first = execute(plan_run(store, manifest(1), art, 3).shard(store, 0, art), *embed, store=store)
    published = {uri: store.get_bytes(uri) for uri in store.list(f"{art}/embeddings")}
    assert first.stats["embed"].done == 1 and len(published) == 1

    plan = plan_run(store, manifest(3), art, 3)
    fill(small_disk)
    full = execute(plan.shard(store, 0, art), *embed, store=store)
    assert full.stats["embed"].cached == 1 and full.stats["embed"].retries == 0  # not retried: it cannot pass
    assert {uid: (f.code, f.reason.split(":")[0]) for uid, f in full.failed.items()} == {
        "v1": ("RESOURCE_EXHAUSTED", "no space left on device"),
        "v2": ("RESOURCE_EXHAUSTED", "no space left on device"),
    }
    assert not [p for p in small_disk.rglob("*") if p.name.endswith(PARTIAL_SUFFIX)]  # nothing half-written

    (small_disk / "filler").unlink()
    again = execute(plan.shard(store, 0, art), *embed, store=store)
    assert not again.failed and again.stats["embed"].done == 2 and again.stats["embed"].cached == 1
    assert {uri: store.get_bytes(uri) for uri in published} == published
