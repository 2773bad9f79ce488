"""What is drawn, at the level of the unique texts (the segments are found again when they are
written): the paper's three arms (Sec. 5.4).

- `none`: every segment once, as it is;
- `dedup`: one segment per group of identical texts (which one: drawn among them);
- `semantic`: `size` draws, with replacement: a cluster uniformly, then one of its unique texts
  uniformly, then one of that text's segments uniformly.

Draws are seeded (numpy's PCG64): the same seed gives the same sample.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .cluster import Clusters

STRATEGIES = ("none", "dedup", "semantic")
# a draw: (the unique text, which of its segments: its occurrence in reading order)
Draw = tuple[int, int]


def draws(strategy: str, counts: list[int], clusters: Clusters | None, size: int, seed: int) -> Counter[Draw]:
    """How many times each (group, occurrence) is drawn; `none` is every segment once."""
    rng = np.random.Generator(np.random.PCG64(seed))
    if strategy == "none":
        return Counter({(g, i): 1 for g, n in enumerate(counts) for i in range(n)})
    if strategy == "dedup":
        picks = [int(rng.integers(n)) for n in counts]
        return Counter({(g, i): 1 for g, i in enumerate(picks)})
    if strategy != "semantic" or clusters is None:
        raise ValueError(f"--strategy {strategy}: expected one of {', '.join(STRATEGIES)}")
    members = clusters.members()
    filled = [m for m in members if len(m)]
    chosen_clusters = rng.integers(len(filled), size=size)
    drawn: Counter[Draw] = Counter()
    for cluster in chosen_clusters:
        group = int(filled[cluster][rng.integers(len(filled[cluster]))])
        drawn[(group, int(rng.integers(counts[group])))] += 1
    return drawn
