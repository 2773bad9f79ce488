"""The artifacts the stages hand each other: embeddings (.npz), the segment tree, captions,
annotations and transcripts (.json).

Each format has one writer and one reader here, so a stage never guesses another's layout.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import numpy as np

from .errors import StageInputError

TREE_FORMAT = "action100m.tree/v1"
T = TypeVar("T")


@dataclass
class Embeddings:
    """Per-sampled-frame features of one video (the embedder's output)."""

    features: np.ndarray  # float16 [N, D]
    times: np.ndarray  # float64 [N], seconds of each sampled frame from the first frame
    fps: float  # average decoded frame rate
    duration: float  # decoded duration in seconds
    frame_stride: int  # sampled frames are raw frames 0, stride, 2*stride, ...
    model: str = ""

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            features=self.features.astype(np.float16, copy=False),
            times=np.asarray(self.times, dtype=np.float64),
            fps=np.float64(self.fps),
            duration=np.float64(self.duration),
            frame_stride=np.int64(self.frame_stride),
            model=np.str_(self.model),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "embeddings") -> Embeddings:
        """Reads the artifact, refusing one with missing arrays or inconsistent shapes."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                missing = {"features", "times", "fps", "duration", "frame_stride"} - set(npz.files)
                if missing:
                    raise StageInputError(f"{source}: embeddings artifact lacks {sorted(missing)}")
                features, times = npz["features"], npz["times"]
                fps, duration, stride = float(npz["fps"]), float(npz["duration"]), int(npz["frame_stride"])
                model = str(npz["model"]) if "model" in npz.files else ""
        except (ValueError, OSError, EOFError) as err:
            if isinstance(err, StageInputError):
                raise
            raise StageInputError(f"{source}: not a readable embeddings .npz ({err})") from None
        return cls(features, times, fps, duration, stride, model)


def _parse_json_artifact(data: bytes, source: str, expected_format: str, build: Callable[[dict[str, Any]], T]) -> T:
    """Parses a JSON artifact of `expected_format`; anything malformed is a StageInputError naming `source`."""
    try:
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("format") != expected_format:
            found = body.get("format") if isinstance(body, dict) else type(body).__name__
            raise StageInputError(f"{source}: not a {expected_format} artifact (format={found!r})")
        return build(body)
    except StageInputError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise StageInputError(f"{source}: malformed {expected_format} artifact ({type(err).__name__}: {err})") from None


@dataclass
class TreeNode:
    node_id: str
    parent_id: str | None
    level: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class SegmentTree:
    """The segmenter's output: nodes sorted by (level, start), times rounded to 0.01 s."""

    video_uid: str
    duration: float
    nodes: list[TreeNode]
    fps: float = 0.0
    frame_stride: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    def children_of(self) -> dict[str, list[TreeNode]]:
        children: dict[str, list[TreeNode]] = {}
        for node in self.nodes:
            if node.parent_id is not None:
                children.setdefault(node.parent_id, []).append(node)
        return children

    def leaves(self) -> list[TreeNode]:
        parents = {n.parent_id for n in self.nodes}
        return [n for n in self.nodes if n.node_id not in parents]

    def to_release_row(self, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """The tree as a release row (captions and annotations still null)."""
        nodes = [
            {
                "node_id": n.node_id,
                "parent_id": n.parent_id,
                "level": n.level,
                "start": n.start,
                "end": n.end,
                "plm_action": None,
                "plm_caption": None,
                "llama3_caption": None,
                "gpt": None,
            }
            for n in self.nodes
        ]
        return {"video_uid": self.video_uid, "metadata": metadata, "nodes": nodes}

    def to_json(self) -> bytes:
        body = {"format": TREE_FORMAT, **asdict(self)}
        return json.dumps(body, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes, source: str = "tree") -> SegmentTree:
        def build(body: dict[str, Any]) -> SegmentTree:
            nodes = [TreeNode(**n) for n in body["nodes"]]
            return cls(
                body["video_uid"],
                float(body["duration"]),
                nodes,
                float(body.get("fps", 0.0)),
                int(body.get("frame_stride", 0)),
                body.get("params", {}),
            )

        return _parse_json_artifact(data, source, TREE_FORMAT, build)


CAPTIONS_FORMAT = "action100m.captions/v1"
CAPTION_FIELDS = ("plm_caption", "plm_action", "llama3_caption")


@dataclass
class NodeCaptions:
    plm_caption: str | None = None
    plm_action: str | None = None
    llama3_caption: str | None = None
    errors: dict[str, str] = field(default_factory=dict)  # field -> why it is null


@dataclass
class Captions:
    """The captioner's output: captions keyed by node_id, with the reason of every null."""

    video_uid: str
    nodes: dict[str, NodeCaptions]
    models: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        body = {
            "format": CAPTIONS_FORMAT,
            "video_uid": self.video_uid,
            "models": self.models,
            "nodes": {node_id: asdict(c) for node_id, c in self.nodes.items()},
        }
        return json.dumps(body, indent=1, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes, source: str = "captions") -> Captions:
        def build(body: dict[str, Any]) -> Captions:
            nodes = {node_id: NodeCaptions(**c) for node_id, c in body["nodes"].items()}
            return cls(body["video_uid"], nodes, body.get("models", {}))

        return _parse_json_artifact(data, source, CAPTIONS_FORMAT, build)


ANNOTATIONS_FORMAT = "action100m.annotations/v1"


@dataclass
class NodeAnnotation:
    """The refiner's result for one eligible node: the annotation (None if every round failed) and its cost."""

    gpt: dict[str, dict[str, str]] | None = None
    rounds_done: int = 0
    rounds_without_answer: int = 0  # completions with no final answer (reasoning ran out, cut off, ...)
    prompt_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    subtree_depth: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class Annotations:
    """The refiner's output: node_id -> annotation of every eligible node."""

    video_uid: str
    model: str
    nodes: dict[str, NodeAnnotation]

    def to_json(self) -> bytes:
        body = {
            "format": ANNOTATIONS_FORMAT,
            "video_uid": self.video_uid,
            "model": self.model,
            "nodes": {k: asdict(v) for k, v in self.nodes.items()},
        }
        return json.dumps(body, indent=1, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes, source: str = "annotations") -> Annotations:
        return _parse_json_artifact(
            data,
            source,
            ANNOTATIONS_FORMAT,
            lambda body: cls(
                body["video_uid"], body.get("model", ""), {k: NodeAnnotation(**v) for k, v in body["nodes"].items()}
            ),
        )


TRANSCRIPT_FORMAT = "action100m.transcript/v1"


@dataclass
class Transcript:
    """The transcriber's output for one video: `entries` in the release's form (`{"time": "1.92",
    "text": ...}`, in order), or None when the video has no speech or no sound."""

    video_uid: str
    model: str
    entries: list[dict[str, str]] | None
    language: str = ""
    audio_seconds: float = 0.0
    speech_seconds: float = 0.0
    windows: int = 0

    def into(self, metadata: dict[str, Any] | None) -> dict[str, Any] | None:
        """A video's metadata (None: none) with this transcript in place of its own; None still when
        there was none and nothing was heard."""
        from .release.metadata import FIELDS

        if metadata is None and self.entries is None:
            return None
        return {**{name: None for name in FIELDS}, **(metadata or {}), "transcript": self.entries}

    def to_json(self) -> bytes:
        return json.dumps({"format": TRANSCRIPT_FORMAT, **asdict(self)}, indent=1, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes, source: str = "transcript") -> Transcript:
        def build(body: dict[str, Any]) -> Transcript:
            entries = body["entries"]
            if entries is not None and not all(isinstance(e, dict) and {"time", "text"} <= set(e) for e in entries):
                raise StageInputError(f"{source}: transcript entries need 'time' and 'text'")
            fields = {name: body[name] for name in cls.__dataclass_fields__ if name in body}
            return cls(**fields)

        return _parse_json_artifact(data, source, TRANSCRIPT_FORMAT, build)
