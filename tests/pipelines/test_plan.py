"""Planning: manifests (JSONL, parquet), prefixes with sidecar metadata, the plan as an artifact in the
store, and the errors a manifest can have."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from action100m.common.store import ArtifactStore
from action100m.common.uris import parse_uri
from action100m.pipelines.plan import ManifestError, Plan, plan_run
from action100m.pipelines.registry import stage
from action100m.pipelines.state import StageConfig


def planned_shards(store, videos, prefix, shard_size, transcribe="missing"):
    """The shards as the first step sees them: loaded back from the plan in the store."""
    plan = Plan.load(store, plan_run(store, videos, prefix, shard_size, modes={"transcribe": transcribe}).uri)
    return [plan.shard(store, i, prefix) for i in range(plan.shards)]


def manifest_of(store, root, lines, name="m.jsonl"):
    """A JSONL manifest of these rows, with a small file at each row's video URI."""
    for line in lines:
        if isinstance(line, dict) and str(line.get("uri", "")).startswith(root):
            store.put_bytes(line["uri"], b"video bytes")
    store.put_bytes(f"{root}/{name}", "".join(json.dumps(x) + "\n" for x in lines).encode())
    return f"{root}/{name}"


def test_jsonl_manifest_is_sharded_and_metadata_published(local_store):
    store, root = local_store
    lines = [{"video_uid": f"v{i}", "uri": f"{root}/videos/v{i}.mp4"} for i in range(5)]
    lines[1]["title"] = "Bread"
    lines[2]["metadata"] = {"title": "Soup", "transcript": [{"time": "1.0", "text": "hello"}]}
    shards = planned_shards(store, manifest_of(store, root, lines), f"{root}/art", shard_size=2)
    assert [[v.video_uid for v in s.videos] for s in shards] == [["v0", "v1"], ["v2", "v3"], ["v4"]]
    assert [(s.shard, s.shards) for s in shards] == [(0, 3), (1, 3), (2, 3)]
    v1 = shards[0].videos[1]
    meta = json.loads(store.get_bytes(v1.metadata_uri))
    assert meta == {
        "title": "Bread",
        "description": None,
        "view_count": None,
        "like_count": None,
        "duration": None,
        "upload_date": None,
        "transcript": None,
    }
    assert shards[0].videos[0].metadata_uri == ""
    assert json.loads(store.get_bytes(shards[1].videos[0].metadata_uri))["transcript"][0]["text"] == "hello"


def test_parquet_manifest_and_prefix_with_sidecars(local_store, tmp_path):
    store, root = local_store
    path = tmp_path / "m.parquet"
    pq.write_table(pa.Table.from_pylist([{"video_uid": "a", "uri": f"{root}/x/a.mp4", "view_count": 7}]), path)
    store.put_bytes(f"{root}/x/a.mp4", b"video")
    store.put_file(f"{root}/m.parquet", path)
    (shard,) = planned_shards(store, f"{root}/m.parquet", f"{root}/art", 8)
    assert json.loads(store.get_bytes(shard.videos[0].metadata_uri))["view_count"] == 7

    store.put_bytes(f"{root}/in/cook.mp4", b"video")
    store.put_bytes(f"{root}/in/cook.json", json.dumps({"title": "Cooking", "like_count": 3}).encode())
    store.put_bytes(f"{root}/in/walk.webm", b"video")
    store.put_bytes(f"{root}/in/notes.txt", b"not a video")
    (shard,) = planned_shards(store, f"{root}/in", f"{root}/art", 8)
    assert [v.video_uid for v in shard.videos] == ["cook", "walk"]
    assert json.loads(store.get_bytes(shard.videos[0].metadata_uri))["title"] == "Cooking"


@pytest.mark.parametrize(
    "content,problem",
    [
        (b'{"video_uid": "a"}\n', "line 1 needs 'video_uid' and 'uri'"),
        (b'{"video_uid": "a", "uri": "x"}\nnot json\n', "line 2 is not JSON"),
        (b'{"video_uid": "a", "uri": "x"}\n\n{"video_uid": "a", "uri": "y"}\n', "'a' appears on lines 1 and 3"),
        (b'{"video_uid": "a", "uri": "x"}\n{"video_uid": "b\xff", "uri": "y"}\n', "line 2 is not UTF-8 text"),
        (b'{"video_uid": ["a"], "uri": "x"}\n', "line 1: 'video_uid' must be text"),
        (b"", "no videos found"),
    ],
)
def test_bad_manifests_are_refused_with_the_line_named(local_store, content, problem):
    store, root = local_store
    store.put_bytes(f"{root}/bad.jsonl", content)
    with pytest.raises(ManifestError, match=problem):
        plan_run(store, f"{root}/bad.jsonl", f"{root}/art", 4)


def test_what_passes_through_kfp_stays_the_same_size_whatever_the_number_of_videos(local_store):
    """The plan is in the store; the DAG passes its URI and shard indices, and each shard's state."""
    store, root = local_store
    sizes = {}
    for count in (40, 400):
        lines = [{"video_uid": f"v{i:06d}", "uri": f"{root}/videos/v{i}.mp4", "title": f"t{i}"} for i in range(count)]
        plan = plan_run(store, manifest_of(store, root, lines, f"m{count}.jsonl"), f"{root}/art", shard_size=8)
        assert plan.shards == count // 8 and plan.videos == count
        first = plan.shard(store, 0, f"{root}/art")
        sizes[count] = (len(plan.uri), len(first.to_json()))
        assert sum(len(plan.shard(store, i, f"{root}/art").videos) for i in range(plan.shards)) == count
    # per-shard parameters do not grow with the run (a digit more in the shard count, at most)
    assert sizes[40][0] == sizes[400][0] and abs(sizes[400][1] - sizes[40][1]) <= 4


def test_a_video_that_cannot_be_planned_fails_alone_with_the_field_named(local_store):
    """Metadata is checked against the release schema when planning: lossless coercions are made,
    anything else fails that video (never the shard, never later at refine or export)."""
    store, root = local_store
    lines = [
        {"video_uid": "good", "uri": f"{root}/v/good.mp4", "view_count": "123", "duration": 60.0},
        {"video_uid": "float", "uri": f"{root}/v/float.mp4", "like_count": 12.7},
        {"video_uid": "words", "uri": f"{root}/v/words.mp4", "transcript": "just a string"},
        {"video_uid": "time", "uri": f"{root}/v/time.mp4", "transcript": [{"time": "soon", "text": "hi"}]},
        {"video_uid": "clock", "uri": f"{root}/v/clock.mp4", "transcript": [{"time": "1:02", "text": "hi"}]},
        {"video_uid": "missing", "uri": f"{root}/v/gone.mp4"},
    ]
    manifest = manifest_of(store, root, lines)
    store.delete(f"{root}/v/gone.mp4")
    (shard,) = planned_shards(store, manifest, f"{root}/art", 8)
    assert [v.video_uid for v in shard.active()] == ["good", "clock"]
    assert transcript_of(store, shard.active()[1]) == [{"time": "62.0", "text": "hi"}]  # a clock time, converted
    meta = json.loads(store.get_bytes(shard.videos[0].metadata_uri))
    assert (meta["view_count"], meta["duration"]) == (123, 60)
    failures = {uid: (f.stage, f.code, f.reason) for uid, f in shard.failed.items()}
    assert failures["float"] == ("plan", "INVALID_ARGUMENT", "metadata.like_count: expected a whole number, got 12.7")
    assert failures["words"][2].startswith("metadata.transcript: expected a list of {time, text} entries")
    assert failures["time"][2] == (
        "metadata.transcript[0].time: expected seconds (a number) or a clock time (HH:MM:SS.mmm), got 'soon'"
    )
    assert failures["missing"][:2] == ("plan", "NOT_FOUND") and "gone.mp4" in failures["missing"][2]


def test_uids_made_from_file_names_are_the_decoded_names_and_never_collide(local_store):
    store, root = local_store
    for name in ("A/clip.mp4", "B/clip.mp4", "B/clip.webm", "my clip ü.mp4", "solo.mkv"):
        store.put_bytes(f"{root}/in/{name}", b"video")
    (shard,) = planned_shards(store, f"{root}/in", f"{root}/art", 8)
    by_uid = {v.video_uid: v.uri.rsplit("/in/", 1)[1] for v in shard.videos}
    assert by_uid == {
        "A/clip": "A/clip.mp4",
        "B/clip.mp4": "B/clip.mp4",
        "B/clip.webm": "B/clip.webm",
        "my clip ü": "my%20clip%20%C3%BC.mp4",
        "solo": "solo.mkv",
    }


def test_a_row_a_uid_or_a_uri_can_break_fails_that_video_at_plan_and_the_others_go_on(local_store):
    store, root = local_store
    good = {"video_uid": "good", "uri": f"{root}/videos/good.mp4"}
    hostile = [
        good,
        {"video_uid": "C:\\videos\\clip", "uri": f"{root}/videos/clip.mp4"},  # was: the whole run failed at stage time
        {"video_uid": 0, "uri": f"{root}/videos/zero.mp4"},  # an int uid 0 is a uid
        {"video_uid": "line\nbreak", "uri": f"{root}/videos/nl.mp4"},
        {"video_uid": "lone \ud800", "uri": f"{root}/videos/lone.mp4"},
        {"video_uid": "web", "uri": "http://example.com/v.mp4"},
        {"video_uid": "relative", "uri": "videos/v.mp4"},  # the manifest's folder's videos/v.mp4: not there
        {"video_uid": "dots", "uri": "file:///data/videos/../../etc/passwd"},
        {"video_uid": "otherhost", "uri": "file://otherhost/v.mp4"},
        {"video_uid": "stream", "uri": f"{root}/videos/good.mp4", "stream": "first"},
    ]
    (shard,) = planned_shards(store, manifest_of(store, root, hostile), f"{root}/art", shard_size=20)
    assert [v.video_uid for v in shard.active()] == ["good", "C:\\videos\\clip", "0", "line\nbreak"]
    reasons = {uid: (f.code, f.reason) for uid, f in shard.failed.items()}
    assert reasons["lone \ud800"][0] == "INVALID_ARGUMENT" and "not valid Unicode text" in reasons["lone \ud800"][1]
    assert "unsupported scheme 'http'" in reasons["web"][1]
    assert reasons["relative"][0] == "NOT_FOUND" and f"{root}/videos/v.mp4" in reasons["relative"][1]
    assert "'.' and '..' are not allowed" in reasons["dots"][1]
    assert "file URIs must be local" in reasons["otherhost"][1]
    assert "stream must be a stream number" in reasons["stream"][1]
    shard.stages["embed"] = StageConfig("fp", [], {})
    keys = {shard.artifact(stage("embed"), v) for v in shard.active()}  # each active uid: a key of its own
    assert len(keys) == 4 and all(parse_uri(k) for k in keys)


@pytest.mark.parametrize("kind", ["jsonl", "csv", "json", "parquet"])
def test_a_manifest_names_videos_by_path_absolute_or_relative_to_its_folder(local_store, kind):
    store, root = local_store
    here = parse_uri(root).path / "m"
    for name in ("a.mp4", "sub/b.mp4", "c.mp4", "a.vtt"):
        store.put_bytes(f"{root}/m/{name}", VTT.encode() if name.endswith(".vtt") else b"video bytes")
    rows = [
        {"video_uid": "a", "uri": "a.mp4"},
        {"video_uid": "b", "uri": "sub/b.mp4", "transcript_uri": "a.vtt"},
        {"video_uid": "c", "uri": str(here / "c.mp4")},
        {"video_uid": "d", "uri": "../m/./sub/b.mp4"},
        {"video_uid": "e", "uri": f"{root}/m/c.mp4"},
        {"video_uid": "gone", "uri": "missing.mp4"},
    ]
    if kind == "jsonl":
        store.put_bytes(f"{root}/m/list.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    elif kind == "json":
        store.put_bytes(f"{root}/m/list.json", json.dumps(rows).encode())
    elif kind == "csv":
        lines = [
            "video_uid,uri,transcript_uri",
            *(f"{r['video_uid']},{r['uri']},{r.get('transcript_uri', '')}" for r in rows),
        ]
        store.put_bytes(f"{root}/m/list.csv", "\n".join(lines).encode())
    else:
        table = pa.Table.from_pylist([{"transcript_uri": None, **r} for r in rows])
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        store.put_bytes(f"{root}/m/list.parquet", sink.getvalue().to_pybytes())
    (shard,) = planned_shards(store, f"{root}/m/list.{kind}", f"{root}/art", shard_size=10)
    where = {v.video_uid: v.uri for v in shard.active()}
    assert where == {
        "a": f"{root}/m/a.mp4",
        "b": f"{root}/m/sub/b.mp4",
        "c": f"{root}/m/c.mp4",
        "d": f"{root}/m/sub/b.mp4",
        "e": f"{root}/m/c.mp4",
    }
    assert transcript_of(store, next(v for v in shard.videos if v.video_uid == "b"))[0]["text"] == "first words"
    assert shard.failed["gone"].code == "NOT_FOUND" and f"{root}/m/missing.mp4" in shard.failed["gone"].reason


def test_csv_and_json_array_manifests_are_manifests(local_store):
    store, root = local_store
    for name in ("a.mp4", "b.mp4"):
        store.put_bytes(f"{root}/videos/{name}", b"video bytes")
    store.put_bytes(
        f"{root}/m.csv", f"video_uid,uri,title\na,{root}/videos/a.mp4,Bread\nb,{root}/videos/b.mp4,\n".encode()
    )
    rows = [{"video_uid": "a", "uri": f"{root}/videos/a.mp4"}, {"video_uid": "b", "uri": f"{root}/videos/b.mp4"}]
    store.put_bytes(f"{root}/m.json", json.dumps(rows).encode())
    for manifest in (f"{root}/m.csv", f"{root}/m.json"):
        (shard,) = planned_shards(store, manifest, f"{root}/art", shard_size=4)
        assert [v.video_uid for v in shard.active()] == ["a", "b"], manifest
    store.put_bytes(f"{root}/obj.json", b'{"video_uid": "a"}')
    with pytest.raises(ManifestError, match="expected a JSON array of rows"):
        plan_run(store, f"{root}/obj.json", f"{root}/art", 4)


VTT = "WEBVTT\n\n00:00:01.500 --> 00:00:03.000\nfirst <b>words</b>\n\n00:01:02.250 --> 00:01:04.000\nsecond\nline\n"
SRT = "1\n00:00:00,750 --> 00:00:02,000\nuno\n\n2\n00:00:05,040 --> 00:00:06,000\ndos\n"


def transcript_of(store, video):
    return json.loads(store.get_bytes(video.metadata_uri))["transcript"] if video.metadata_uri else None


def test_subtitle_files_beside_the_videos_or_named_become_their_transcripts(local_store):
    store, root = local_store
    lines = [{"video_uid": uid, "uri": f"{root}/videos/{uid}.mp4"} for uid in ("vtt", "srt", "named", "given", "none")]
    lines[2]["transcript_uri"] = f"{root}/subs/named.srt"
    lines[3]["metadata"] = {"transcript": [{"time": "00:00:07.125", "text": "from the manifest"}]}
    store.put_bytes(f"{root}/videos/vtt.vtt", VTT.encode())
    store.put_bytes(f"{root}/videos/srt.en.srt", SRT.encode())
    store.put_bytes(f"{root}/subs/named.srt", SRT.encode())
    store.put_bytes(f"{root}/videos/given.vtt", VTT.encode())  # the manifest's own transcript wins
    (shard,) = planned_shards(store, manifest_of(store, root, lines), f"{root}/art", shard_size=8)
    vtt, srt, named, given, none = shard.videos
    assert transcript_of(store, vtt) == [
        {"time": "1.5", "text": "first words"},
        {"time": "62.25", "text": "second\nline"},
    ]
    assert (
        transcript_of(store, srt)
        == transcript_of(store, named)
        == [
            {"time": "0.75", "text": "uno"},
            {"time": "5.04", "text": "dos"},
        ]
    )
    assert transcript_of(store, given) == [{"time": "7.125", "text": "from the manifest"}]
    assert none.metadata_uri == "" and not shard.failed
    assert vtt.metadata_sources == named.metadata_sources == "transcript=subtitles" and given.metadata_sources == ""


@pytest.mark.parametrize(
    "mode,transcribed",
    [("missing", ["none", "silent"]), ("always", ["vtt", "given", "empty", "none", "silent"]), ("never", [])],
)
def test_the_transcriber_runs_on_the_videos_the_run_says(local_store, mode, transcribed):
    """`missing` (the default): videos with no transcript from the manifest or a subtitle file; a
    given one, even empty, is used as is. `always`: every video. `never`: none."""
    store, root = local_store
    uids = ("vtt", "given", "empty", "none", "silent")
    lines = [{"video_uid": uid, "uri": f"{root}/videos/{uid}.mp4"} for uid in uids]
    lines[1]["transcript"] = [{"time": 3, "text": "from the manifest"}]
    lines[2]["transcript"] = []
    lines[4]["title"] = "no transcript, only a title"
    store.put_bytes(f"{root}/videos/vtt.vtt", VTT.encode())
    (shard,) = planned_shards(store, manifest_of(store, root, lines), f"{root}/art", shard_size=8, transcribe=mode)
    assert [video.video_uid for video in shard.videos if stage("transcribe").runs_on(video)] == transcribed


def test_an_unknown_transcribe_mode_stops_planning(local_store):
    store, root = local_store
    manifest = manifest_of(store, root, [{"video_uid": "a", "uri": f"{root}/a.mp4"}])
    with pytest.raises(ManifestError, match="transcribe must be one of missing, always, never, got 'sometimes'"):
        plan_run(store, manifest, f"{root}/art", 8, modes={"transcribe": "sometimes"})


def test_a_prefix_of_videos_finds_their_subtitles_in_its_listing(local_store):
    store, root = local_store
    store.put_bytes(f"{root}/clips/a.mp4", b"video")
    store.put_bytes(f"{root}/clips/a.pt-BR.vtt", VTT.encode())
    store.put_bytes(f"{root}/clips/b.mp4", b"video")
    (shard,) = planned_shards(store, f"{root}/clips/", f"{root}/art", shard_size=8)
    a, b = shard.videos
    assert transcript_of(store, a)[1] == {"time": "62.25", "text": "second\nline"} and b.metadata_uri == ""


def test_a_bad_subtitle_file_fails_its_video_at_plan_with_the_file_and_line(local_store):
    store, root = local_store
    lines = [{"video_uid": uid, "uri": f"{root}/videos/{uid}.mp4"} for uid in ("bad", "good")]
    store.put_bytes(
        f"{root}/videos/bad.srt", b"1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 -> 00:00:04,000\nx\n"
    )
    store.put_bytes(f"{root}/videos/good.vtt", VTT.encode())
    (shard,) = planned_shards(store, manifest_of(store, root, lines), f"{root}/art", shard_size=8)
    failure = shard.failed["bad"]
    assert failure.stage == "plan" and "bad.srt: line 6: not a cue timing" in failure.reason
    assert "good" not in shard.failed and transcript_of(store, shard.videos[1])


def tagged_video(path, **tags):
    """A short real video (2.4 s) whose container carries these tags (title, comment, creation_time)."""
    from action100m.devtools.synthetic_video import write_video

    return write_video(path, 60, size=(64, 48), tags=tags)


def test_a_local_videos_own_tags_duration_and_date_fill_the_metadata_the_manifest_lacks(local_store, tmp_path):
    from action100m.pipelines.card import dataset_card
    from action100m.pipelines.export import collect_report

    store, root = local_store
    folder = parse_uri(root).path / "videos"
    tags = {"title": "Fixing a chain", "comment": "Tighten to 5 Nm", "creation_time": "2021-06-30T12:00:00Z"}
    tagged_video(folder / "bike.mp4", **tags)
    tagged_video(folder / "named.mp4", **tags)
    lines = [
        {"video_uid": "bike", "uri": f"{root}/videos/bike.mp4"},
        {"video_uid": "named", "uri": f"{root}/videos/named.mp4", "title": "My own title"},
    ]
    store.put_bytes(f"{root}/m.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode())
    plan = Plan.load(store, plan_run(store, f"{root}/m.jsonl", f"{root}/art", 8).uri)
    bike, named = plan.shard(store, 0, f"{root}/art").videos
    meta = json.loads(store.get_bytes(bike.metadata_uri))
    assert (meta["title"], meta["description"], meta["duration"], meta["upload_date"]) == (
        "Fixing a chain",
        "Tighten to 5 Nm",
        2,
        "20210630",
    )
    assert json.loads(store.get_bytes(named.metadata_uri))["title"] == "My own title"  # the manifest wins
    assert bike.metadata_sources == (
        "title=container,description=container,duration=container,upload_date=container,transcript=speech-recognition"
    )
    assert "title=container" not in named.metadata_sources
    state = plan.shard(store, 0, f"{root}/art")
    store.put_bytes(plan.report_uri(0), state.to_json().encode())
    report = collect_report(plan, store)
    assert report.metadata_sources["title"] == {"container": 1} and report.metadata_sources["duration"] == {
        "container": 2
    }
    card = dataset_card(report)
    assert "## Metadata not from the manifest" in card and "| duration | the video file's container | 2 |" in card


def test_an_s3_videos_own_tags_are_read_from_its_header_through_a_presigned_url(moto_s3, tmp_path):
    """A manifest's S3 video without metadata: its container's header is read with range requests
    (FFmpeg on a presigned URL), never the whole file."""
    from urllib.parse import urlsplit

    from action100m.common.store import ArtifactStore, S3Settings

    settings = S3Settings(endpoint=urlsplit(moto_s3).netloc, secure=False, access_key="testing", secret_key="testing")
    client = settings.client()
    if not client.bucket_exists("plan-tags"):
        client.make_bucket("plan-tags")
    root = "s3://plan-tags/run"
    store = ArtifactStore([root], s3=settings)
    video = tagged_video(tmp_path / "bike.mp4", title="Fixing a chain", creation_time="2021-06-30T12:00:00Z")
    store.put_file(f"{root}/videos/bike.mp4", video)
    store.put_bytes(f"{root}/m.jsonl", json.dumps({"video_uid": "bike", "uri": f"{root}/videos/bike.mp4"}).encode())
    plan = Plan.load(store, plan_run(store, f"{root}/m.jsonl", f"{root}/art", 8).uri)
    (bike,) = plan.shard(store, 0, f"{root}/art").videos
    meta = json.loads(store.get_bytes(bike.metadata_uri))
    assert (meta["title"], meta["duration"], meta["upload_date"]) == ("Fixing a chain", 2, "20210630")
    assert "title=container" in bike.metadata_sources


@pytest.mark.timeout(120)  # before: the FIFO blocked planning for ever, the device filled memory
def test_a_fifo_or_a_device_as_an_input_fails_its_video_at_plan_and_blocks_nothing(local_store, tmp_path):
    import os

    store, root = local_store
    folder = parse_uri(root).path / "videos"
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        store.put_bytes(f"{root}/videos/{name}", b"video bytes")
    os.mkfifo(folder / "a.vtt")  # a subtitle file that is a FIFO: reading it would wait for a writer
    os.mkfifo(folder / "fifo.mp4")
    rows = [
        {"video_uid": "a", "uri": f"{root}/videos/a.mp4"},
        {"video_uid": "b", "uri": f"{root}/videos/b.mp4", "transcript_uri": "file:///dev/zero"},
        {"video_uid": "c", "uri": f"{root}/videos/c.mp4"},
        {"video_uid": "fifo", "uri": f"{root}/videos/fifo.mp4"},
        {"video_uid": "device", "uri": "file:///dev/zero"},
    ]
    store.put_bytes(f"{root}/m.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    roots = ArtifactStore([root], read_only_roots=["file:///dev"])
    (shard,) = planned_shards(roots, f"{root}/m.jsonl", f"{root}/art", shard_size=8)
    assert [v.video_uid for v in shard.active()] == ["c"]
    reasons = {uid: f.reason for uid, f in shard.failed.items()}
    assert "a.vtt: a FIFO, not a regular file" in reasons["a"]
    assert "/dev/zero: a character device, not a regular file" in reasons["b"]
    assert "fifo.mp4: a FIFO, not a regular file" in reasons["fifo"]
    assert "/dev/zero: a character device, not a regular file" in reasons["device"]


def test_an_input_longer_than_its_reader_takes_is_refused_unread(local_store):
    from action100m.common.store import TooLarge

    store, root = local_store
    store.put_bytes(f"{root}/big.vtt", b"WEBVTT\n\n" + b"x" * 2000)
    with pytest.raises(TooLarge, match="2008 bytes, more than the 1000 this input may have"):
        store.get_bytes(f"{root}/big.vtt", max_bytes=1000)
    assert len(store.get_bytes(f"{root}/big.vtt", max_bytes=2008)) == 2008


@pytest.mark.parametrize("date", ["0000-00-00T00:00:00Z", "2021-13-01", "99999999", "20210230"])
def test_a_container_date_that_is_no_real_day_stays_null_and_the_card_says_why(local_store, date):
    from action100m.common.release.container import upload_date
    from action100m.pipelines.card import dataset_card
    from action100m.pipelines.export import collect_report, export_shard

    assert upload_date(date) is None and upload_date("2021-06-30T12:00:00Z") == "20210630"
    store, root = local_store
    tagged_video(parse_uri(root).path / "videos" / "odd.mp4", title="A date from nowhere", date=date)
    store.put_bytes(f"{root}/m.jsonl", json.dumps({"video_uid": "odd", "uri": f"{root}/videos/odd.mp4"}).encode())
    plan = Plan.load(store, plan_run(store, f"{root}/m.jsonl", f"{root}/art", 8).uri)
    (odd,) = plan.shard(store, 0, f"{root}/art").videos
    meta = json.loads(store.get_bytes(odd.metadata_uri))
    assert meta["title"] == "A date from nowhere" and meta["upload_date"] is None
    assert "upload_date=impossible-date" in odd.metadata_sources.split(",")
    export_shard(plan.shard(store, 0, f"{root}/art"), f"{root}/out", plan, store)
    card = dataset_card(collect_report(plan, store))
    assert "| upload_date | null: the file's date is no real day (00000000, month 13, the future) | 1 |" in card
