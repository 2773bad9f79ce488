"""The artifact store against a local folder, a moto S3 server, and MinIO (when Docker answers)."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from action100m.common.store import ArtifactNotFound, ArtifactStore, S3Settings
from action100m.common.uris import UriError

BUCKET = "a100m-test"
MiB = 1024 * 1024


def _s3_store(settings: S3Settings) -> tuple[ArtifactStore, str]:
    client = settings.client()
    if not client.bucket_exists(BUCKET):
        client.make_bucket(BUCKET)
    root = f"s3://{BUCKET}/run-{uuid.uuid4().hex[:8]}"
    # 5 MiB parts (the S3 minimum) so that the 50 MB test really uploads many parts.
    return ArtifactStore([root], s3=settings, part_size=5 * MiB), root


@pytest.fixture(scope="session")
def minio_s3():
    """MinIO in a container via testcontainers; skipped where no Docker engine answers."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as err:
        pytest.skip(f"no Docker engine answers ({type(err).__name__}); MinIO tests need one")
    from testcontainers.minio import MinioContainer

    with MinioContainer() as container:
        config = container.get_config()
        yield S3Settings(
            endpoint=config["endpoint"], secure=False, access_key=config["access_key"], secret_key=config["secret_key"]
        )


@pytest.fixture(params=["file", "moto", pytest.param("minio", marks=pytest.mark.docker)])
def store(request, tmp_path) -> tuple[ArtifactStore, str]:
    if request.param == "file":
        root = f"file://{tmp_path}/artifacts"
        return ArtifactStore([root]), root
    if request.param == "moto":
        endpoint = urlsplit(request.getfixturevalue("moto_s3")).netloc
        return _s3_store(S3Settings(endpoint=endpoint, secure=False, access_key="testing", secret_key="testing"))
    return _s3_store(request.getfixturevalue("minio_s3"))


def test_bytes_round_trip_list_and_delete(store):
    store, root = store
    uri = f"{root}/embeddings/fp1/video-a.npz"
    assert not store.exists(uri)
    assert store.put_bytes(uri, b"features") == uri
    assert store.exists(uri)
    assert store.get_bytes(uri) == b"features"
    store.put_bytes(f"{root}/embeddings/fp1/video-b.npz", b"other")
    store.put_bytes(f"{root}/trees/fp2/video-a.json", b"{}")
    assert store.list(f"{root}/embeddings") == [
        f"{root}/embeddings/fp1/video-a.npz",
        f"{root}/embeddings/fp1/video-b.npz",
    ]
    store.delete(uri)
    assert not store.exists(uri)
    store.delete(uri)  # deleting what is gone is fine
    assert store.list(f"{root}/nothing-here") == []


def test_missing_artifact_is_not_found(store, tmp_path):
    store, root = store
    uri = f"{root}/captions/none.json"
    with pytest.raises(ArtifactNotFound, match=r"none\.json: artifact not found"):
        store.get_bytes(uri)
    with pytest.raises(ArtifactNotFound):
        store.get_file(uri, tmp_path / "download.json")
    assert not (tmp_path / "download.json").exists()
    with pytest.raises(ArtifactNotFound), store.local_path(uri):
        pass


def test_50mb_file_is_uploaded_in_parts_and_comes_back_whole(store, tmp_path):
    store, root = store
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(source, "wb") as handle:
        for _ in range(50):
            chunk = os.urandom(MiB)
            digest.update(chunk)
            handle.write(chunk)
    uri = f"{root}/videos/big.bin"
    store.put_file(uri, source)
    if uri.startswith("s3://"):
        bucket, key = uri[5:].split("/", 1)
        etag = store._s3.stat_object(bucket, key).etag
        assert etag.endswith("-10"), f"expected a 10-part multipart upload, etag {etag}"
    back = store.get_file(uri, tmp_path / "back.bin")
    assert hashlib.sha256(back.read_bytes()).hexdigest() == digest.hexdigest()
    with store.local_path(uri) as local:
        assert local.stat().st_size == 50 * MiB


def test_concurrent_writers_to_distinct_keys(store):
    store, root = store
    payloads = {f"{root}/trees/fp/video-{i:02d}.json": os.urandom(4096 + i) for i in range(24)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda item: store.put_bytes(*item), payloads.items()))
    assert store.list(f"{root}/trees") == sorted(payloads)
    for uri, data in payloads.items():
        assert store.get_bytes(uri) == data


class _BrokenStream(io.RawIOBase):
    """Gives some bytes, then fails like a dropped connection."""

    def __init__(self, good_bytes: int):
        self.left = good_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.left <= 0:
            raise ConnectionResetError("source went away")
        n = min(len(buffer), self.left)
        buffer[:n] = b"x" * n
        self.left -= n
        return n


def test_failed_upload_publishes_nothing(store):
    store, root = store
    uri = f"{root}/captions/half.json"
    with pytest.raises(ConnectionResetError):
        store.put_stream(uri, io.BufferedReader(_BrokenStream(7 * MiB)))
    assert not store.exists(uri)
    assert store.list(f"{root}/captions") == []


def test_uris_outside_the_roots_are_refused(store, tmp_path):
    store, root = store
    if root.startswith("file://"):
        base = root[len("file://") :]
        (tmp_path / "outside").mkdir()
        (tmp_path / "outside" / "secret").write_text("no")
        os.makedirs(base, exist_ok=True)
        os.symlink(tmp_path / "outside", f"{base}/link")
        refused = [
            f"{root}/../outside/secret",
            f"{root}/a/%2e%2e/%2e%2e/outside/secret",
            "file:///etc/passwd",
            f"{root}-evil/x",  # a sibling whose name starts like the root
            f"{root}/link/secret",  # a symlink leading out of the root
            "file://otherhost/etc/passwd",
        ]
    else:
        bucket_root = root[len("s3://") :]
        refused = [
            f"{root}/../other-run/x",
            f"{root}/a/%2e%2e/%2e%2e/x",
            f"s3://another-bucket/{bucket_root.split('/', 1)[1]}/x",
            f"{root}-evil/x",
            f"s3://{BUCKET}/x",
        ]
    refused += ["http://example.com/x", "", "relative/path", f"{root}/x?versionId=1"]
    for uri in refused:
        for action in (lambda u: store.get_bytes(u), lambda u: store.put_bytes(u, b"x"), store.exists, store.delete):
            with pytest.raises(UriError) as err:
                action(uri)
            assert str(uri) in str(err.value) or uri == "" or "%2e" in uri, str(err.value)


def test_settings_come_from_the_environment_and_hide_secrets():
    env = {
        "A100M_S3_ENDPOINT": "http://minio.storage:9000",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "super-secret-value",
        "AWS_REGION": "eu-west-1",
        "A100M_ALLOWED_ROOTS": "s3://videos/in, s3://artifacts",
    }
    settings = S3Settings.from_env(env)
    assert (settings.endpoint, settings.secure, settings.region) == ("minio.storage:9000", False, "eu-west-1")
    assert "super-secret-value" not in repr(settings)
    store = ArtifactStore.from_env(env)
    assert [str(r) for r in store.allow.roots] == ["s3://videos/in", "s3://artifacts/"]
    store.resolve("s3://artifacts/anything/x.json")
    with pytest.raises(UriError):
        store.resolve("s3://videos/out/x.mp4")
    with pytest.raises(ValueError, match="expected http"):
        S3Settings.from_env({"A100M_S3_ENDPOINT": "ftp://x"})


def test_read_only_roots_are_read_never_written(tmp_path):
    """Videos live in read-only roots: readable, never written, even inside a writable root (the
    innermost root decides), and a write naming a request's own input is refused."""
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    (data / "videos" / "clip.mp4").write_bytes(b"source video")
    store = ArtifactStore([f"file://{data}"], read_only_roots=[f"file://{data}/videos"])
    video = f"file://{data}/videos/clip.mp4"
    assert store.get_bytes(video) == b"source video"
    for write in (
        lambda: store.put_bytes(video, b"overwritten"),
        lambda: store.delete(video),
        lambda: store.move(video, f"file://{data}/moved.mp4"),
    ):
        with pytest.raises(UriError, match="inside a read-only root"):
            write()
    assert store.get_bytes(video) == b"source video"
    store.put_bytes(f"file://{data}/artifacts/a.json", b"{}")  # the writable part of the same tree
    with pytest.raises(UriError, match="one of the request's inputs"):
        store.resolve_writable(f"file://{data}/artifacts/a.json", inputs=[f"file://{data}/artifacts/a.json"])
    # a read-only root alone does not make the store writable there
    only_read = ArtifactStore([f"file://{tmp_path}/out"], read_only_roots=[f"file://{data}"])
    assert only_read.get_bytes(video) == b"source video"
    with pytest.raises(UriError, match="outside the configured artifact roots"):
        only_read.put_bytes(f"file://{data}/new.json", b"{}")


def test_signature_changes_when_the_content_does(store):
    store, root = store
    store.put_bytes(f"{root}/v.mp4", b"one")
    first = store.signature(f"{root}/v.mp4")
    assert first == store.signature(f"{root}/v.mp4")
    store.put_bytes(f"{root}/v.mp4", b"two, longer")
    assert store.signature(f"{root}/v.mp4") != first
    with pytest.raises(ArtifactNotFound):
        store.signature(f"{root}/missing.mp4")


def test_a_pod_with_a_web_identity_needs_no_static_keys(moto_s3, tmp_path, monkeypatch):
    """IRSA-style credentials: a service-account token exchanged at STS (moto's STS, served alone)."""
    import threading

    from moto.moto_server.werkzeug_app import create_backend_app
    from werkzeug.serving import make_server

    exchanged = []
    sts_app = create_backend_app("sts")

    def counting(environ, start_response):
        exchanged.append(environ.get("QUERY_STRING", ""))
        return sts_app(environ, start_response)

    sts = make_server("127.0.0.1", 0, counting)
    threading.Thread(target=sts.serve_forever, daemon=True).start()
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bWw6YTEwMG0ifQ.c2ln")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "MINIO_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws here either
    monkeypatch.setenv("A100M_S3_ENDPOINT", moto_s3)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/action100m")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{sts.server_port}")
    try:
        settings = S3Settings.from_env()
        assert settings.access_key is None
        client = settings.client()
        if not client.bucket_exists("irsa"):
            client.make_bucket("irsa")
        store = ArtifactStore(["s3://irsa/run"], s3=settings)
        store.put_bytes("s3://irsa/run/a.json", b"{}")
        assert store.get_bytes("s3://irsa/run/a.json") == b"{}"
        assert any("AssumeRoleWithWebIdentity" in query for query in exchanged)
    finally:
        sts.shutdown()
