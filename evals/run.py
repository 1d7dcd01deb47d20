"""Batch evaluation of answer accuracy. Public: `load_questions`, `evaluate`, `load_thresholds`.

Runs the real `rag.answer.answer` pipeline on every gold question, scores it with
`evals.metrics`, and writes results.jsonl, summary.json and report.html to an output folder.
One failing question never aborts the run: it becomes an error row and counts as wrong.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from evals import metrics as M
from rag.answer import answer
from reportqa.errors import InputError, ReportQAError
from reportqa.settings import Settings

REQUIRED: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "question": (str,),
    "answers": (list,),
    "evidence": (list,),
    "council": (str, type(None)),
    "answerable": (bool,),
}
OPTIONAL: dict[str, tuple[type, ...]] = {
    "type": (str, type(None)),
    "file": (str, type(None)),
    "split": (str, type(None)),
}
RETRIEVE_K = 10


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    evidence: tuple[str, ...]
    council: str | None
    answerable: bool
    type: str | None = None
    file: str | None = None
    split: str | None = None


# --- loading ---------------------------------------------------------------------------------

def load_questions(path: str | Path, split: str = "all") -> list[Question]:
    """Read a JSON Lines question set; every problem names the file and line number."""
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "question file not found" if not p.exists()
                         else "not a file; pass a .jsonl question set")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(p), f"cannot read the question file ({exc})") from exc
    out: list[Question] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(str(p), f"line {n}: not valid JSON ({exc.msg} at column "
                             f"{exc.colno})") from exc
        if not isinstance(obj, dict):
            raise InputError(str(p), f"line {n}: expected a JSON object, got "
                             f"{type(obj).__name__}")
        missing = [k for k in REQUIRED if k not in obj]
        if missing:
            raise InputError(str(p), f"line {n}: missing required field(s) "
                             + ", ".join(repr(k) for k in missing))
        for k, types in {**REQUIRED, **OPTIONAL}.items():
            if k in obj and not isinstance(obj[k], types):
                want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
                raise InputError(str(p), f"line {n}: field '{k}' must be {want}, got "
                                 f"{type(obj[k]).__name__}")
        for k in ("answers", "evidence"):
            if not all(isinstance(x, str) for x in obj[k]):
                raise InputError(str(p), f"line {n}: field '{k}' must be a list of strings")
        if not obj["id"].strip() or not obj["question"].strip():
            raise InputError(str(p), f"line {n}: 'id' and 'question' must not be empty")
        if obj["answerable"] and not obj["answers"]:
            raise InputError(str(p), f"line {n}: answerable question '{obj['id']}' has no "
                             "gold answers")
        if obj["id"] in seen:
            raise InputError(str(p), f"line {n}: duplicate id '{obj['id']}' (first on line "
                             f"{seen[obj['id']]})")
        seen[obj["id"]] = n
        out.append(Question(
            id=obj["id"], question=obj["question"], answers=tuple(obj["answers"]),
            evidence=tuple(obj["evidence"]), council=obj["council"],
            answerable=obj["answerable"], type=obj.get("type"), file=obj.get("file"),
            split=obj.get("split"),
        ))
    if not out:
        raise InputError(str(p), "the question set is empty; add one JSON object per line")
    if split != "all":
        out = [q for q in out if q.split == split]
        if not out:
            raise InputError(str(p), f"no questions with split '{split}'; use --split all, "
                             "dev or held")
    return out


def load_thresholds(path: str | Path) -> dict[str, float]:
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "thresholds file not found")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(str(p), f"not valid JSON ({exc})") from exc
    mins = obj.get("minimum", obj) if isinstance(obj, dict) else None
    if not isinstance(mins, dict) or not mins:
        raise InputError(str(p), 'expected {"minimum": {"answer_accuracy": 0.5, ...}}')
    out = {}
    for k, v in mins.items():
        if k not in M.GATED:
            raise InputError(str(p), f"unknown metric '{k}'; gate one of: " + ", ".join(M.GATED))
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise InputError(str(p), f"minimum for '{k}' must be a number")
        out[k] = float(v)
    return out


def load_previous(out_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    d = Path(out_dir)
    s, r = d / "summary.json", d / "results.jsonl"
    for f in (s, r):
        if not f.is_file():
            raise InputError(str(f), "not found; --baseline takes the --out folder of an "
                             "earlier `reportqa eval` run")
    try:
        summary = json.loads(s.read_text(encoding="utf-8"))
        rows = [json.loads(ln) for ln in r.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except json.JSONDecodeError as exc:
        raise InputError(str(d), f"previous results are not valid JSON ({exc})") from exc
    return summary, rows


# --- running ---------------------------------------------------------------------------------

def _progress(total: int, desc: str, enabled: bool):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="q", file=sys.stderr, disable=not enabled,
                dynamic_ncols=True)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def retrieval_passages(engine: Any, question: str, k: int = RETRIEVE_K) -> list[str]:
    """Top-k chunk texts with the filters and boosts answer() itself would use."""
    from rag.query import parse_question
    from rag.retrieve import Filters

    q = " ".join(question.split())
    u = parse_question(q, engine.derived().councils)
    hits = engine.retriever.retrieve(u.content, Filters(councils=u.councils), k,
                                     boost_statements=u.statements)
    return [h.chunk.text for h in hits]


def evaluate_one(q: Question, settings: Settings, engine: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": q.id, "question": q.question, "type": q.type, "split": q.split,
        "answerable": q.answerable, "answers": list(q.answers),
        "answer": None, "abstained": False, "answerer": None, "citations": [],
        "correct": False, "contains_gold": False, "words": None, "supported": None,
        "rank": None, "latency_ms": None, "error": None,
    }
    errors = []
    t0 = time.perf_counter()
    try:
        a = answer(q.question, settings, engine=engine)
        row["answer"] = a.text
        row["abstained"] = bool(a.abstained)
        row["outcome"] = a.outcome
        row["confidence"] = a.confidence
        row["answerer"] = a.answerer
        row["words"] = M.word_count(a.text)
        row["latency_ms"] = round(float(a.timings_ms.get("total",
                                  (time.perf_counter() - t0) * 1000)), 2)
        cites = [c for c in a.citations if not getattr(c, "see_also", False)]
        row["citations"] = [{"n": c.n, "report_id": c.report_id, "quote": c.quote,
                             "start": c.start, "end": c.end, "page": c.page,
                             "see_also": bool(getattr(c, "see_also", False))}
                            for c in a.citations]
        if q.answerable:
            row["contains_gold"] = (not a.abstained) and M.contains_gold(a.text, q.answers)
            row["correct"] = M.answer_correct(a.text, a.abstained, q.answers)
            if row["correct"]:
                row["supported"] = any(M.supports(c.passage, q.evidence)
                                       or M.supports(c.quote, q.evidence) for c in cites)
        else:
            row["correct"] = bool(a.abstained)
    except Exception as exc:  # one bad question never aborts the run
        errors.append("answer: " + _error_text(exc))
    if q.answerable:
        try:
            row["rank"] = M.first_supporting_rank(retrieval_passages(engine, q.question),
                                                  q.evidence)
        except Exception as exc:
            errors.append("retrieve: " + _error_text(exc))
    row["error"] = "; ".join(errors) or None
    row["failure"] = M.failure_reason(row)
    return row


def run_questions(questions: list[Question], settings: Settings, engine: Any,
                  progress: bool = True) -> list[dict[str, Any]]:
    rows = []
    with _progress(len(questions), "eval", progress) as bar:
        for q in questions:
            rows.append(evaluate_one(q, settings, engine))
            bar.update(1)
    return rows


def run_baseline(questions: list[Question], engine: Any, progress: bool = True) -> dict[str, Any]:
    """The plain llama-index pipeline on the same questions (answer = top passage)."""
    from evals.baseline import TOP_K, LlamaIndexBaseline

    t0 = time.perf_counter()
    base = LlamaIndexBaseline(engine)
    build_s = time.perf_counter() - t0
    rows = []
    with _progress(len(questions), "baseline", progress) as bar:
        for q in questions:
            r: dict[str, Any] = {"id": q.id, "type": q.type, "split": q.split,
                                 "answerable": q.answerable, "error": None, "rank": None,
                                 "answer": None, "abstained": False, "correct": False,
                                 "contains_gold": False, "latency_ms": None}
            try:
                texts, ms = base.retrieve(q.question)
                top = texts[0] if texts else ""
                r.update(answer=top, latency_ms=round(ms, 2))
                if q.answerable:
                    r["rank"] = M.first_supporting_rank(texts, q.evidence)
                    r["contains_gold"] = M.contains_gold(top, q.answers)
                    r["correct"] = M.answer_correct(top, False, q.answers)
            except Exception as exc:
                r["error"] = _error_text(exc)
            rows.append(r)
            bar.update(1)
    keep = ("n", "n_answerable", "errors", "answer_accuracy", "contains_gold",
            "abstention_accuracy", "recall_at_1", "recall_at_5", "mrr", "latency_p50_ms",
            "latency_p95_ms", "mean_answer_words")

    def pick(s: dict[str, Any]) -> dict[str, Any]:
        return {k: s[k] for k in keep}

    return {
        "pipeline": "llama-index VectorStoreIndex + SentenceSplitter (defaults), dense "
                    f"top-{TOP_K}, answer = top passage",
        "embedder": engine.embedder.name, "nodes": base.n_nodes, "build_s": round(build_s, 2),
        "overall": pick(M.summarise(rows)),
        "llama_index_seam": {
            "pipeline": "llama-index RetrieverQueryEngine (scripted MockLLM) over rag.llama."
                        "ReportQARetriever(granularity='sentence'), answer = top source node",
            "overall": pick(M.summarise(_seam_rows(questions, engine))),
        },
        "by_type": {k: pick(v) for k, v in M.grouped(rows, "type").items()},
        "by_split": {k: pick(v) for k, v in M.grouped(rows, "split").items()},
        "_rows": rows,
    }


def _seam_rows(questions: list[Question], engine: Any) -> list[dict[str, Any]]:
    """Our retriever through the llama-index seam: what a llama-index app built on reportqa
    would get as its top source."""
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    from rag.llama import ReportQARetriever

    qe = RetrieverQueryEngine.from_args(ReportQARetriever(engine, granularity="sentence"),
                                        llm=MockLLM(max_tokens=1))
    rows = []
    for q in questions:
        r: dict[str, Any] = {"id": q.id, "answerable": q.answerable, "abstained": False,
                             "correct": False, "contains_gold": False, "error": None}
        try:
            t0 = time.perf_counter()
            nodes = qe.query(q.question).source_nodes
            top = nodes[0].node.get_content() if nodes else ""
            r.update(answer=top, latency_ms=round((time.perf_counter() - t0) * 1000, 2))
            if q.answerable:
                r["contains_gold"] = M.contains_gold(top, q.answers)
                r["correct"] = M.answer_correct(top, False, q.answers)
        except Exception as exc:
            r["error"] = _error_text(exc)
        rows.append(r)
    return rows


def compare_previous(summary: dict[str, Any], prev_summary: dict[str, Any],
                     prev_rows: list[dict[str, Any]], rows: list[dict[str, Any]],
                     path: str) -> dict[str, Any]:
    before = {r.get("id"): bool(r.get("correct")) for r in prev_rows}
    right_to_wrong = [r["id"] for r in rows if before.get(r["id"]) is True and not r["correct"]]
    wrong_to_right = [r["id"] for r in rows if before.get(r["id"]) is False and r["correct"]]
    po = prev_summary.get("overall", {})
    delta = {k: (v - po[k]) for k, v in summary["overall"].items()
             if isinstance(v, int | float) and isinstance(po.get(k), int | float)}
    return {
        "path": path, "created": prev_summary.get("created"),
        "overall": po, "by_type": prev_summary.get("by_type", {}),
        "by_split": prev_summary.get("by_split", {}), "delta": delta,
        "right_to_wrong": right_to_wrong, "wrong_to_right": wrong_to_right,
        "not_in_previous": [r["id"] for r in rows if r["id"] not in before],
    }


@dataclass
class EvalResult:
    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    out_dir: Path
    gate_failures: list[str]


def evaluate(questions_path: str | Path, settings: Settings, *, out_dir: str | Path = "evals/out",
             previous: str | Path | None = None, compare_baseline: bool = False,
             split: str = "all", answerer: str | None = None, gate_path: str | Path | None = None,
             progress: bool = True, engine: Any = None) -> EvalResult:
    """Evaluate every question; write results.jsonl, summary.json, report.html to ``out_dir``."""
    from rag.engine import Engine

    questions = load_questions(questions_path, split)
    thresholds = load_thresholds(gate_path) if gate_path else None
    prev = load_previous(previous) if previous else None
    if answerer:
        settings = replace(settings, answerer=answerer)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "--out must be a folder")
    eng = engine or Engine.load(settings)
    eng.require_ready()  # IndexNotReadyError: "run `reportqa ingest corpus/` first"
    # Warm up (model load, BM25 build) so the first question's latency is not a cold start.
    eng.embedder.embed(["warm up"])
    eng.derived()

    t0 = time.perf_counter()
    rows = run_questions(questions, settings, eng, progress)
    summary: dict[str, Any] = {
        "questions": str(questions_path), "split": split, "n": len(rows),
        "answerer": settings.answerer, "embedder": eng.embedder.name,
        "index_dir": str(settings.index_dir),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": None,
        "overall": M.summarise(rows),
        "by_type": M.grouped(rows, "type"),
        "by_split": M.grouped(rows, "split"),
        "failures": _failure_counts(rows),
        "error_ids": [r["id"] for r in rows if r["error"]],
    }
    base_rows: list[dict[str, Any]] = []
    if compare_baseline:
        base = run_baseline(questions, eng, progress)
        base_rows = base.pop("_rows")
        summary["baseline"] = base
    if prev:
        summary["previous"] = compare_previous(summary, prev[0], prev[1], rows, str(previous))
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    gate_failures = M.gate(summary["overall"], thresholds) if thresholds is not None else []
    if thresholds is not None:
        summary["gate"] = {"thresholds": thresholds, "passed": not gate_failures,
                           "failures": gate_failures}
    write_outputs(out, summary, rows, questions, base_rows)
    return EvalResult(summary, rows, out, gate_failures)


def _failure_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        if r.get("failure"):
            counts[r["failure"]] = counts.get(r["failure"], 0) + 1
    return dict(sorted(counts.items()))


def write_outputs(out: Path, summary: dict[str, Any], rows: list[dict[str, Any]],
                  questions: list[Question], base_rows: list[dict[str, Any]]) -> None:
    from evals.report import render_html

    try:
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "results.jsonl", "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False)
                                          + "\n", encoding="utf-8")
        (out / "report.html").write_text(render_html(summary, rows, questions, base_rows),
                                         encoding="utf-8")
    except OSError as exc:
        raise ReportQAError(f"cannot write evaluation results to {out}: {exc}") from exc
