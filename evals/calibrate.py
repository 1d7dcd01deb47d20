"""Calibrate the extractive answerer's abstention threshold on the development split.

Runs the real pipeline once with abstention disabled, records each question's confidence and
whether the (forced) answer is correct, then picks the threshold that maximises
answer accuracy + abstention accuracy on the dev split. The held-back split is reported but
never used to choose. Usage: python evals/calibrate.py [--index DIR] [--questions FILE]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from tqdm import tqdm

from rag.answer import ExtractiveAnswerer, answer
from rag.engine import Engine
from reportqa.settings import Settings


def norm(t: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\[\d+\]", "", t.lower())).strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index")
    ap.add_argument("--questions", default=str(Path(__file__).with_name("questions.jsonl")))
    args = ap.parse_args()
    settings = Settings.from_env(index_dir=args.index)
    eng = Engine.load(settings)
    forced = ExtractiveAnswerer(threshold=-1.0, max_words=settings.max_answer_words)
    rows = []
    qs = [json.loads(ln) for ln in Path(args.questions).read_text().splitlines() if ln.strip()]
    for q in tqdm(qs, desc="calibrating", unit="q"):
        a = answer(q["question"], settings, engine=eng, answerer=forced)
        ok = any(norm(g) in norm(a.text) for g in q["answers"]) and len(a.text.split()) <= 75
        rows.append((q.get("split", "dev"), q["answerable"], a.confidence, ok, a.abstained))
    grid = [round(0.02 * i, 2) for i in range(0, 40)]

    def score(split: str, th: float) -> tuple[float, float]:
        ans = [r for r in rows if r[0] == split and r[1]]
        un = [r for r in rows if r[0] == split and not r[1]]
        # Table answers carry no confidence: they abstain or answer on their own terms.
        acc = sum(1 for r in ans if r[3] and not r[4] and (r[2] is None or r[2] >= th)) / max(1, len(ans))
        ab = sum(1 for r in un if r[4] or (r[2] is not None and r[2] < th)) / max(1, len(un))
        return acc, ab

    best = max(grid, key=lambda th: (sum(score("dev", th)), -th))
    for th in grid:
        d, h = score("dev", th), score("held", th)
        mark = " <= chosen" if th == best else ""
        print(f"th={th:.2f} dev acc={d[0]:.3f} abst={d[1]:.3f} | held acc={h[0]:.3f} "
              f"abst={h[1]:.3f}{mark}")
    print(f"chosen abstain_threshold={best} (set Settings.abstain_threshold / "
          "REPORTQA_ABSTAIN_THRESHOLD)")


if __name__ == "__main__":
    main()
