"""Score questions across councils (and about one council's report as a whole) on the real
pipeline: a list answer is right when it names exactly the councils expected, no more and no
fewer; a one-council answer when it holds every expected word (its grade).

    python evals/cross_councils.py evals/blind/cross.jsonl --index IDX [--out DIR]

The set's rows (written blind, evals/README.md): id, kind, question, expected_councils (for
list kinds; [] when no council fits), expected_text (words a one-council answer must hold),
and for kind "followup" a second turn asked in the chat after the first. `reportqa eval`
cannot score these: its "contains a gold string" counts a list right when it names one
council of several, or ten too many.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.chat import answer_in_chat  # noqa: E402
from rag.engine import Engine, get_engine  # noqa: E402
from rag.query import org_mentions, resolve_council  # noqa: E402
from reportqa.errors import QuestionError  # noqa: E402
from reportqa.records import Answer, Turn  # noqa: E402
from reportqa.settings import Settings  # noqa: E402


def councils_named(text: str, eng: Engine) -> set[str]:
    """The indexed councils an answer names (keys), by the same reading as questions."""
    out = set()
    for m in org_mentions(text, eng.derived().councils):
        try:
            out.add(resolve_council(m.typed, eng.derived().councils))
        except QuestionError:
            continue  # a place the index does not hold ("NHS Greater Manchester")
    return out


def expected_keys(names: list[str], eng: Engine) -> set[str]:
    """The councils a row expects, as index keys (a name the index lacks is its own key)."""
    out = set()
    for n in names:
        try:
            out.add(resolve_council(n, eng.derived().councils))
        except QuestionError:
            out.add(n.lower())
    return out


def judge(turn: dict[str, Any], a: Answer, eng: Engine) -> dict[str, Any]:
    """Right or wrong, with what was named, for one asked turn."""
    text = "" if a.abstained else a.text
    if turn.get("expected_text"):
        missing = [w for w in turn["expected_text"] if w.lower() not in text.lower()]
        return {"right": not missing, "missing": missing}
    want = expected_keys(list(turn.get("expected_councils") or []), eng)
    got = councils_named(text, eng)
    return {"right": got == want, "missing": sorted(want - got), "extra": sorted(got - want)}


def run(rows: list[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    eng = get_engine(settings)
    out = []
    for r in rows:
        history: list[Turn] = []
        turns = [r] + ([{**r["followup"], "kind": "followup-2"}] if r.get("followup") else [])
        for i, t in enumerate(turns):
            a = answer_in_chat(t["question"], history, settings, engine=eng)
            history.append(Turn.of(a))
            verdict = judge(t, a, eng)
            out.append({"id": f"{r['id']}#{i + 1}", "kind": t.get("kind", r["kind"]),
                        "question": t["question"], "read_as": a.read_as, "answer": a.text,
                        **verdict})
    return out


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    kinds: Counter[str] = Counter()
    right: Counter[str] = Counter()
    for r in results:
        kinds[r["kind"]] += 1
        right[r["kind"]] += bool(r["right"])
    return {"right": sum(right.values()), "n": len(results),
            "accuracy": round(sum(right.values()) / max(1, len(results)), 3),
            "by_kind": {k: f"{right[k]}/{kinds[k]}" for k in sorted(kinds)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--index", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    rows = [json.loads(x) for x in args.file.read_text(encoding="utf-8").splitlines() if x.strip()]
    settings = Settings.from_env(**({"index_dir": args.index} if args.index else {}))
    results = run(rows, settings)
    s = summary(results)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results), encoding="utf-8")
        (args.out / "summary.json").write_text(json.dumps(s, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(s, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
