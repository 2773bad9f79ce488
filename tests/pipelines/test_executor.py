"""The executor, export and publication against the five real servicers, in this environment.

No vLLM and no KFP: the servicers run in-process on loopback gRPC (the refiner on its transformers
backend with the tiny GPT-OSS), and the test calls what each KFP component calls: `execute` over
the registry's stages. This covers the plan, the fingerprints, the per-video results, the export
and the dataset swap on every machine. The servicers load their models once for the module.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from action100m.captioner.service import SERVICE_NAME as CAPTIONER
from action100m.captioner.service import CaptionerConfig, CaptionerService
from action100m.common.release import check_video
from action100m.common.store import ArtifactStore
from action100m.devtools.synthetic_video import write_video
from action100m.embedder.service import SERVICE_NAME as EMBEDDER
from action100m.embedder.service import EmbedderConfig, EmbedderService
from action100m.pipelines.executor import execute
from action100m.pipelines.export import export_shard, publish_dataset
from action100m.pipelines.local.presets import preset_options
from action100m.pipelines.plan import plan_run
from action100m.pipelines.registry import STAGES, stage
from action100m.pipelines.state import ShardState
from action100m.refiner.service import SERVICE_NAME as REFINER
from action100m.refiner.service import RefinerConfig, RefinerService
from action100m.segmenter.service import SERVICE_NAME as SEGMENTER
from action100m.segmenter.service import SegmenterService
from action100m.transcriber.service import SERVICE_NAME as TRANSCRIBER
from action100m.transcriber.service import TranscriberConfig, TranscriberService
from action100m.v1 import (
    captioner_pb2_grpc,
    embedder_pb2_grpc,
    refiner_pb2_grpc,
    segmenter_pb2_grpc,
    transcriber_pb2_grpc,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def servicers(serve_in_process_once, tiny_models, tmp_path_factory):
    """The five servicers on loopback, their models loaded once for the module's tests."""
    root = f"file://{tmp_path_factory.mktemp('executor')}"
    store = ArtifactStore([root])
    refiner = RefinerConfig(
        backend="transformers",
        model=str(tiny_models["gpt_oss"]),
        device="cpu",
        dtype="float32",
        max_output_tokens=24,
        max_string_chars=40,
        reasoning_parser="",
    )
    captioner = CaptionerConfig(
        video_model=str(tiny_models["perception_lm"]), image_model=str(tiny_models["mllama"]), device="cpu"
    )
    transcriber = TranscriberConfig(model=str(tiny_models["whisper"]), device="cpu", transcribe_max_new_tokens=16)
    served = {
        "transcribe": (
            TranscriberService(store, transcriber),
            transcriber_pb2_grpc.add_TranscriberServicer_to_server,
            TRANSCRIBER,
        ),
        "embed": (
            EmbedderService(store, EmbedderConfig(model=str(tiny_models["vjepa2"]), device="cpu")),
            embedder_pb2_grpc.add_EmbedderServicer_to_server,
            EMBEDDER,
        ),
        "segment": (SegmenterService(store), segmenter_pb2_grpc.add_SegmenterServicer_to_server, SEGMENTER),
        "caption": (CaptionerService(store, captioner), captioner_pb2_grpc.add_CaptionerServicer_to_server, CAPTIONER),
        "refine": (RefinerService(store, refiner), refiner_pb2_grpc.add_RefinerServicer_to_server, REFINER),
    }
    addresses = {}
    for name, (servicer, add, service_name) in served.items():
        host, _channel = serve_in_process_once(servicer, add, service_name)
        addresses[name] = f"127.0.0.1:{host.port}"
    return store, root, addresses


@pytest.fixture
def services(servicers, tmp_path):
    """The module's servicers, and a store root of this test's own."""
    store, _, addresses = servicers
    return store, f"{store_root(store)}/{tmp_path.name}", addresses


def store_root(store: ArtifactStore) -> str:
    return str(store.allow.roots[0]).rstrip("/")


def run_all(store, root, addresses, options, shard_size=2):
    """What the DAG does, step by step, for every shard; returns the published report."""
    plan = plan_run(store, f"{root}/manifest.jsonl", f"{root}/art", shard_size)
    for index in range(plan.shards):
        state = plan.shard(store, index, f"{root}/art")
        for spec in STAGES:  # one task per stage, the state passed on as JSON, as in the DAG
            state = ShardState.from_json(execute(state, [spec], addresses, options, store=store).to_json())
        export_shard(state, f"{root}/dataset", plan, store)
    return publish_dataset(plan, f"{root}/dataset", store)


def test_every_stage_through_the_steps_then_one_dataset(services, tmp_path):
    store, root, addresses = services
    rows = []
    for name, cuts in (("bread", (0, 60)), ("soup", (0, 40, 90)), ("tea", (0,))):
        path = write_video(tmp_path / f"{name}.mp4", frames=125, fps=25, size=(96, 64), scene_starts=cuts)
        rows.append({"video_uid": name, "uri": store.put_file(f"{root}/videos/{name}.mp4", path), "title": name})
    store.put_bytes(f"{root}/manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    options = preset_options("tiny")

    report = run_all(store, root, addresses, options)
    assert sorted(report.done) == ["bread", "soup", "tea"] and not report.failed
    assert {name: s.done for name, s in report.stats.items()} == {
        "transcribe": 3,
        "embed": 3,
        "segment": 3,
        "caption": 3,
        "refine": 3,
    }
    assert [uri.rsplit("/", 1)[1] for uri in report.files] == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    table_rows = [r for uri in report.files for r in pq.read_table(uri.removeprefix("file://")).to_pylist()]
    assert sorted(r["video_uid"] for r in table_rows) == ["bread", "soup", "tea"]
    assert all(check_video(r) == [] for r in table_rows)
    assert {r["metadata"]["title"] for r in table_rows} == {"bread", "soup", "tea"}
    assert all(r["metadata"]["transcript"] is None for r in table_rows)  # no sound: no transcript, not failed

    # A rerun finds everything published: no service call at all.
    again = run_all(store, root, addresses, options)
    assert all(s.calls == 0 and s.cached == 3 for s in again.stats.values())
    assert {n: c.fingerprint for n, c in again.stages.items()} == {n: c.fingerprint for n, c in report.stages.items()}

    # One refine option changed: new refine fingerprint, upstream untouched and not recomputed.
    changed = run_all(store, root, addresses, {**options, "refine": stage("refine").options(rounds=1)}, shard_size=3)
    for name in ("transcribe", "embed", "segment", "caption"):
        assert changed.stages[name].fingerprint == report.stages[name].fingerprint
        assert changed.stats[name].calls == 0
    assert changed.stages["refine"].fingerprint != report.stages["refine"].fingerprint
    assert changed.stats["refine"].done == 3
    # the dataset was swapped whole: the old two-shard files are gone
    assert [uri.rsplit("/", 1)[1] for uri in store.list(f"{root}/dataset/data")] == ["train-00000-of-00001.parquet"]


def stages_on(store, root, addresses, rows, names=("embed", "segment")):
    """Plans a manifest of these rows and runs the named stages on its one shard; returns the state."""
    store.put_bytes(f"{root}/manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    plan = plan_run(store, f"{root}/manifest.jsonl", f"{root}/art", shard_size=len(rows))
    state = plan.shard(store, 0, f"{root}/art")
    return execute(state, [stage(name) for name in names], addresses, store=store)


def test_a_video_is_known_by_its_input_not_only_its_uid(services, tmp_path):
    """Another file under the same uid, or the same file edited in place, is computed anew: a rerun
    never serves one input's results for another."""
    store, root, addresses = services
    one = write_video(tmp_path / "one.mp4", frames=100, fps=25, size=(96, 64), scene_starts=(0,))
    two = write_video(tmp_path / "two.mp4", frames=100, fps=25, size=(96, 64), scene_starts=(0, 50))
    a = store.put_file(f"{root}/A/clip.mp4", one)
    b = store.put_file(f"{root}/B/clip.mp4", two)

    first = stages_on(store, root, addresses, [{"video_uid": "clip", "uri": a}])
    other = stages_on(store, root, addresses, [{"video_uid": "clip", "uri": b}])
    assert first.stats["embed"].done == 1 and other.stats["embed"].done == 1  # not served A's
    tree_of = lambda state: json.loads(store.get_bytes(state.artifact(stage("segment"), state.videos[0])))  # noqa: E731
    assert tree_of(first) != tree_of(other)

    store.put_file(a, two)  # edited in place: same URI, new content
    edited = stages_on(store, root, addresses, [{"video_uid": "clip", "uri": a}])
    assert edited.stats["embed"].done == 1 and edited.stats["embed"].cached == 0
    assert tree_of(edited) == tree_of(other)
    again = stages_on(store, root, addresses, [{"video_uid": "clip", "uri": a}])
    assert again.stats["embed"].cached == 1 and again.stats["embed"].calls == 0


def test_any_uid_has_its_own_artifacts(services, tmp_path):
    """`#`, `?`, `/`, spaces, percent signs and non-ASCII in uids: every video is processed and no
    two uids share a key."""
    store, root, addresses = services
    video = write_video(tmp_path / "v.mp4", frames=50, fps=25, size=(96, 64), scene_starts=(0,))
    uids = ["a/b", "a_b", "c d", "c%20d", "x#y?z", "ü/..", "%2e%2e"]
    rows = [{"video_uid": uid, "uri": store.put_file(f"{root}/videos/{i}.mp4", video)} for i, uid in enumerate(uids)]
    state = stages_on(store, root, addresses, rows, names=("embed",))
    assert not state.failed and state.stats["embed"].done == len(uids)
    keys = [state.artifact(stage("embed"), v) for v in state.videos]
    assert len(set(keys)) == len(uids) and all(store.exists(k) for k in keys)


def test_a_video_replaced_after_planning_fails_instead_of_mixing_with_its_old_tree(services, tmp_path):
    """An 8 s video is planned and its tree made; then the file is replaced by a 3 s one: the caption
    stage, which reads the video, fails it ("changed since planning"); a rerun plans it anew."""
    store, root, addresses = services
    long = write_video(tmp_path / "long.mp4", frames=200, fps=25, size=(96, 64), scene_starts=(0, 100))
    short = write_video(tmp_path / "short.mp4", frames=75, fps=25, size=(96, 64), scene_starts=(0,))
    uri = store.put_file(f"{root}/videos/clip.mp4", long)
    state = stages_on(store, root, addresses, [{"video_uid": "clip", "uri": uri}])
    assert not state.failed
    store.put_file(uri, short)  # replaced after its tree was published

    state = execute(state, [stage("caption")], addresses, store=store)
    failure = state.failed["clip"]
    assert (failure.stage, failure.code) == ("caption", "FAILED_PRECONDITION")
    assert "changed since planning" in failure.reason and not store.exists(
        state.artifact(stage("caption"), state.videos[0])
    )

    again = stages_on(
        store, root, addresses, [{"video_uid": "clip", "uri": uri}], names=("embed", "segment", "caption")
    )
    assert not again.failed and again.stats["embed"].done == 1  # planned anew: the new file's own artifacts


def test_one_file_under_many_uids_is_decoded_and_embedded_once(services, tmp_path):
    store, root, addresses = services
    uri = store.put_file(f"{root}/videos/same.mp4", write_video(tmp_path / "v.mp4", frames=50, fps=25, size=(96, 64)))
    rows = [{"video_uid": f"copy{i}", "uri": uri} for i in range(40)]
    state = stages_on(store, root, addresses, rows)
    embed = state.stats["embed"]
    assert not state.failed and (embed.done, embed.joined) == (1, 39)
    assert embed.counters["frames_decoded"] == 50  # one decode for the forty
    assert len(store.list(f"{root}/art/embeddings")) == 1
    assert state.stats["segment"].done == 40  # each uid has its own tree (it names its video)


def test_speech_a_subtitle_file_and_silence_reach_the_dataset_as_three_transcripts(
    services, sound_videos, tmp_path, caplog
):
    """The transcriber hears `speech` (no transcript of its own), is not called for `subtitled` (a
    .vtt beside it), and finds nothing in `mute` (no audio stream): the refiner and the parquet get
    the transcriber's entries, the subtitle file's, and null; no video fails."""
    store, root, addresses = services
    videos = {"speech": sound_videos["speech"], "subtitled": sound_videos["silent"], "mute": sound_videos["mute"]}
    rows = [{"video_uid": uid, "uri": store.put_file(f"{root}/videos/{uid}.mp4", p)} for uid, p in videos.items()]
    store.put_bytes(f"{root}/videos/subtitled.vtt", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.500\nhello there\n")
    store.put_bytes(f"{root}/manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())

    with caplog.at_level("INFO", logger="action100m.pipeline"):
        report = run_all(store, root, addresses, preset_options("tiny"), shard_size=3)
    assert sorted(report.done) == ["mute", "speech", "subtitled"] and not report.failed
    assert report.stats["transcribe"].done == 2  # speech and mute; the subtitled video was not sent
    assert "1 of 3 video(s) are not for it (they have a transcript" in caplog.text
    (data,) = report.files
    transcripts = {r["video_uid"]: r["metadata"]["transcript"] for r in pq.read_table(data[7:]).to_pylist()}
    assert transcripts["subtitled"] == [{"time": "1.0", "text": "hello there"}]
    assert transcripts["mute"] is None
    heard = transcripts["speech"]
    assert heard and all(float(entry["time"]) >= 4.8 for entry in heard)  # the speech starts after 5 s
    assert report.metadata_sources == {
        "duration": {"container": 3},
        "transcript": {"subtitles": 1, "speech-recognition": 2},
    }

    # every video already has a transcript: the shard never calls the transcriber
    store.put_bytes(f"{root}/videos/speech.srt", b"1\n00:00:05,500 --> 00:00:07,000\nnow tighten\n")
    store.put_bytes(f"{root}/videos/mute.vtt", b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n(music)\n")
    again = run_all(store, root, addresses, preset_options("tiny"), shard_size=3)
    assert "transcribe" not in again.stats and "transcribe" not in again.stages and not again.failed


def test_a_shard_whose_videos_all_failed_at_plan_has_nothing_to_do(local_store):
    """Every stage of such a shard finishes with nothing to do (no service is called: none is given),
    its file is empty and the report names each video with its reason."""
    store, root = local_store
    rows = [{"video_uid": uid, "uri": f"{root}/nowhere/{uid}.mp4"} for uid in ("a", "b")]
    store.put_bytes(f"{root}/m.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    plan = plan_run(store, f"{root}/m.jsonl", f"{root}/art", shard_size=2)
    state = plan.shard(store, 0, f"{root}/art")
    for spec in STAGES:  # as the DAG's tasks run them, one at a time
        state = execute(state, [spec], {}, store=store)
    export_shard(state, f"{root}/out", plan, store)
    report = publish_dataset(plan, f"{root}/out", store)
    assert report.export.rows == 0 and sorted(report.failed) == ["a", "b"]
    assert {f.stage for f in report.failed.values()} == {"plan"} and "a.mp4" in report.failed["a"].reason


def test_each_input_that_shapes_an_annotation_alone_recomputes_exactly_the_stages_that_read_it(services, tmp_path):
    """One video through the DAG's steps again and again, one input changed each time: which stages
    compute (the others find their artifact), and the transcript exported beside the annotation is
    the one it was made from. Before: switching a video from Whisper to its subtitle file published
    the subtitle transcript beside an annotation written from Whisper's."""
    store, root, addresses = services
    video = write_video(tmp_path / "talk.mp4", frames=125, fps=25, size=(96, 64), scene_starts=(0, 60), with_audio=True)
    uri = store.put_file(f"{root}/videos/talk.mp4", video)
    subtitles = f"{root}/videos/talk.vtt"

    def step(row: dict, options: dict, transcribe: str = "missing") -> tuple[set[str], object]:
        store.put_bytes(
            f"{root}/manifest.jsonl", (json.dumps({"video_uid": "talk", "uri": uri, **row}) + "\n").encode()
        )
        plan = plan_run(store, f"{root}/manifest.jsonl", f"{root}/art", 1, modes={"transcribe": transcribe})
        state = plan.shard(store, 0, f"{root}/art")
        for spec in STAGES:
            state = ShardState.from_json(execute(state, [spec], addresses, options, store=store).to_json())
        export_shard(state, f"{root}/dataset", plan, store)
        report = publish_dataset(plan, f"{root}/dataset", store)
        assert report.done == ["talk"], report.failed
        (row_out,) = pq.read_table(report.files[0].removeprefix("file://")).to_pylist()
        return {name for name, s in report.stats.items() if s.done}, row_out["metadata"]["transcript"]

    options = preset_options("tiny")
    title = {"title": "Fixing a bike"}
    said = [{"time": "1.0", "text": "from the manifest"}]
    everything = {"transcribe", "embed", "segment", "caption", "refine"}
    assert step(title, options)[0] == everything
    assert step(title, options)[0] == set()  # nothing changed: nothing computed
    assert step({"title": "Fixing a bicycle"}, options)[0] == {"refine"}
    store.put_bytes(subtitles, b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nfrom the file\n")
    assert step(title, options) == ({"refine"}, [{"time": "1.0", "text": "from the file"}])  # Whisper no longer
    store.put_bytes(subtitles, b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nedited\n")
    assert step(title, options) == ({"refine"}, [{"time": "1.0", "text": "edited"}])
    assert step({**title, "transcript": said}, options) == ({"refine"}, said)  # the manifest's wins over the file
    # Whisper's transcript replaces the manifest's: its artifact is there already (by the file), the annotation is new
    computed, transcript = step({**title, "transcript": said}, options, transcribe="always")
    assert computed == {"refine"} and transcript != said
    store.delete(subtitles)
    captions = {**options, "caption": stage("caption").options(caption_max_new_tokens=12, action_max_new_tokens=8)}
    assert step(title, captions)[0] == {"caption", "refine"}
    heard = {**captions, "transcribe": stage("transcribe").options(vad=False)}
    assert step(title, heard)[0] == {"transcribe", "refine"}
    write_video(video, frames=100, fps=25, size=(96, 64), scene_starts=(0, 50), with_audio=True)
    store.put_file(f"{root}/videos/talk.mp4", video)  # the same file edited in place: everything again
    assert step(title, heard)[0] == everything


def test_an_annotation_made_from_whispers_transcript_is_not_served_with_the_subtitle_files(services, tmp_path):
    """`--transcribe always`, then `missing`, on a shard where another video still needs Whisper: the
    video with a subtitle file is annotated again from it. Before: its annotation's key named neither
    transcript, so the one made from Whisper's was exported beside the subtitle file's transcript."""
    store, root, addresses = services
    rows = []
    for name in ("talk", "other"):
        video = write_video(
            tmp_path / f"{name}.mp4", frames=100, fps=25, size=(96, 64), scene_starts=(0, 50), with_audio=True
        )
        rows.append({"video_uid": name, "uri": store.put_file(f"{root}/videos/{name}.mp4", video)})
    store.put_bytes(f"{root}/videos/talk.vtt", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nfrom the file\n")
    store.put_bytes(f"{root}/manifest.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())

    def refined(transcribe: str) -> dict[str, int]:
        plan = plan_run(store, f"{root}/manifest.jsonl", f"{root}/art", 2, modes={"transcribe": transcribe})
        state = plan.shard(store, 0, f"{root}/art")
        for spec in STAGES:
            state = execute(state, [spec], addresses, preset_options("tiny"), store=store)
        refine = state.stats["refine"]
        return {"done": refine.done, "cached": refine.cached}

    assert refined("always") == {"done": 2, "cached": 0}
    assert refined("missing") == {"done": 1, "cached": 1}  # talk's annotation again, from its subtitle file
