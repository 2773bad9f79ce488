"""Prompt profiles: the words the refiner sends, chosen with `A100M_REFINER_PROMPT`.

- `ours` (default): our templates (`prompts.py`, replaceable from a YAML file), laid out for the
  engine's prefix cache: what a video's segments share comes first.
- `official:/path/to/Action100M`: the authors' own prompt, loaded at run time from the user's
  checkout of their repository (`utils/prompt.py`: task, input and refine templates and the
  response structure; `utils/tree.py`: `format_tree`), rendered exactly as those helpers render it.
  Their text is under their license and stays in the user's checkout; nothing of it is in ours.

Choices the official helpers leave open (README, "The refiner's prompt"): one user message holding
the task text then the input text, the refine instruction as the user turn of rounds 2 and 3 (after
the previous answer as the assistant's turn); times as `{:.2f}` seconds, the video's span as the
root's; metadata as YAML of the release's non-null fields in release order; the global tree to
depth 2 and the segment's subtree as deep as the token budget allows (as ours); `plm_caption` fills
`video_clip_caption` and `llama3_caption` (middle frame of leaves) fills `mid_frame_caption`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import yaml

from action100m.common import paper
from action100m.common.artifacts import TreeNode

from .markdown import TreeView
from .prompts import PromptLimits, Templates, VideoContext, fits, load_templates

Messages = list[dict[str, str]]
OFFICIAL_FILES = ("utils/prompt.py", "utils/tree.py")
OFFICIAL_NAMES = {
    "utils/prompt.py": ("TASK_TEMPLATE", "INPUT_TEMPLATE", "REFINE_INSTRUCTION", "RESPONSE_STRUCTURE"),
    "utils/tree.py": ("format_tree",),
}


class PromptContext(Protocol):
    """What the refiner needs of one video's prompt: each node's first turn and the revise turn."""

    revise: str

    def first_messages(self, node: TreeNode, count_tokens: Callable[[str], int]) -> tuple[Messages, int]: ...


class PromptProfile(Protocol):
    name: str

    def context(self, view: TreeView, metadata: dict[str, Any] | None, limits: PromptLimits) -> PromptContext: ...

    def fingerprint(self) -> str:
        """Changes with every word the profile can send (part of the refine stage's fingerprint)."""
        ...


@dataclass
class OursProfile:
    templates: Templates
    name: str = "ours"

    def context(self, view: TreeView, metadata: dict[str, Any] | None, limits: PromptLimits) -> VideoContext:
        return VideoContext(view, metadata, limits, self.templates)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self.templates), sort_keys=True).encode()).hexdigest()[:16]


class OfficialProfile:
    """The authors' prompt from a checkout of their repository (see the module's doc)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        self.name = f"official:{self.root}"
        missing = [name for name in OFFICIAL_FILES if not (self.root / name).is_file()]
        if missing:
            raise ValueError(
                f"A100M_REFINER_PROMPT={self.name}: {', '.join(str(self.root / m) for m in missing)} not found; "
                "point it at a checkout of https://github.com/facebookresearch/Action100M"
            )
        self.modules = {name: _load_module(self.root / name) for name in OFFICIAL_FILES}
        for name, needed in OFFICIAL_NAMES.items():
            absent = [attr for attr in needed if not hasattr(self.modules[name], attr)]
            if absent:
                raise ValueError(f"{self.root / name} has no {', '.join(absent)}: not the expected version")
        prompt = self.modules["utils/prompt.py"]
        self.task_template: str = prompt.TASK_TEMPLATE
        self.input_template: str = prompt.INPUT_TEMPLATE
        self.refine_instruction: str = prompt.REFINE_INSTRUCTION
        self.response_structure: str = prompt.RESPONSE_STRUCTURE
        self.format_tree: Callable[..., str] = self.modules["utils/tree.py"].format_tree

    def context(self, view: TreeView, metadata: dict[str, Any] | None, limits: PromptLimits) -> OfficialContext:
        return OfficialContext(self, view, metadata, limits)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name in OFFICIAL_FILES:
            digest.update((self.root / name).read_bytes())
        return digest.hexdigest()[:16]


def _load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_a100m_official_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_metadata_yaml(metadata: dict[str, Any] | None) -> str:
    """The video's metadata as the official input's YAML block: non-null fields in release order."""
    kept = {key: value for key, value in (metadata or {}).items() if value is not None}
    return yaml.safe_dump(kept, sort_keys=False, allow_unicode=True)


class OfficialContext:
    def __init__(self, profile: OfficialProfile, view: TreeView, metadata: dict[str, Any] | None, limits: PromptLimits):
        self.profile, self.view, self.limits = profile, view, limits
        self.revise = profile.refine_instruction
        self.root = view.tree.nodes[0]
        self.metadata = official_metadata_yaml(metadata)
        self.global_tree = self.tree_markdown(self.root, paper.GLOBAL_TREE_DEPTH)

    def nested(self, node: TreeNode, depth: int) -> dict[str, Any]:
        """The node and `depth` levels below it in the nested layout `format_tree` reads."""
        captions = self.view.captions.get(node.node_id)
        tree: dict[str, Any] = {
            "start": node.start,
            "end": node.end,
            "captions": {
                "video_clip_caption": captions.plm_caption if captions else None,
                "mid_frame_caption": captions.llama3_caption if captions else None,
            },
        }
        if depth > 0 and node.node_id in self.view.children:
            tree["children"] = [self.nested(kid, depth - 1) for kid in self.view.children[node.node_id]]
        return tree

    def tree_markdown(self, node: TreeNode, depth: int) -> str:
        return self.profile.format_tree(self.nested(node, depth), max_layers=depth)

    def first_messages(self, node: TreeNode, count_tokens: Callable[[str], int]) -> tuple[Messages, int]:
        depth = min(self.limits.max_subtree_depth, self.view.depth_below(node))
        while True:
            current = self.tree_markdown(node, depth)
            content = self._content(node, current)
            if depth == 0 or fits(self.limits, count_tokens(current), partial(count_tokens, content)):
                return [{"role": "user", "content": content}], depth
            depth -= 1

    def _content(self, node: TreeNode, current: str) -> str:
        times = {
            "start_time": f"{node.start:.2f}",
            "end_time": f"{node.end:.2f}",
            "global_start_time": f"{self.root.start:.2f}",
            "global_end_time": f"{self.root.end:.2f}",
        }
        structure = self.profile.response_structure
        # the released template spells its slot `response_strucutre`; both spellings are filled
        task = self.profile.task_template.format(**times, response_structure=structure, response_strucutre=structure)
        given = self.profile.input_template.format(
            video_metadata=self.metadata, global_tree=self.global_tree, current_tree=current
        )
        return task + given


def load_profile(spec: str, templates_path: str | None = None) -> PromptProfile:
    """`ours` (with optional YAML templates) or `official:/path/to/Action100M`."""
    spec = (spec or "ours").strip()
    if spec == "ours":
        return OursProfile(load_templates(templates_path))
    if spec.startswith("official:") and spec.removeprefix("official:"):
        if templates_path:
            raise ValueError("A100M_REFINER_TEMPLATES replaces our templates; it does not apply to the official prompt")
        return OfficialProfile(spec.removeprefix("official:"))
    raise ValueError(f"A100M_REFINER_PROMPT={spec!r}: expected 'ours' or 'official:/path/to/Action100M'")
