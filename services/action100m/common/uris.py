"""Artifact URIs (`s3://bucket/key`, `file:///abs/path`) and the allow-list that confines them.

Services take URIs from requests, i.e. from the network, so every URI is parsed strictly and
checked against the configured roots before anything is read or written.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

SCHEMES = ("file", "s3")


class UriError(ValueError):
    """A URI that is malformed or outside the configured buckets/roots."""


@dataclass(frozen=True)
class ArtifactUri:
    """A parsed URI. For `file`, `bucket` is empty and `key` is an absolute path."""

    scheme: str
    bucket: str
    key: str

    def __str__(self) -> str:
        if self.scheme == "file":
            return "file://" + quote(self.key)
        return f"s3://{self.bucket}/{self.key}"

    @property
    def path(self) -> Path:
        if self.scheme != "file":
            raise UriError(f"{self} is not a local file URI")
        return Path(self.key)

    @property
    def name(self) -> str:
        return self.key.rstrip("/").rsplit("/", 1)[-1]

    def join(self, *parts: str) -> ArtifactUri:
        """A child of this URI; each part is one or more '/'-separated names, never '..'."""
        suffix = "/".join(p.strip("/") for p in parts if p.strip("/"))
        _check_segments(suffix, str(self))
        return ArtifactUri(self.scheme, self.bucket, f"{self.key.rstrip('/')}/{suffix}" if self.key else suffix)


def _check_segments(path: str, uri: str) -> None:
    for segment in path.split("/"):
        if segment in (".", ".."):
            raise UriError(f"{uri}: path segments '.' and '..' are not allowed")
    if "\x00" in path or "\\" in path:
        raise UriError(f"{uri}: NUL bytes and backslashes are not allowed")


def parse_uri(uri: str) -> ArtifactUri:
    """Parses `s3://bucket/key` or `file:///abs/path` (percent-encoding decoded), refusing tricks."""
    if not isinstance(uri, str) or not uri:
        raise UriError(f"{uri!r}: empty artifact URI")
    parts = urlsplit(uri)
    if not parts.scheme:
        raise UriError(f"{uri}: a relative path; give an absolute file:///path or an s3://bucket/key URI")
    if parts.scheme not in SCHEMES:
        raise UriError(f"{uri}: unsupported scheme {parts.scheme!r} (expected one of {', '.join(SCHEMES)})")
    if parts.query or parts.fragment:
        raise UriError(f"{uri}: query strings and fragments are not allowed")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UriError(f"{uri}: file URIs must be local (file:///abs/path)")
        path = unquote(parts.path, errors="surrogateescape")  # a non-UTF-8 file name keeps its bytes
        if not path.startswith("/"):
            raise UriError(f"{uri}: file URIs need an absolute path")
        _check_segments(path, uri)
        return ArtifactUri("file", "", os.path.normpath(path))
    bucket = parts.netloc
    if not bucket or "@" in bucket or ":" in bucket:
        raise UriError(f"{uri}: missing or malformed bucket name")
    key = parts.path.lstrip("/")
    # Keys are literal, but a percent-encoded '..' is refused too: some tools decode keys.
    _check_segments(key, uri)
    _check_segments(unquote(key), uri)
    if "//" in key:
        raise UriError(f"{uri}: empty path segments are not allowed")
    return ArtifactUri("s3", bucket, key)


def split_roots(text: str) -> list[str]:
    """Roots from a comma-separated setting (`A100M_ALLOWED_ROOTS`, `--allowed-roots`)."""
    return [root.strip() for root in text.split(",") if root.strip()]


def to_uri(location: str | os.PathLike[str]) -> str:
    """A URI from either a URI or a local path (made absolute), for command-line arguments."""
    text = os.fspath(location)
    if "://" in text:
        return text
    return "file://" + quote(str(Path(text).resolve()), errors="surrogateescape")


def resolve_location(location: str, base: str) -> str:
    """A location as people write it in a manifest, as a URI: a URI is kept as it is (and parsed
    strictly later); an absolute path becomes a file URI; a relative path is taken relative to
    `base`, the URI of the folder the manifest is in (a local folder, or an s3:// prefix). A
    relative path that climbs out of an S3 bucket raises UriError."""
    if "://" in location or not location or "\x00" in location:
        return location
    if location.startswith("/"):
        return "file://" + quote(os.path.normpath(location), errors="surrogateescape")
    folder = parse_uri(base.rstrip("/") or "/")
    joined = posixpath.normpath(posixpath.join(folder.key if folder.scheme == "s3" else str(folder.path), location))
    if folder.scheme == "file":
        return "file://" + quote(joined, errors="surrogateescape")
    if joined == ".." or joined.startswith("../"):
        raise UriError(f"{location}: climbs out of the bucket of the manifest ({base})")
    return f"s3://{folder.bucket}/{joined}"


class AllowList:
    """The buckets/roots a process may touch: `s3://bucket[/prefix]` or `file:///dir` entries."""

    def __init__(self, roots: Iterable[str], required: bool = True):
        self.roots = [parse_uri(r) for r in roots]
        if required and not self.roots:
            raise UriError("no artifact roots configured (set A100M_ALLOWED_ROOTS or pass roots)")

    def contains(self, uri: ArtifactUri) -> bool:
        return any(self._within(uri, root) for root in self.roots)

    def closest(self, uri: ArtifactUri) -> int:
        """How deep the innermost root holding `uri` is (length of its path), -1 if none does."""
        return max((len(root.key.rstrip("/")) for root in self.roots if self._within(uri, root)), default=-1)

    def check(self, uri: str | ArtifactUri) -> ArtifactUri:
        parsed = uri if isinstance(uri, ArtifactUri) else parse_uri(uri)
        if not self.contains(parsed):
            raise UriError(f"{parsed}: outside the configured artifact roots ({self})")
        return parsed

    def __str__(self) -> str:
        return ", ".join(str(r) for r in self.roots)

    @staticmethod
    def _within(uri: ArtifactUri, root: ArtifactUri) -> bool:
        if uri.scheme != root.scheme or uri.bucket != root.bucket:
            return False
        if uri.scheme == "file":
            # realpath: a symlink inside a root must not lead out of it.
            real_root = os.path.realpath(root.key)
            real = os.path.realpath(uri.key)
            return real == real_root or real.startswith(real_root.rstrip("/") + "/")
        prefix = root.key.rstrip("/")
        return not prefix or uri.key == prefix or uri.key.startswith(prefix + "/")

    def __repr__(self) -> str:
        return f"AllowList({[str(r) for r in self.roots]})"
