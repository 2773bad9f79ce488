"""What planning finds beside a video: `clip.json`, yt-dlp's `clip.info.json` and subtitles, merged
with the container's own tags, the manifest winning field by field."""

from __future__ import annotations

import json

from action100m.common.uris import parse_uri
from action100m.devtools.synthetic_video import write_video
from action100m.pipelines.card import dataset_card
from action100m.pipelines.export import collect_report
from action100m.pipelines.local.context import manifest_rows
from action100m.pipelines.plan import Plan, plan_run

# What `yt-dlp --write-info-json --write-auto-subs --embed-metadata` leaves for one video (the info
# file trimmed to a few of its fields; the real one has every format and thumbnail too).
INFO = {
    "id": "hySSAAw4t24",
    "title": "Journal with Me No. 39 | Midori Traveler's Notebook",
    "description": "Journal with me! Today we use a few paper scraps.\n\nProducts I love and use: ...",
    "view_count": 3170,
    "like_count": 227,
    "duration": 690,
    "upload_date": "20190212",
    "webpage_url": "https://www.youtube.com/watch?v=hySSAAw4t24",
    "formats": [{"format_id": "18", "ext": "mp4", "url": "https://example.invalid/videoplayback"}],
    "categories": ["Howto & Style"],
}
AUTO_CAPTIONS = """WEBVTT
Kind: captions
Language: en

00:00:03.450 --> 00:00:05.960 align:start position:0%
·
hey<00:00:03.900><c> guys</c><00:00:04.200><c> it's</c><00:00:04.500><c> Joe</c>

00:00:05.960 --> 00:00:05.970 align:start position:0%
hey guys it's Joe
·

00:00:05.970 --> 00:00:07.790 align:start position:0%
hey guys it's Joe
welcome<00:00:06.300><c> back</c><00:00:06.700><c> to</c><00:00:07.000><c> the</c><00:00:07.300><c> channel</c>

00:00:07.790 --> 00:00:07.800 align:start position:0%
welcome back to the channel
·

00:00:07.800 --> 00:00:09.650 align:start position:0%
welcome back to the channel
today<00:00:08.100><c> a</c><00:00:08.300><c> simple</c><00:00:08.700><c> journal</c>
""".replace("·", " ")  # YouTube writes a line of one space
# yt-dlp's --embed-metadata tags: the page URL as the comment, the upload date as `date`; the
# container's creation_time is when the file was muxed (today), not when the video was published.
YTDLP_TAGS = {
    "title": "Journal with Me No. 39",
    "comment": "https://www.youtube.com/watch?v=hySSAAw4t24",
    "date": "20190212",
    "creation_time": "2026-12-01T10:00:00.000000Z",
}


def planned(store, root, folder, names):
    manifest = f"{root}/m.jsonl"
    store.put_bytes(manifest, manifest_rows([str(folder / name) for name in names]))
    plan = Plan.load(store, plan_run(store, manifest, f"{root}/art", 8, modes={"transcribe": "never"}).uri)
    return plan, plan.shard(store, 0, f"{root}/art")


def test_a_folder_as_yt_dlp_leaves_it_gives_the_releases_metadata_fields(local_store):
    store, root = local_store
    folder = parse_uri(root).path / "downloads"
    write_video(folder / "hySSAAw4t24.mp4", 60, size=(64, 48), tags=YTDLP_TAGS)
    (folder / "hySSAAw4t24.info.json").write_text(json.dumps(INFO))
    (folder / "hySSAAw4t24.en.vtt").write_text(AUTO_CAPTIONS)
    write_video(folder / "tagged.mp4", 60, size=(64, 48), tags=YTDLP_TAGS)  # no info file: its tags alone
    write_video(folder / "broken.mp4", 60, size=(64, 48))
    (folder / "broken.info.json").write_text('{"title": "cut off')

    plan, shard = planned(store, root, folder, ["hySSAAw4t24.mp4", "tagged.mp4", "broken.mp4"])
    downloaded, tagged = shard.active()
    meta = json.loads(store.get_bytes(downloaded.metadata_uri))
    fields = ("title", "description", "view_count", "like_count", "duration", "upload_date")
    assert {name: meta[name] for name in fields} == {name: INFO[name] for name in fields}
    assert [type(meta[name]) for name in fields] == [str, str, int, int, int, str]
    assert meta["transcript"] == [
        {"time": "3.45", "text": "hey guys it's Joe"},
        {"time": "5.97", "text": "welcome back to the channel"},
        {"time": "7.8", "text": "today a simple journal"},
    ]
    assert downloaded.metadata_sources.split(",") == [f"{name}=info-json" for name in fields] + ["transcript=subtitles"]

    from_tags = json.loads(store.get_bytes(tagged.metadata_uri))
    assert from_tags["description"] is None  # the comment is the page's URL, not a description
    assert from_tags["upload_date"] == "20190212"  # the date tag, not when the file was muxed
    assert from_tags["title"] == "Journal with Me No. 39"

    failure = shard.failed["broken"]
    assert failure.stage == "plan" and "broken.info.json: not a yt-dlp info file: not JSON" in failure.reason

    store.put_bytes(plan.report_uri(0), shard.to_json().encode())
    card = dataset_card(collect_report(plan, store))
    assert (
        "| view_count | yt-dlp's info file beside the video (clip.info.json) or the manifest's info_json_uri | 1 |"
        in card
    )
    assert "| transcript | a subtitle file | 1 |" in card and "| title | the video file's container | 1 |" in card


def test_the_manifest_wins_then_clip_json_then_the_info_file_then_the_container(local_store):
    store, root = local_store
    folder = parse_uri(root).path / "v"
    write_video(folder / "a.mp4", 60, size=(64, 48), tags={"title": "from the container"})
    (folder / "a.json").write_text(json.dumps({"title": "from clip.json", "like_count": 5}))
    (folder / "elsewhere.json").write_text(json.dumps({**INFO, "title": "from the info file", "like_count": 9}))
    rows = [
        {"video_uid": "a", "uri": "v/a.mp4", "view_count": 1, "info_json_uri": "v/elsewhere.json"},
        {"video_uid": "b", "uri": "v/a.mp4", "title": "mine", "info_json_uri": "v/missing.info.json"},
    ]
    store.put_bytes(f"{root}/m.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    plan = Plan.load(store, plan_run(store, f"{root}/m.jsonl", f"{root}/art", 8, modes={"transcribe": "never"}).uri)
    shard = plan.shard(store, 0, f"{root}/art")
    (a,) = shard.active()
    meta = json.loads(store.get_bytes(a.metadata_uri))
    assert (meta["view_count"], meta["title"], meta["like_count"], meta["upload_date"]) == (
        1,
        "from clip.json",
        5,
        "20190212",
    )
    assert a.metadata_sources.startswith("title=sidecar,like_count=sidecar,description=info-json")
    assert "missing.info.json: artifact not found" in shard.failed["b"].reason


def test_an_info_file_whose_values_do_not_fit_fails_its_video_naming_the_file_and_the_field(local_store):
    store, root = local_store
    folder = parse_uri(root).path / "v"
    for name, info in {"count": {"view_count": "many"}, "day": {"upload_date": "20191340"}}.items():
        write_video(folder / f"{name}.mp4", 30, size=(64, 48))
        (folder / f"{name}.info.json").write_text(json.dumps(info))
    _, shard = planned(store, root, folder, ["count.mp4", "day.mp4"])
    assert "count.info.json: metadata.view_count: expected a whole number, got 'many'" in shard.failed["count"].reason
    assert "day.info.json: upload_date '20191340' is not a real day" in shard.failed["day"].reason
