"""Answer feedback: thumbs up/down and an optional correction, one JSON line per verdict in
the index folder (feedback.jsonl). Public: `record`, `load`, `candidate_questions`.

Only what reviewing an answer needs is kept: the question, how it was read, the answer,
its citations (report, offsets, page, quote) and the verdict. No user, address or session.
"""

from __future__ import annotations

import fcntl
import json
import time
from pathlib import Path
from typing import Any

from reportqa.errors import InputError
from reportqa.records import Answer
from reportqa.settings import Settings

FILE = "feedback.jsonl"
MAX_CORRECTION = 2000  # characters; a correction is a sentence or two, not a document
VERDICTS = ("up", "down")


def path(settings: Settings) -> Path:
    return Path(settings.index_dir) / FILE


def record(settings: Settings, ans: Answer, verdict: str, correction: str | None = None) -> dict[str, Any]:
    """Append one verdict on ``ans``; returns the row written."""
    if verdict not in VERDICTS:
        raise InputError(str(path(settings)), f"verdict must be one of {VERDICTS}, not {verdict!r}")
    text = " ".join((correction or "").split())
    if len(text) > MAX_CORRECTION:
        raise InputError(str(path(settings)), f"the correction is {len(text):,} characters; "
                         f"keep it under {MAX_CORRECTION:,}")
    row = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "question": ans.question,
           "read_as": ans.read_as or ans.question, "answer": ans.text, "outcome": ans.outcome,
           "citations": [{"report_id": c.report_id, "start": c.start, "end": c.end,
                          "page": c.page, "quote": c.quote} for c in ans.citations
                         if not c.see_also],
           "verdict": verdict, "correction": text or None}
    p = path(settings)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a", encoding="utf-8") as fh:
        # One writer at a time: two browser tabs must not interleave half-lines.
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return row


def load(settings: Settings) -> list[dict[str, Any]]:
    """Every verdict recorded so far; a damaged line (a crash mid-write) is skipped."""
    p = path(settings)
    if not p.exists():
        return []
    rows = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def candidate_questions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gold-question candidates in the evaluation format, for a person to review, from the
    last verdict on each answer: a "not in the reports" marked right (an unanswerable
    candidate), a thumbs down with a correction (the correction is the gold answer to
    check), and a thumbs up (its quotes are the evidence; the gold answer is left for the
    reviewer to pick)."""
    # The last verdict on an answer is the one that counts: a thumbs down changed to a
    # thumbs up (the app records both) was a change of mind.
    last = {(r.get("read_as"), r.get("answer")): i for i, r in enumerate(rows, 1)}
    out = []
    for i, r in enumerate(rows, 1):
        if last[(r.get("read_as"), r.get("answer"))] != i:
            continue
        if r.get("verdict") == "down" and not r.get("correction"):
            continue
        quotes = [c["quote"] for c in r.get("citations") or []]
        # "Not in the reports" marked right is an unanswerable question, as the eval reads one.
        confirmed_absent = r.get("verdict") == "up" and r.get("outcome") == "not_found"
        out.append({"id": f"fb-{i:04d}", "question": r["read_as"],
                    "answers": [r["correction"]] if r.get("correction") else [],
                    "evidence": quotes if r.get("verdict") == "up" and not confirmed_absent
                    else [],
                    "council": None, "answerable": not confirmed_absent, "type": "feedback",
                    "review": ("correction: check the report says it, shorten it to the "
                               "distinguishing words, add evidence" if r.get("correction")
                               else "marked right that the reports don't say: check they don't"
                               if confirmed_absent
                               else "answer was marked right: pick gold words from it"),
                    "answer_given": r["answer"], "verdict": r["verdict"]})
    return out
