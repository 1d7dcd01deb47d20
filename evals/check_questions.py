"""Validate the gold question set in evals/questions.jsonl against corpus/.

Standard library only. Usage:

    python evals/check_questions.py [--questions PATH] [--corpus DIR]

Errors (exit status 1): malformed lines, missing/extra fields, wrong field types,
duplicate ids, unknown type/split, evidence not found verbatim in corpus/<file>,
answerable questions without answers/evidence/file, unanswerable questions with
answers/evidence, corpus pages not covered by any answerable question.

Warnings (exit status unaffected): an answer string of an answerable question
that does not occur (case-insensitively, whitespace collapsed) in its file, which
is expected for reworded alternatives such as "score of 3" or "both scored 3".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIELDS = {
    "id": str,
    "question": str,
    "answers": list,
    "evidence": list,
    "council": (str, type(None)),
    "answerable": bool,
    "type": str,
    "file": (str, type(None)),
    "split": str,
}
OPTIONAL = {"file"}  # may be omitted for unanswerable questions
TYPES = {"number", "score", "rating", "fact", "reason", "list", "cross", "unanswerable"}
SPLITS = {"dev", "held"}
ID_RE = re.compile(r"^[a-z]+-\d{2,}$")
QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-"})


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=Path, default=ROOT / "evals" / "questions.jsonl")
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    args = ap.parse_args(argv)

    errors: list[str] = []
    warnings: list[str] = []
    pages = {p.name: p.read_text(encoding="utf-8") for p in sorted(args.corpus.glob("*.txt"))}
    questions: list[dict] = []
    seen: set[str] = set()

    for lineno, line in enumerate(args.questions.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {lineno}: invalid JSON ({exc})")
            continue
        if not isinstance(q, dict):
            errors.append(f"line {lineno}: not a JSON object")
            continue
        qid = q.get("id", f"<line {lineno}>")
        where = f"{qid} (line {lineno})"
        missing = [k for k in FIELDS if k not in q and k not in OPTIONAL]
        extra = [k for k in q if k not in FIELDS]
        if missing:
            errors.append(f"{where}: missing fields {missing}")
        if extra:
            errors.append(f"{where}: unexpected fields {extra}")
        bad = [k for k, t in FIELDS.items() if k in q and not isinstance(q[k], t)]  # type: ignore[arg-type]
        if bad:
            errors.append(f"{where}: wrong value type for {bad}")
            continue
        if missing:
            continue
        questions.append(q)

        if not ID_RE.match(qid):
            errors.append(f"{where}: id should look like 'dar-01'")
        if qid in seen:
            errors.append(f"{where}: duplicate id")
        seen.add(qid)
        if not q["question"].strip():
            errors.append(f"{where}: empty question")
        if q["type"] not in TYPES:
            errors.append(f"{where}: unknown type {q['type']!r}")
        if q["split"] not in SPLITS:
            errors.append(f"{where}: unknown split {q['split']!r}")
        if not all(isinstance(a, str) and a.strip() for a in q["answers"]):
            errors.append(f"{where}: answers must be non-empty strings")
        if not all(isinstance(e, str) and e.strip() for e in q["evidence"]):
            errors.append(f"{where}: evidence must be non-empty strings")

        if not q["answerable"]:
            if q["type"] != "unanswerable":
                errors.append(f"{where}: answerable=false but type is {q['type']!r}")
            if q["answers"] or q["evidence"]:
                errors.append(f"{where}: unanswerable question must have empty answers/evidence")
            continue

        if q["type"] == "unanswerable":
            errors.append(f"{where}: type 'unanswerable' but answerable=true")
        if q["council"] is None and q["type"] != "cross":
            errors.append(f"{where}: council may only be null for cross questions")
        if not q["answers"]:
            errors.append(f"{where}: answerable question without answers")
        if not 1 <= len(q["evidence"]) <= 2:
            errors.append(f"{where}: expected 1-2 evidence strings, got {len(q['evidence'])}")
        fname = q.get("file")
        if not fname or fname not in pages:
            errors.append(f"{where}: file {fname!r} not found in {args.corpus}")
            continue
        text = pages[fname]
        for ev in q["evidence"]:
            if ev not in text:
                errors.append(f"{where}: evidence not verbatim in {fname}: {ev[:70]!r}")
        ntext = norm(text)
        ntext_plain = ntext.translate(QUOTES)
        absent = [
            a for a in q["answers"]
            if norm(a) not in ntext and norm(a).translate(QUOTES) not in ntext_plain
        ]
        if absent and len(absent) == len(q["answers"]):
            warnings.append(f"{where}: NO answer string occurs in {fname}: {absent}")
        elif absent:
            warnings.append(f"{where}: reworded answers not in {fname}: {absent}")

    covered = {q.get("file") for q in questions if q["answerable"]}
    for name in pages:
        if name not in covered:
            errors.append(f"corpus page {name} is not the file of any answerable question")

    for w in warnings:
        print(f"WARNING {w}")
    for e in errors:
        print(f"ERROR {e}")

    n = len(questions)
    print(f"\n{n} questions, {len(errors)} errors, {len(warnings)} warnings")
    types = Counter(q["type"] for q in questions)
    splits = Counter(q["split"] for q in questions)
    by = Counter((q["type"], q["split"]) for q in questions)
    print(f"\n{'type':<14}{'total':>6}{'%':>7}{'dev':>6}{'held':>6}")
    for t in sorted(types, key=lambda t: (-types[t], t)):
        pct = 100 * types[t] / n if n else 0
        print(f"{t:<14}{types[t]:>6}{pct:>6.1f}%{by[(t, 'dev')]:>6}{by[(t, 'held')]:>6}")
    print("splits: " + ", ".join(f"{s}={c}" for s, c in sorted(splits.items())))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
