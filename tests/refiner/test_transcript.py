"""The refiner's prompt carries what the transcriber heard, under both prompt profiles."""

from __future__ import annotations

import json

import pytest

from action100m.common.artifacts import Transcript
from action100m.common.release import read_rows
from action100m.common.release.assemble import from_row
from action100m.common.store import ArtifactStore
from action100m.refiner.markdown import TreeView
from action100m.refiner.profiles import load_profile
from action100m.refiner.prompts import PromptLimits
from action100m.refiner.service import read_job
from action100m.v1 import refiner_pb2

from ..conftest import OFFICIAL_REPO


@pytest.fixture(params=["ours", "official"])
def profile(request):
    if request.param == "ours":
        return load_profile("ours")
    if not OFFICIAL_REPO.exists():
        pytest.skip(f"the official prompt helpers are test data in {OFFICIAL_REPO}, absent here")
    return load_profile(f"official:{OFFICIAL_REPO}")


def first_prompt(profile, job) -> str:
    context = profile.context(TreeView(job.tree, job.captions.nodes), job.metadata, PromptLimits())
    root = next(node for node in job.tree.nodes if node.parent_id is None)
    messages, _ = context.first_messages(root, len)
    return "\n".join(message["content"] for message in messages)


def test_the_transcriber_s_transcript_replaces_the_metadata_s(profile, synthetic_release, tmp_path):
    tree, captions, metadata = from_row(read_rows(str(synthetic_release))[0])
    store = ArtifactStore([f"file://{tmp_path}"])
    given = {**(metadata or {}), "title": "Fixing a bike", "transcript": [{"time": "0.5", "text": "words from before"}]}
    heard = Transcript(tree.video_uid, "whisper", [{"time": "1.92", "text": "tighten the chain to five newton metres"}])
    uris = {name: f"file://{tmp_path}/{name}.json" for name in ("tree", "captions", "metadata", "transcript")}
    store.put_bytes(uris["tree"], tree.to_json())
    store.put_bytes(uris["captions"], captions.to_json())
    store.put_bytes(uris["metadata"], json.dumps(given).encode())
    store.put_bytes(uris["transcript"], heard.to_json())
    item = refiner_pb2.RefineItem(
        video_uid=tree.video_uid,
        tree_uri=uris["tree"],
        captions_uri=uris["captions"],
        metadata_uri=uris["metadata"],
        output_uri=f"file://{tmp_path}/out.json",
    )

    before = first_prompt(profile, read_job(store, item))
    assert "words from before" in before and "tighten the chain" not in before

    item.transcript_uri = uris["transcript"]
    job = read_job(store, item)
    assert job.metadata is not None and job.metadata["title"] == "Fixing a bike"  # the rest is the manifest's
    prompt = first_prompt(profile, job)
    assert "tighten the chain to five newton metres" in prompt and "words from before" not in prompt
    assert "1.92" in prompt


def test_a_video_without_speech_reaches_the_refiner_without_a_transcript(synthetic_release, tmp_path):
    tree, captions, _ = from_row(read_rows(str(synthetic_release))[0])
    store = ArtifactStore([f"file://{tmp_path}"])
    store.put_bytes(f"file://{tmp_path}/tree.json", tree.to_json())
    store.put_bytes(f"file://{tmp_path}/captions.json", captions.to_json())
    store.put_bytes(f"file://{tmp_path}/silence.json", Transcript(tree.video_uid, "whisper", None).to_json())
    item = refiner_pb2.RefineItem(
        video_uid=tree.video_uid,
        tree_uri=f"file://{tmp_path}/tree.json",
        captions_uri=f"file://{tmp_path}/captions.json",
        transcript_uri=f"file://{tmp_path}/silence.json",
        output_uri=f"file://{tmp_path}/out.json",
    )
    assert read_job(store, item).metadata is None  # nothing known, nothing heard: no metadata at all
