"""The viewer's HTTP side: videos with Range requests, S3 videos through presigned URLs, and nothing
served from outside the datasets and the video roots."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from action100m.common.release import write_parquet
from action100m.common.release.synthetic import balanced_tree_row
from action100m.common.store import ArtifactStore, S3Settings
from action100m.viewer import catalog as catalog_module
from action100m.viewer.catalog import data_script, load_catalog

from .conftest import XSS_CAPTION


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get(url: str, headers: dict[str, str] | None = None, follow: bool = True) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener() if follow else urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_a_range_request_returns_206_with_exactly_those_bytes(serve, demo_output):
    served = serve([demo_output / "out"])
    whole = (demo_output / "videos" / "kitchen.mp4").read_bytes()
    status, headers, body = get(f"{served.url}media/0", {"Range": "bytes=100-1099"})
    assert status == 206 and body == whole[100:1100]
    assert headers["content-range"] == f"bytes 100-1099/{len(whole)}"
    assert get(f"{served.url}media/0")[2] == whole


def test_nothing_outside_the_datasets_and_video_roots_is_served(serve, demo_output, tmp_path):
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not for the browser")
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "kitchen.mp4").symlink_to(secret)  # a symlink that leads out of the video root
    served = serve([demo_output / "out" / "dataset"], videos=str(videos))
    index = get(f"{served.url}data/index.js")[2].decode()
    assert '"has_video":false' in index and '"has_video":true' not in index
    for path in (
        "media/0",
        "media/7",
        "media/-1",
        "../secret.mp4",
        "%2e%2e/%2e%2e/etc/passwd",
        "data/../../x.js",
        "app.py",
    ):
        status, _, body = get(served.url + path)
        assert status == 404 and b"not for the browser" not in body, path


def test_s3_videos_play_through_presigned_urls(serve, demo_output, moto_s3, monkeypatch):
    endpoint = urlsplit(moto_s3).netloc
    settings = S3Settings(endpoint=endpoint, secure=False, access_key="testing", secret_key="testing")
    client = settings.client()
    if not client.bucket_exists("media"):
        client.make_bucket("media")
    store = ArtifactStore(["s3://media/videos"], s3=settings)
    data = (demo_output / "videos" / "garden.mp4").read_bytes()
    store.put_bytes("s3://media/videos/garden.mp4", data)
    for name, value in {
        "A100M_S3_ENDPOINT": moto_s3,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    served = serve([demo_output / "out" / "dataset"], videos="s3://media/videos")
    catalog = load_catalog([str(demo_output / "out" / "dataset")], "s3://media/videos")
    number = [v.uid for v in catalog.videos].index("garden")
    status, headers, _ = get(f"{served.url}media/{number}", follow=False)
    assert status == 307 and "X-Amz-Signature=" in headers["location"]
    assert get(headers["location"])[2] == data


def data_of(text: str) -> dict:
    """The payload of a data file (`A100M.add(name, payload);`)."""
    return json.loads(text[text.index(",") + 1 : text.rindex(")")])


def test_the_search_index_comes_in_parts_of_bounded_size(serve, tmp_path, monkeypatch):
    monkeypatch.setattr(catalog_module, "SEARCH_PART_NODES", 60)  # compressed: 20,000 in use
    sizes = [30, 30, 50, 90, 10]  # videos of 30 + 30 nodes share a part; the 90-node video is alone
    rows = [balanced_tree_row(f"v{number}", nodes) for number, nodes in enumerate(sizes)]
    for number, row in enumerate(rows):
        row["metadata"]["title"] = f"Video {number}"
    served = serve([write_parquet(rows, tmp_path / "many.parquet")])
    index = data_of(get(f"{served.url}data/index.js")[2].decode())
    assert index["search_parts"] == 4
    numbers_by_part = []
    for part in range(4):
        status, _, body = get(f"{served.url}data/search-{part}.js")
        assert status == 200
        entries = data_of(body.decode())["entries"]
        numbers_by_part.append(sorted({number for number, _, _ in entries}))
        # every node of the part's videos, and their titles
        assert len(entries) == sum(sizes[number] + 1 for number in numbers_by_part[-1])
    assert numbers_by_part == [[0, 1], [2], [3], [4]]
    for name in ("search-4", "search", "search-", "search-%C2%B2", "video-%C2%B2", "video-5"):
        assert get(f"{served.url}data/{name}.js")[0] == 404, name


def test_data_files_cannot_close_a_script_element():
    text = data_script("video-0", {"title": "</script><script>alert(1)</script>", "x": XSS_CAPTION})
    assert "</script" not in text and "<" not in text
    payload = json.loads(text.removeprefix('A100M.add("video-0",').removesuffix(");\n"))
    assert payload["title"] == "</script><script>alert(1)</script>"


@pytest.mark.parametrize("command", [["view", "--help"], ["plot", "--help"]])
def test_the_commands_document_themselves(command):
    import subprocess
    import sys

    answer = subprocess.run(
        [sys.executable, "-m", "action100m.cli", *command], capture_output=True, text=True, env={**os.environ}
    )
    assert answer.returncode == 0 and "DATASET" in answer.stdout


def test_a_run_folders_manifest_cannot_make_the_viewer_serve_other_files(serve, demo_output, tmp_path):
    """A run folder (made by hand, or by a run over a hostile manifest) whose manifest names a
    private file outside the run's roots, and a non-video file inside them: neither is served."""
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(demo_output / "out", folder)
    private = tmp_path / "private" / "shadow"
    private.parent.mkdir()
    private.write_bytes(b"root:secret")
    inside = demo_output / "videos" / "notes.txt.mp4"  # inside the run's roots, named like a video
    inside.write_bytes(b"not a video at all")
    record = json.loads((folder / "run.json").read_text())
    manifest = urlsplit(record["manifest"]).path
    rows = [json.loads(line) for line in Path(manifest).read_text().splitlines()]
    rows[0]["uri"] = private.as_uri()
    rows[1]["uri"] = inside.as_uri()
    (folder / "artifacts" / "inputs" / "0123456789abcdef.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    record["manifest"] = (folder / "artifacts" / "inputs" / "0123456789abcdef.jsonl").as_uri()
    (folder / "run.json").write_text(json.dumps(record))
    served = serve([folder])
    for number in (0, 1):
        status, _, body = get(f"{served.url}media/{number}")
        assert status == 404 and b"secret" not in body and b"not a video" not in body
    assert get(f"{served.url}media/2")[0] == 200  # the third row's real video still plays
    inside.unlink()


def test_requests_for_another_host_name_are_refused(serve, demo_output):
    """DNS rebinding: a page of another site whose name resolves to 127.0.0.1 sends its own Host."""
    from action100m.viewer.server import allowed_hosts

    served = serve([demo_output / "out"])
    assert get(served.url)[0] == 200
    assert get(served.url, {"Host": "evil.example.com"})[0] == 400
    assert get(served.url, {"Host": f"localhost:{served.port}"})[0] == 200
    assert allowed_hosts("0.0.0.0") == ["*"] and allowed_hosts("10.1.2.3") == ["10.1.2.3"]
