"""Exact deduplication: texts that are the same once normalised are one group.

Normalised: Unicode case folded, every run of whitespace one space, the ends stripped, and trailing
punctuation (`.`, `!`, `?`, `,`, `;`, `:`) dropped: `Stir mixture.` and ` stir  MIXTURE` are one
text, `Stir the mixture` another. A group is keyed by a digest of its normalised text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

SPACES = re.compile(r"\s+")
TRAILING = ".!?,;: "


def normalized(text: str) -> str:
    return SPACES.sub(" ", text.casefold()).strip().rstrip(TRAILING).strip()


def text_key(text: str) -> str:
    """The group of a text: a digest of its normalised form (also the embeddings' cache key)."""
    return hashlib.sha256(normalized(text).encode()).hexdigest()[:32]


@dataclass
class Groups:
    """The unique texts of a stream, in the order first seen: each one's text (as first seen), key
    and count. Memory grows with the unique texts, not the segments."""

    index: dict[str, int] = field(default_factory=dict)  # key -> group
    texts: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def add(self, text: str) -> int:
        key = text_key(text)
        group = self.index.get(key)
        if group is None:
            group = self.index[key] = len(self.texts)
            self.texts.append(text.strip())
            self.counts.append(0)
        self.counts[group] += 1
        return group

    def group_of(self, text: str) -> int:
        return self.index[text_key(text)]

    @property
    def keys(self) -> list[str]:
        return list(self.index)

    def largest(self, count: int) -> list[tuple[str, int]]:
        """The `count` largest groups: (text, size), largest first (first seen first on ties)."""
        order = sorted(range(len(self.texts)), key=lambda g: (-self.counts[g], g))
        return [(self.texts[g], self.counts[g]) for g in order[:count]]
