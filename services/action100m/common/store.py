"""The artifact store: one API over `file://` folders and S3-compatible buckets.

Publication is atomic on both: a local file is written beside its destination and renamed into
place, and an S3 object (single PUT or completed multipart upload) only becomes visible whole.
Every URI passes the allow-list first. S3 endpoint, credentials and TLS come from the
environment (see `S3Settings.from_env`), never from code or requests.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from .uris import AllowList, ArtifactUri, UriError, parse_uri, split_roots

PARTIAL_SUFFIX = ".a100m-partial"
DEFAULT_PART_SIZE = 16 * 1024 * 1024  # S3 multipart part size; S3 requires >= 5 MiB


def is_unavailable(error: BaseException) -> bool:
    """Whether an error says the store could not be reached or answered 5xx (worth retrying later),
    rather than anything about the artifact."""
    import urllib3
    from minio.error import ServerError

    return isinstance(error, (urllib3.exceptions.HTTPError, ServerError, ConnectionError))


class NotRegularFile(UriError):
    """A local location that is a FIFO, a device, a socket: reading it could block or never end."""


class TooLarge(UriError):
    """An input longer than what its reader accepts (a subtitle file of gigabytes)."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def regular_file(path: Path | int, uri: ArtifactUri | str) -> os.stat_result:
    """The status of a file (a path, or an open descriptor); ArtifactNotFound when it is not there
    (or is a folder), NotRegularFile when it is a FIFO, a device or a socket."""
    try:
        info = path.stat() if isinstance(path, Path) else os.fstat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise ArtifactNotFound(uri) from None
    if stat.S_ISDIR(info.st_mode):
        raise ArtifactNotFound(uri)
    if not stat.S_ISREG(info.st_mode):
        raise NotRegularFile(f"{uri}: {_kind(info.st_mode)}, not a regular file: only files are read")
    return info


def _bounded(uri: ArtifactUri | str, size: int, max_bytes: int | None) -> None:
    if max_bytes is not None and size > max_bytes:
        raise TooLarge(f"{uri}: {size} bytes, more than the {max_bytes} this input may have")


class ArtifactNotFound(FileNotFoundError):
    """The named artifact does not exist."""

    def __init__(self, uri: ArtifactUri | str):
        super().__init__(f"{uri}: artifact not found")
        self.uri = str(uri)


# Set in a pod that has a workload identity instead of static keys.
WORKLOAD_IDENTITY_ENV = (
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


@dataclass(frozen=True)
class S3Settings:
    """How to reach the S3-compatible store. Credentials are None to use minio's env/config chain."""

    endpoint: str = "s3.amazonaws.com"  # host[:port]
    secure: bool = True
    region: str = "us-east-1"
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    # An endpoint that cannot be reached (restarting, failing over) is tried again for this long
    # before a call fails; each request is retried only where resending is safe (see `http_client`).
    outage_seconds: float = 120.0
    # Where web-identity tokens (EKS IRSA, GKE/AKS workload identity federation) are exchanged for
    # temporary keys; "" = AWS STS of `region`.
    sts_endpoint: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> S3Settings:
        """Reads A100M_S3_ENDPOINT (a URL; AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL as fallbacks),
        AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION and
        A100M_S3_CA_BUNDLE (or AWS_CA_BUNDLE); without static keys, AWS_WEB_IDENTITY_TOKEN_FILE and
        AWS_ROLE_ARN (IRSA) with AWS_ENDPOINT_URL_STS, or the container credentials endpoint."""
        url = env.get("A100M_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        endpoint, secure = "s3.amazonaws.com", True
        if url:
            parts = urlsplit(url if "://" in url else "https://" + url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"A100M_S3_ENDPOINT={url!r}: expected http(s)://host[:port]")
            endpoint, secure = parts.netloc, parts.scheme == "https"
        return cls(
            endpoint=endpoint,
            secure=secure,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            access_key=env.get("AWS_ACCESS_KEY_ID"),
            secret_key=env.get("AWS_SECRET_ACCESS_KEY"),
            session_token=env.get("AWS_SESSION_TOKEN"),
            ca_bundle=env.get("A100M_S3_CA_BUNDLE") or env.get("AWS_CA_BUNDLE"),
            outage_seconds=float(env.get("A100M_S3_OUTAGE_SECONDS", "120")),
            sts_endpoint=env.get("AWS_ENDPOINT_URL_STS", ""),
        )

    def http_client(self) -> Any:
        """The connection pool: TLS as configured, and retries that ride out an outage. A refused or
        failed connection (the request never left) is retried with backoff for about
        `outage_seconds`; 5xx answers and read errors only a few times, and only for idempotent
        requests (urllib3's default methods), so an upload is never applied twice."""
        import urllib3
        from urllib3.util.retry import Retry

        backoff_factor, backoff_max = 0.5, 10.0
        connect_retries, waited = 0, 0.0
        while waited < self.outage_seconds:  # urllib3 sleeps factor * 2**(n-1), capped, before retry n > 1
            connect_retries += 1
            waited += min(backoff_max, backoff_factor * 2 ** (connect_retries - 1)) if connect_retries > 1 else 0.1
        retries = Retry(
            total=None,
            connect=connect_retries,
            read=3,
            status=5,
            other=0,
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            status_forcelist=(500, 502, 503, 504),
            raise_on_status=False,
        )
        timeout = urllib3.Timeout(connect=10.0, read=300.0)
        if self.ca_bundle:
            return urllib3.PoolManager(
                maxsize=32, retries=retries, timeout=timeout, cert_reqs="CERT_REQUIRED", ca_certs=self.ca_bundle
            )
        return urllib3.PoolManager(maxsize=32, retries=retries, timeout=timeout)

    def client(self) -> Any:
        from minio import Minio
        from minio.credentials.providers import (
            AWSConfigProvider,
            ChainedProvider,
            EnvAWSProvider,
            EnvMinioProvider,
            IamAwsProvider,
        )

        http_client = self.http_client()
        if self.access_key and self.secret_key:
            return Minio(
                self.endpoint,
                access_key=self.access_key,
                secret_key=self.secret_key,
                session_token=self.session_token,
                secure=self.secure,
                region=self.region,
                http_client=http_client,
            )
        # No static keys: the environment or ~/.aws config (e.g. a mounted Secret) provides them, or a
        # web-identity token / container credentials endpoint given to the pod (IRSA, ECS, EKS Pod
        # Identity). The instance metadata service is not asked: off AWS it only hangs.
        providers = [EnvAWSProvider(), EnvMinioProvider(), AWSConfigProvider()]
        if any(os.environ.get(name) for name in WORKLOAD_IDENTITY_ENV):
            providers.append(IamAwsProvider(custom_endpoint=self.sts_endpoint or None))
        chain = ChainedProvider(providers)
        return Minio(self.endpoint, credentials=chain, secure=self.secure, region=self.region, http_client=http_client)


class ArtifactStore:
    """Reads and writes artifacts by URI inside the allowed roots."""

    def __init__(
        self,
        allowed_roots: Sequence[str],
        s3: S3Settings | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        read_only_roots: Sequence[str] = (),
    ):
        self.allow = AllowList(allowed_roots)
        # Inputs (the videos) live here: readable, never written, even when inside an allowed root.
        self.read_only = AllowList(read_only_roots, required=False)
        self._s3_settings = s3
        self._s3_client = None
        self.part_size = part_size

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ArtifactStore:
        """A100M_ALLOWED_ROOTS: comma-separated `s3://bucket[/prefix]` / `file:///dir` entries a process
        reads and writes (its artifacts); A100M_READ_ONLY_ROOTS: entries it only reads (its inputs)."""
        roots = split_roots(env.get("A100M_ALLOWED_ROOTS", ""))
        return cls.for_roots(roots, split_roots(env.get("A100M_READ_ONLY_ROOTS", "")), env)

    @classmethod
    def for_roots(cls, roots: Sequence[str], read_only_roots: Sequence[str], env: Mapping[str, str]) -> ArtifactStore:
        """A store over these roots, with the S3 settings of `env` when one of them is on S3."""
        s3 = S3Settings.from_env(env) if _any_s3([*roots, *read_only_roots]) else None
        return cls(roots, s3=s3, read_only_roots=read_only_roots)

    def allow_reading(self, roots: Sequence[str], env: Mapping[str, str] = os.environ) -> None:
        """Adds read-only roots (inputs found after the store was made: the videos a manifest names)."""
        self.read_only = AllowList([*map(str, self.read_only.roots), *roots], required=False)
        if self._s3_settings is None and _any_s3(roots):
            self._s3_settings = S3Settings.from_env(env)

    # -- plumbing ---------------------------------------------------------------------------
    def resolve(self, uri: str | ArtifactUri) -> ArtifactUri:
        """Parses `uri` and checks that it may be read: inside an allowed or a read-only root (raises UriError)."""
        parsed = uri if isinstance(uri, ArtifactUri) else parse_uri(uri)
        if self.read_only.contains(parsed):
            return parsed
        return self.allow.check(parsed)

    def resolve_writable(self, uri: str | ArtifactUri, inputs: Sequence[str] = ()) -> ArtifactUri:
        """Parses `uri` and checks that it may be written: inside an allowed root and not inside a
        read-only one (the innermost root decides: `--out` inside the videos' folder is writable, the
        videos are not), and none of `inputs` (a request naming its input as its output)."""
        parsed = self.allow.check(uri)
        if self.read_only.closest(parsed) > self.allow.closest(parsed):
            raise UriError(f"{parsed}: inside a read-only root ({self.read_only}); inputs are never written")
        for source in inputs:
            if source and _same_place(parsed, parse_uri(source)):
                raise UriError(f"{parsed}: the output is one of the request's inputs; refusing to overwrite it")
        return parsed

    @property
    def _s3(self) -> Any:
        if self._s3_client is None:
            if self._s3_settings is None:
                raise UriError("s3:// URIs need S3 settings (A100M_S3_ENDPOINT and credentials)")
            self._s3_client = self._s3_settings.client()
        return self._s3_client

    @contextlib.contextmanager
    def _s3_errors(self, uri: ArtifactUri) -> Iterator[None]:
        from minio.error import S3Error

        try:
            yield
        except S3Error as err:
            if err.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject"):
                raise ArtifactNotFound(uri) from None
            raise

    # -- writing ----------------------------------------------------------------------------
    def put_bytes(self, uri: str | ArtifactUri, data: bytes, content_type: str = "application/octet-stream") -> str:
        return self.put_stream(uri, io.BytesIO(data), length=len(data), content_type=content_type)

    def put_stream(
        self,
        uri: str | ArtifactUri,
        stream: BinaryIO,
        length: int = -1,
        content_type: str = "application/octet-stream",
    ) -> str:
        """Publishes a stream; with length -1 it is uploaded in parts as it is read."""
        target = self.resolve_writable(uri)
        if target.scheme == "file":
            with _atomic_local_file(target.path) as tmp:
                shutil.copyfileobj(stream, tmp, 1024 * 1024)
        else:
            with self._s3_errors(target):
                self._s3.put_object(
                    target.bucket,
                    target.key,
                    stream,
                    length=length,
                    part_size=self.part_size,
                    content_type=content_type,
                )
        return str(target)

    def put_file(self, uri: str | ArtifactUri, path: str | os.PathLike[str]) -> str:
        """Uploads a local file; large files go up as a streamed multipart upload."""
        with open(path, "rb") as stream:
            return self.put_stream(uri, stream, length=os.fstat(stream.fileno()).st_size)

    # -- reading ----------------------------------------------------------------------------
    def get_bytes(self, uri: str | ArtifactUri, max_bytes: int | None = None) -> bytes:
        """The artifact's bytes; with `max_bytes`, TooLarge for a longer one (read no further). A
        local FIFO, device or socket is refused (NotRegularFile), never read."""
        source = self.resolve(uri)
        if source.scheme == "file":
            try:  # non-blocking: opening a FIFO must not wait for a writer; regular files read as ever
                fd = os.open(source.path, os.O_RDONLY | os.O_NONBLOCK)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise ArtifactNotFound(source) from None
            with os.fdopen(fd, "rb") as handle:
                _bounded(source, regular_file(fd, source).st_size, max_bytes)
                return handle.read()
        with self._s3_errors(source):
            response = self._s3.get_object(source.bucket, source.key)
            try:
                _bounded(source, int(response.headers.get("content-length") or 0), max_bytes)
                data: bytes = response.read()
                return data
            finally:
                response.close()
                response.release_conn()

    def get_file(self, uri: str | ArtifactUri, path: str | os.PathLike[str]) -> Path:
        """Downloads to `path` (atomically: a crash leaves no half file there)."""
        source = self.resolve(uri)
        dest = Path(path)
        with _atomic_local_file(dest) as tmp:
            if source.scheme == "file":
                try:
                    with open(source.path, "rb") as src:
                        shutil.copyfileobj(src, tmp, 1024 * 1024)
                except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                    raise ArtifactNotFound(source) from None
            else:
                with self._s3_errors(source):
                    response = self._s3.get_object(source.bucket, source.key)
                    try:
                        for chunk in response.stream(1024 * 1024):
                            tmp.write(chunk)
                    finally:
                        response.close()
                        response.release_conn()
        return dest

    @contextlib.contextmanager
    def local_path(self, uri: str | ArtifactUri) -> Iterator[Path]:
        """A local path holding the artifact: the file itself for file://, a temporary copy for s3://."""
        source = self.resolve(uri)
        if source.scheme == "file":
            regular_file(source.path, source)
            yield source.path
            return
        with tempfile.TemporaryDirectory(prefix="a100m-") as tmp:
            yield self.get_file(source, Path(tmp) / (source.name or "artifact"))

    def exists(self, uri: str | ArtifactUri) -> bool:
        target = self.resolve(uri)
        if target.scheme == "file":
            return target.path.is_file()
        from minio.error import S3Error

        try:
            self._s3.stat_object(target.bucket, target.key)
            return True
        except S3Error as err:
            if err.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound"):
                return False
            raise

    def signature(self, uri: str | ArtifactUri) -> str:
        """What identifies the artifact's content without reading it: size and mtime for a local
        file, size and ETag on S3 (ArtifactNotFound when it is missing)."""
        target = self.resolve(uri)
        if target.scheme == "file":
            info = regular_file(target.path, target)
            return f"size={info.st_size};mtime_ns={info.st_mtime_ns}"
        with self._s3_errors(target):
            info = self._s3.stat_object(target.bucket, target.key)
        return f"size={info.size};etag={info.etag}"

    def presigned_get(self, uri: str | ArtifactUri, expires_seconds: int = 3600) -> str:
        """A time-limited HTTPS URL that reads an s3:// artifact without credentials (for a browser)."""
        from datetime import timedelta

        target = self.resolve(uri)
        if target.scheme != "s3":
            raise UriError(f"{target}: only s3:// artifacts have presigned URLs")
        return str(self._s3.presigned_get_object(target.bucket, target.key, expires=timedelta(seconds=expires_seconds)))

    def list(self, prefix: str | ArtifactUri) -> list[str]:
        """URIs of all artifacts under a folder-like prefix, recursively, sorted."""
        base = self.resolve(prefix)
        if base.scheme == "file":
            root = base.path
            if not root.is_dir():
                return []
            found = (p for p in root.rglob("*") if p.is_file() and not p.name.endswith(PARTIAL_SUFFIX))
            return sorted(str(ArtifactUri("file", "", str(p))) for p in found)
        key_prefix = base.key.rstrip("/") + "/" if base.key else ""
        with self._s3_errors(base):
            objects = self._s3.list_objects(base.bucket, prefix=key_prefix, recursive=True)
            return sorted(f"s3://{base.bucket}/{o.object_name}" for o in objects if not o.is_dir)

    def move(self, source: str | ArtifactUri, dest: str | ArtifactUri) -> str:
        """Moves an artifact: an atomic rename on a local folder, copy-then-delete on S3 (the
        destination appears whole either way). Both URIs must share a scheme."""
        src, dst = self.resolve_writable(source), self.resolve_writable(dest)
        if src.scheme != dst.scheme:
            raise UriError(f"cannot move {src} to {dst}: different schemes")
        if src.scheme == "file":
            dst.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(src.path, dst.path)
            except FileNotFoundError:
                raise ArtifactNotFound(src) from None
            return str(dst)
        from minio.commonconfig import CopySource

        with self._s3_errors(src):
            self._s3.copy_object(dst.bucket, dst.key, CopySource(src.bucket, src.key))
            self._s3.remove_object(src.bucket, src.key)
        return str(dst)

    def swap_folder(self, source: str | ArtifactUri, dest: str | ArtifactUri) -> bool:
        """Puts the local folder `source` at `dest` in one step: the two directory entries are
        exchanged atomically (Linux renameat2), so a reader of `dest` sees the old folder or the new
        one, never a mix; the old one ends at `source`. Returns False where that cannot be done (an
        S3 store, a system without the call); the caller then publishes object by object."""
        src, dst = self.resolve_writable(source), self.resolve_writable(dest)
        if src.scheme != "file" or dst.scheme != "file":
            return False
        if not dst.path.exists():
            dst.path.parent.mkdir(parents=True, exist_ok=True)
            os.rename(src.path, dst.path)
            src.path.mkdir()  # where the old folder would be: empty
            return True
        return _exchange(src.path, dst.path)

    def delete(self, uri: str | ArtifactUri) -> None:
        """Removes one artifact; deleting a missing one is not an error."""
        target = self.resolve_writable(uri)
        if target.scheme == "file":
            target.path.unlink(missing_ok=True)
            return
        with self._s3_errors(target):
            self._s3.remove_object(target.bucket, target.key)


def _any_s3(roots: Sequence[str]) -> bool:
    return any(root.startswith("s3://") for root in roots)


def _exchange(a: Path, b: Path) -> bool:
    """Exchanges two paths in one system call (renameat2 RENAME_EXCHANGE); False where unsupported."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_cwd, exchange = -100, 2
    if renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _same_place(a: ArtifactUri, b: ArtifactUri) -> bool:
    if a.scheme != b.scheme or a.bucket != b.bucket:
        return False
    if a.scheme == "file":
        return os.path.realpath(a.key) == os.path.realpath(b.key)
    return a.key == b.key


@contextlib.contextmanager
def _atomic_local_file(dest: Path) -> Iterator[BinaryIO]:
    """Yields a file beside `dest`; renames it onto `dest` only if the block succeeds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}{PARTIAL_SUFFIX}")
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except OSError as err:
        if err.errno == errno.ENOSPC and not err.filename:  # say where: a write error names no file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dest)) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)
