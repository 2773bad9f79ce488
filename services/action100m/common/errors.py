"""What a failed video reports: the kinds of input error, and the gRPC status code each becomes.

Every stage, the plan and the export classify a video's failure here, so one error reads the same
wherever it happens (a missing file is NOT_FOUND in the plan and in the captioner alike).
"""

from __future__ import annotations

import errno

import grpc

from .release.metadata import MetadataError
from .store import ArtifactNotFound, is_unavailable
from .uris import UriError
from .video import VideoError, VideoNotFound


class StageInputError(ValueError):
    """Input that is present but wrong (bad shapes, NaNs, an inconsistent artifact)."""


class InputChanged(RuntimeError):
    """An input that is not what was planned: the file was replaced or edited since (FAILED_PRECONDITION)."""


def classify(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message a failed video reports."""
    if isinstance(error, InputChanged):
        return grpc.StatusCode.FAILED_PRECONDITION, str(error)
    if isinstance(error, (ArtifactNotFound, VideoNotFound)):
        return grpc.StatusCode.NOT_FOUND, str(error)
    if isinstance(error, (UriError, VideoError, StageInputError, MetadataError)):
        return grpc.StatusCode.INVALID_ARGUMENT, str(error)
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return grpc.StatusCode.RESOURCE_EXHAUSTED, f"no space left on device: {error.filename or error}"
    if is_unavailable(error):
        return grpc.StatusCode.UNAVAILABLE, f"the artifact store is unavailable: {type(error).__name__}: {error}"
    if isinstance(error, MemoryError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, f"out of memory: {error}"
    return grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}"
