"""k-means over the unique texts' unit vectors (faiss, seeded; by cosine), and each cluster's name:
the text nearest its centre."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Clusters:
    k: int
    assignment: np.ndarray  # per unique text, its cluster
    names: list[str]  # per cluster, its most central text
    sizes: np.ndarray  # per cluster, its unique texts

    def members(self) -> list[np.ndarray]:
        order = np.argsort(self.assignment, kind="stable")
        bounds = np.cumsum(self.sizes)[:-1]
        return np.split(order, bounds)


def kmeans(vectors: np.ndarray, texts: list[str], k: int, seed: int, iterations: int = 25) -> Clusters:
    """`k` clusters of the rows of `vectors`; ValueError when there are fewer texts than clusters."""
    logging.getLogger("faiss").setLevel(logging.WARNING)  # its loader's INFO lines, said on import
    import faiss

    if k < 1:
        raise ValueError(f"--k {k}: at least one cluster")
    if k > len(texts):
        raise ValueError(f"--k {k} is more than the {len(texts)} unique texts to cluster")
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    model = faiss.Kmeans(  # however few texts per cluster: a small dataset is sampled too
        data.shape[1], k, niter=iterations, seed=seed, spherical=True, verbose=False, min_points_per_centroid=1
    )
    model.train(data)
    _, nearest = model.index.search(data, 1)
    assignment = nearest[:, 0].astype(np.int64)
    assert model.centroids is not None, "trained above"
    centroids = np.asarray(model.centroids)
    centres = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    names = []
    for cluster in range(k):
        members = np.flatnonzero(assignment == cluster)
        best = members[np.argmax(data[members] @ centres[cluster])] if len(members) else None
        names.append(texts[best] if best is not None else "")
    return Clusters(k, assignment, names, np.bincount(assignment, minlength=k))
