"""Sentence embeddings of the unique texts, cached by text so that another run (another k, another
seed) embeds nothing again.

`wordllama`: WordLlama's static embeddings (l2_supercat, 256 dimensions), whose weights and tokenizer
ship inside the `wordllama` package: no download, thousands of texts a second on a CPU. Any other
name is a sentence-transformers model (`google/embeddinggemma-300m`, the paper's) from the hub or a
mirror, on a GPU where there is one. Vectors are unit length (k-means on them is by cosine).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

WORDLLAMA = "wordllama"
BATCH = 4096


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


class WordLlamaEmbedder:
    name = "wordllama l2_supercat 256"

    def __init__(self) -> None:
        import wordllama
        from wordllama import WordLlama

        # The package ships its tokenizer under tokenizers/ but looks for it under tokenizer/ (or
        # downloads it): a folder of links to its own files lets it load offline.
        package = Path(wordllama.__file__).parent
        self._files = tempfile.TemporaryDirectory(prefix="a100m-wordllama-")
        links = Path(self._files.name)
        for kind, folder in (("tokenizers", package / "tokenizers"), ("weights", package / "weights")):
            (links / kind).mkdir()
            for file in folder.iterdir():
                (links / kind / file.name).symlink_to(file)
        self.model = WordLlama.load(cache_dir=links, disable_download=True)

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.embed(texts, norm=True), dtype=np.float32)


class SentenceTransformerEmbedder:
    def __init__(self, model: str, device: str | None = None):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise ValueError(
                f"--embedder {model}: needs sentence-transformers (pip install sentence-transformers)"
            ) from None
        self.name = model
        self.model = SentenceTransformer(model, device=device)

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(texts, batch_size=256, normalize_embeddings=True), dtype=np.float32)


def embedder_named(name: str) -> Embedder:
    return WordLlamaEmbedder() if name == WORDLLAMA else SentenceTransformerEmbedder(name)


def embeddings(embedder: Embedder, keys: Sequence[str], texts: Sequence[str], cache: Path | None) -> np.ndarray:
    """The unit vectors of `texts` (one row each), those cached under their `keys` read back, the
    others embedded in batches and added to the cache."""
    known: dict[str, np.ndarray] = {}
    path = cache / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', embedder.name)}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path) as stored:
            known = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
    missing = [i for i, key in enumerate(keys) if key not in known]
    for start in range(0, len(missing), BATCH):
        chunk = missing[start : start + BATCH]
        for i, vector in zip(chunk, embedder.embed([texts[i] for i in chunk]), strict=True):
            known[keys[i]] = vector
    if path is not None and missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        ordered = list(known)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as partial:
            np.savez(partial, keys=np.array(ordered), vectors=np.stack([known[k] for k in ordered]))
        Path(partial.name).replace(path)
    return np.stack([known[key] for key in keys]) if keys else np.zeros((0, 1), np.float32)
