"""Text embedders behind one protocol, and a persistent embedding cache.

- :class:`HashingEmbedder`: word and character n-gram feature hashing; no dependencies, fast.
- ``SentenceTransformerEmbedder``: all-MiniLM-L6-v2, loaded offline (sentence-transformers imported lazily).
- ``OpenAIEmbedder``: the official ``openai`` client (imported lazily).

Every embedder returns L2-normalised float32 rows, shape (n_texts, dim).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from actionbank_env._validation import check_int

__all__ = ["Embedder", "HashingEmbedder"]


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised float32 vectors.

    Attributes:
        name: Identifies the model and its settings; the embedding cache is keyed by it.
        dim: Output dimension.
    """

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed ``texts`` -> float32 array of shape (len(texts), dim), rows of unit norm."""
        ...


_TOKEN = re.compile(r"[a-z0-9%$€£]+(?:'[a-z]+)?")


def _l2_normalize(matrix: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class HashingEmbedder:
    """Feature hashing of word uni/bigrams and character 3-5-grams into ``dim`` signed buckets.

    Texts that share words land close together; the mapping is fixed (BLAKE2b, not Python's salted
    ``hash``), so it is identical across processes.

    Args:
        dim: Output dimension.
        char_weight: Weight of the character n-gram block relative to the word block.

    Example:
        >>> emb = HashingEmbedder(dim=64).embed(["big sale today", "big sale tomorrow", "quantum physics"])
        >>> bool(emb[0] @ emb[1] > emb[0] @ emb[2])
        True
    """

    def __init__(self, dim: int = 256, *, char_weight: float = 0.5) -> None:
        self.dim = check_int("HashingEmbedder.dim", dim, low=2)
        self.char_weight = float(char_weight)
        self.name = f"hashing-v1-d{self.dim}-c{self.char_weight:g}"

    def _features(self, text: str) -> dict[str, float]:
        lowered = text.casefold()
        words = _TOKEN.findall(lowered)
        feats: dict[str, float] = {}
        for w in words:
            feats["w:" + w] = feats.get("w:" + w, 0.0) + 1.0
        for a, b in zip(words, words[1:]):
            key = f"b:{a} {b}"
            feats[key] = feats.get(key, 0.0) + 1.0
        padded = f" {' '.join(words)} "
        for n in (3, 4, 5):
            for i in range(len(padded) - n + 1):
                key = "c:" + padded[i : i + n]
                feats[key] = feats.get(key, 0.0) + self.char_weight / 3.0
        return feats

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Embed ``texts`` -> (len(texts), dim) float32, unit rows (all-zero for texts with no tokens)."""
        rows, cols, vals = [], [], []
        for r, text in enumerate(texts):
            for key, weight in self._features(text).items():
                digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
                h = int.from_bytes(digest, "little")
                rows.append(r)
                cols.append(h % self.dim)
                vals.append(weight if (h >> 63) & 1 else -weight)
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        if rows:
            np.add.at(out, (np.asarray(rows), np.asarray(cols)), np.asarray(vals))
        return _l2_normalize(out.astype(np.float32))

    def __repr__(self) -> str:
        return f"HashingEmbedder(dim={self.dim}, char_weight={self.char_weight})"
