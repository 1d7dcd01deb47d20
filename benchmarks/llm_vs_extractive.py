"""Side-by-side: the LLM answerer vs the extractive one on dev questions.

    .venv/bin/python benchmarks/llm_vs_extractive.py --llm-url http://127.0.0.1:8088/v1 \
        [--n 30] [--index DIR] [--out rows.jsonl]

Questions: an even spread of ``--n`` questions from the ``--split`` (dev) of
evals/questions.jsonl (fields question, answers, answerable). Metrics, per answerer:

* answer accuracy (answerable): not abstained, <= 75 words, normalised answer contains a gold
  answer (``evals.metrics.answer_correct``);
* abstention accuracy (unanswerable): abstained;
* mean / median latency of ``rag.answer.answer`` (retrieval + answering);
* for the LLM: how many answers fell back to the extractive answerer, and how many had
  sentences removed by verification.

Without ``--index`` a MiniLM index of the bundled corpus is built (once) under
~/.cache/reportqa/bench-index. Progress and a running summary go to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evals import metrics as M  # noqa: E402
from rag.answer import answer  # noqa: E402
from rag.engine import Engine  # noqa: E402
from reportqa.settings import Settings  # noqa: E402


def pick(path: Path, split: str, n: int) -> list[dict[str, Any]]:
    rows = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    rows = [r for r in rows if split == "all" or r.get("split") == split]
    if n >= len(rows):
        return rows
    step = len(rows) / n
    return [rows[int(i * step)] for i in range(n)]


def engine_for(index: Path | None) -> Engine:
    if index is None:
        index = Path.home() / ".cache" / "reportqa" / "bench-index"
        settings = Settings(embedder="minilm", index_dir=index, chroma_url=None)
        if not (index / "manifest.sqlite3").exists():
            from ingest.pipeline import ingest

            print(f"building a MiniLM index of corpus/ at {index} ...", flush=True)
            ingest([ROOT / "corpus"], settings)
    else:
        settings = Settings.from_env(index_dir=index, chroma_url=None)
    return Engine.load(settings)


def run_one(q: dict[str, Any], settings: Settings, engine: Engine,
            repair: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    chosen = None
    if settings.answerer == "llm":
        from rag.llm import LLMAnswerer

        chosen = LLMAnswerer(settings, repair_citations=repair)
    a = answer(q["question"], settings, engine=engine, answerer=chosen)
    dt = time.perf_counter() - t0
    row = {"id": q.get("id"), "answerable": q["answerable"], "answerer": a.answerer,
           "abstained": a.abstained, "answer": a.text, "latency_s": round(dt, 2),
           "words": M.word_count(a.text), "notes": list(a.notes)}
    if q["answerable"]:
        row["correct"] = M.answer_correct(a.text, a.abstained, q.get("answers", []))
    else:
        row["correct"] = bool(a.abstained)
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    lat = [r["latency_s"] for r in rows]
    return {
        "n": len(rows),
        "answer_accuracy": round(sum(r["correct"] for r in ans) / len(ans), 3) if ans else None,
        "answerable": len(ans),
        "abstention_accuracy": round(sum(r["correct"] for r in una) / len(una), 3) if una else None,
        "unanswerable": len(una),
        "false_abstentions": sum(r["abstained"] for r in ans),
        "mean_latency_s": round(statistics.mean(lat), 2) if lat else None,
        "median_latency_s": round(statistics.median(lat), 2) if lat else None,
        "fallbacks": sum(r["answerer"] == "extractive (fallback)" for r in rows),
        "answers_with_removed_sentences": sum(
            any(n.startswith("removed a sentence") for n in r["notes"]) for r in rows),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--questions", type=Path, default=ROOT / "evals" / "questions.jsonl")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--index", type=Path, default=None)
    ap.add_argument("--llm-url", default=os.environ.get("REPORTQA_LLM_URL"))
    ap.add_argument("--llm-model", default=os.environ.get("REPORTQA_LLM_MODEL") or "qwen2.5-0.5b")
    ap.add_argument("--timeout", type=float, default=120.0, help="LLM timeout per question (s)")
    ap.add_argument("--repair", action="store_true",
                    help="LLM: cite uncited sentences to the passage that passes every check")
    ap.add_argument("--out", type=Path, default=None, help="write per-question rows (JSONL)")
    args = ap.parse_args(argv)
    if not args.llm_url:
        ap.error("give --llm-url or set REPORTQA_LLM_URL (see scripts/local_llm.sh server)")

    engine = engine_for(args.index)
    base = engine.settings
    configs = {"extractive": replace(base, answerer="extractive"),
               "llm": replace(base, answerer="llm", llm_url=args.llm_url,
                              llm_model=args.llm_model, llm_timeout_s=args.timeout)}
    questions = pick(args.questions, args.split, args.n)
    print(f"{len(questions)} questions ({sum(q['answerable'] for q in questions)} answerable) "
          f"from {args.questions.name} split={args.split}; LLM at {args.llm_url}"
          f"{' (citation repair on)' if args.repair else ''}", flush=True)
    answer("warm up the embedder", configs["extractive"], engine=engine)
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in configs}
    out = args.out.open("w", encoding="utf-8") if args.out else None
    for i, q in enumerate(questions, start=1):
        for name, s in configs.items():
            r = run_one(q, s, engine, args.repair)
            rows[name].append(r)
            if out:
                out.write(json.dumps({"config": name, **r}) + "\n")
                out.flush()
            mark = "ok " if r["correct"] else "BAD"
            print(f"[{i:2d}/{len(questions)}] {name:10s} {mark} {r['latency_s']:6.1f}s "
                  f"{'(abst) ' if r['abstained'] else ''}{r['answerer']:22s} "
                  f"{q['question'][:60]!r} -> {r['answer'][:100]!r}", flush=True)
    if out:
        out.close()
    print("\nsummary")
    table = {name: summarise(rs) for name, rs in rows.items()}
    keys = list(next(iter(table.values())).keys())
    print(f"{'metric':32s}" + "".join(f"{n:>14s}" for n in table))
    for k in keys:
        print(f"{k:32s}" + "".join(f"{str(table[n][k]):>14s}" for n in table))
    print(json.dumps(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
