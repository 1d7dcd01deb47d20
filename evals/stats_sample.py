"""Sample figure-bearing sentences from corpus/ and print what the statistics extractor reads
from them, for hand-checking extraction precision (issue: statistics table).

    python evals/stats_sample.py --n 64 > /tmp/sample.jsonl     # sentences + extractions
    python evals/stats_sample.py --score evals/stats_checked.jsonl  # precision from judgments

A judgment line is the sample line plus "ok": true/false per extracted stat (all fields that
were extracted - value, unit, subject, comparator and its value, direction, source/date - must
be right for the stat to count as correct).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from rag.stats import extract_stats
from reportqa.text import sentence_spans

ROOT = Path(__file__).resolve().parent.parent


def sample(n: int, seed: int = 11) -> list[dict[str, object]]:
    rows = []
    for f in sorted((ROOT / "corpus").glob("*.txt")):
        text = f.read_text(encoding="utf-8")
        stats = extract_stats(f.stem, text, None, None)
        for s, e in sentence_spans(text):
            sent = text[s:e]
            if not re.search(r"\d", sent) or len(sent.split()) < 5:
                continue
            mine = [x for x in stats if x.start == s]
            rows.append({"file": f.name, "start": s, "sentence": sent, "stats": [
                {k: v for k, v in x.to_json().items()
                 if k in ("raw", "unit", "subject", "comparator", "comparator_value", "direction",
                          "source", "date")} for x in mine]})
    random.Random(seed).shuffle(rows)
    return rows[:n]


def score(path: Path) -> None:
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    judged = [s for row in lines for s in row["stats"] if "ok" in s]
    ok = sum(1 for s in judged if s["ok"])
    missed = sum(int(row.get("missed", 0)) for row in lines)
    print(f"sentences: {len(lines)}  extracted stats judged: {len(judged)}  correct: {ok}  "
          f"precision: {ok / max(1, len(judged)):.3f}  figures missed (recall gaps): {missed}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--score", type=Path)
    args = ap.parse_args()
    if args.score:
        score(args.score)
        return
    for row in sample(args.n):
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
