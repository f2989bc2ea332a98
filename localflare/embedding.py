"""Deterministic 384-dim text embeddings, standing in for @cf/baai/bge-small-en-v1.5.

A text's vector is the normalised sum of one fixed pseudo-random vector per word, so texts that
share words score higher, and the seed's vectors equal what Workers AI returns for the same text.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import numpy as np

DIMS = 384
MODEL = "@cf/baai/bge-small-en-v1.5"
_WORD_RE = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=65536)
def word_vector(word: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    vec = np.random.default_rng(seed).standard_normal(DIMS).astype(np.float32)
    vec.setflags(write=False)
    return vec


def words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def embed(text: str) -> np.ndarray:
    toks = words(text) or ["<empty>"]
    total = np.zeros(DIMS, dtype=np.float64)
    for tok in toks:
        total += word_vector(tok)
    return (total / np.linalg.norm(total)).astype(np.float32)


def embed_many_from_word_ids(vocab_matrix: np.ndarray, word_ids: np.ndarray) -> np.ndarray:
    """Vectorised embed() for texts made of vocabulary words (used by the bulk seeder)."""
    total = vocab_matrix[word_ids].astype(np.float64).sum(axis=1)
    return (total / np.linalg.norm(total, axis=1, keepdims=True)).astype(np.float32)
