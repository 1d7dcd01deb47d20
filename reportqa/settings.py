"""One settings object, passed in everywhere. Defaults are overridable by REPORTQA_* env vars."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INDEX = Path(os.path.expanduser("~/.cache/reportqa/index"))
MAX_K = 100  # passages one question may retrieve (the API and the CLI refuse more)


@dataclass(frozen=True)
class Settings:
    index_dir: Path = DEFAULT_INDEX
    chroma_url: str | None = None  # http://host:port of a `chroma run` server
    chroma_token: str | None = None  # Chroma token auth (TokenAuthClientProvider) when set
    chroma_token_header: str = "Authorization"  # or "X-Chroma-Token"; must match the server
    embedder: str = "minilm"  # "minilm" (real) or "hash" (deterministic fake for tests)
    corpus_dir: Path = REPO_ROOT / "corpus"
    chunk_tokens: int = 200  # word pieces of report text per chunk; header + text stay < 256
    max_file_mb: float = 20.0
    k: int = 8
    answerer: str = "extractive"  # or "llm"
    llm_url: str | None = None
    llm_model: str | None = None
    llm_timeout_s: float = 60.0
    # Cite an unmarked LLM sentence to the one passage that passes every check (rag/verify.py)
    llm_repair_citations: bool = False
    abstain_threshold: float = 0.5  # calibrated on the dev split: python evals/calibrate.py
    # Below abstain_threshold but at or above this, the best passage is quoted as "may answer
    # this" (outcome "uncertain") instead of "not in the reports": calibrated on the open
    # blind split (evals/README.md). 1.0 turns the middle outcome off.
    uncertain_threshold: float = 0.3
    # The sentence reader (rag/reader.py) orders the candidate sentences: "auto" (the trained
    # cross-encoder when the real embedder is in use and its weights are there, else lexical),
    # "cross", or "lexical" (word overlap + MiniLM similarity alone). Confidence stays the
    # lexical one; the reader's probability lifts it to an answer at reader_threshold and to
    # "uncertain" at reader_uncertain_threshold (and at weights.toml's weak_pair_p when the
    # word overlap reaches weak_pair_confidence). Both chosen by document-fold CV on the open
    # split (evals/README.md).
    reader: str = "auto"
    reader_threshold: float = 0.5
    reader_uncertain_threshold: float = 0.5
    reader_dir: str | None = None  # trained reader weights; None = the shipped rag/reader_model
    # "auto": the reader and the question-sentence similarity run in bfloat16 where the CPU
    # does it natively (faster, same choices), else fp32; "fp32" / "bf16" force one
    # (rag/reader.py, rag/engine.py). Vectors stored in an index are always fp32.
    reader_precision: str = "auto"
    # "auto": in fp32 the reader runs under ONNX Runtime (same probabilities, about 1.6x
    # faster here; the graph is exported once and cached in ~/.cache/reportqa/reader), in
    # bf16 under torch; "torch" / "onnx" force one (rag/reader.py).
    reader_runtime: str = "auto"
    # "auto": MiniLM embeds under ONNX Runtime where installed (same vectors, about half the
    # time per question; the graph is built once into ~/.cache/reportqa/embedder), falling
    # back to torch if the graph will not build; "torch" / "onnx" force one (reportqa/embed.py).
    embed_runtime: str = "auto"
    max_answer_words: int = 75
    batch_size: int = 32

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Build settings from REPORTQA_<FIELD> env vars, then explicit overrides (not None)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(f"REPORTQA_{f.name.upper()}")
            if f.name == "index_dir" and raw is None:
                raw = os.environ.get("REPORTQA_INDEX")
            if raw is not None and raw != "":
                values[f.name] = _coerce(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "index_dir" in values:
            values["index_dir"] = Path(values["index_dir"]).expanduser()
        if "corpus_dir" in values:
            values["corpus_dir"] = Path(values["corpus_dir"]).expanduser()
        return replace(cls(), **values)


def _coerce(name: str, raw: str) -> Any:
    default = getattr(Settings(), name)
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, Path):
        return Path(raw)
    return raw
