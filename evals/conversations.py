"""Scoring chat conversations: each turn answered with the turns before it as history, as the
app does. Public: `load_conversations`, `evaluate_conversations`.

A conversation set is JSON Lines, one conversation per line: {"id", "split", "turns": [...]},
each turn with "question", "kind" (first | other_org | other_topic | why | more | page |
pronoun | unanswerable), "answers", "evidence", "answerable", "page" (see evals/README.md).

Metric: follow-up accuracy = follow-up turns (all but the first) answered right, where right
is what `reportqa eval` counts right (gold in a non-abstained answer of at most 75 words; an
unanswerable turn abstained), and a "page" turn is right when a citation of the answer is on
the gold page. A wrong follow-up whose gold was already in the answer before it is still
wrong; the summary counts those apart (`wrong_given_before`). History carries what the app
carries: the question as typed, how it was read and its citations, whatever the answer was.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals import metrics as M
from rag.chat import answer_in_chat
from reportqa.errors import InputError
from reportqa.records import Answer, Turn
from reportqa.settings import Settings


@dataclass(frozen=True)
class ConvTurn:
    question: str
    kind: str
    answers: tuple[str, ...]
    evidence: tuple[str, ...]
    answerable: bool
    page: int | None


@dataclass(frozen=True)
class Conversation:
    id: str
    split: str | None
    turns: tuple[ConvTurn, ...]


def load_conversations(path: str | Path) -> list[Conversation]:
    """Read a conversation set; a malformed line names the file, the line and the fix."""
    p = Path(path)
    out = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            turns = tuple(ConvTurn(str(t["question"]), str(t.get("kind") or "first"),
                                   tuple(t.get("answers") or ()), tuple(t.get("evidence") or ()),
                                   bool(t.get("answerable", True)), t.get("page"))
                          for t in d["turns"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{p}:{n}", f"not a conversation ({exc}); each line needs "
                             '{"id": ..., "turns": [{"question": ..., ...}]}') from exc
        out.append(Conversation(str(d.get("id", f"line-{n}")), d.get("split"), turns))
    return out


def turn_correct(t: ConvTurn, a: Answer) -> bool:
    if not t.answerable:
        return bool(a.abstained)
    if t.kind == "page" and t.page is not None:
        return not a.abstained and any(
            c.page is not None and c.page <= t.page <= (c.page_end or c.page)
            for c in a.citations if not c.see_also)
    return M.answer_correct(a.text, a.abstained, t.answers)


def run_conversation(conv: Conversation, settings: Settings, engine: Any) -> list[dict[str, Any]]:
    history: list[Turn] = []
    rows = []
    for i, t in enumerate(conv.turns):
        row: dict[str, Any] = {"id": f"{conv.id}#{i + 1}", "conversation": conv.id,
                               "turn": i + 1, "kind": t.kind, "question": t.question,
                               "split": conv.split, "answers": list(t.answers)}
        try:
            a = answer_in_chat(t.question, history, settings, engine=engine)
        except Exception as exc:  # one bad turn never aborts the run
            row.update(read_as=None, answer=None, outcome=None, correct=False,
                       error=f"{type(exc).__name__}: {exc}")
            history.append(Turn(t.question))
            rows.append(row)
            continue
        correct = turn_correct(t, a)
        row.update(read_as=a.read_as, answer=a.text, outcome=a.outcome,
                   pages=[c.page for c in a.citations if not c.see_also],
                   correct=correct, error=None,
                   given_before=bool(not correct and i and t.answerable and t.answers
                                     and M.contains_gold(rows[-1]["answer"], t.answers)))
        history.append(Turn.of(a))
        rows.append(row)
    return rows


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    def acc(rs: list[dict[str, Any]]) -> dict[str, Any]:
        return {"n": len(rs), "accuracy": round(sum(r["correct"] for r in rs) / len(rs), 3)
                if rs else None}

    follow = [r for r in rows if r["turn"] > 1]
    kinds = sorted({r["kind"] for r in follow})
    return {"first_turns": acc([r for r in rows if r["turn"] == 1]),
            "follow_ups": acc(follow),
            "by_kind": {k: acc([r for r in follow if r["kind"] == k]) for k in kinds},
            # Follow-ups per batch of conversations (the id's prefix, "cvl" / "cvlc"): a set
            # that grew is still compared with its older figures, as aggregates.
            "by_set": {b: acc([r for r in follow if _batch(r) == b])
                       for b in sorted({_batch(r) for r in follow})},
            # Wrong follow-ups whose gold was already in the answer before (often one that
            # quoted the sentence next to its pick): counted wrong, shown apart.
            "wrong_given_before": sum(1 for r in follow if r.get("given_before")),
            "errors": sum(1 for r in rows if r["error"])}


def _batch(row: dict[str, Any]) -> str:
    return str(row["conversation"]).split("-")[0]


def evaluate_conversations(path: str | Path, settings: Settings, *, engine: Any = None,
                           out_dir: str | Path | None = None,
                           progress: bool = False) -> dict[str, Any]:
    from tqdm import tqdm

    from rag.engine import Engine

    convs = load_conversations(path)
    eng = engine or Engine.load(settings)
    eng.require_ready()
    rows: list[dict[str, Any]] = []
    for c in tqdm(convs, desc="conversations", unit="conv", file=sys.stderr,
                  disable=not progress, dynamic_ncols=True):
        rows += run_conversation(c, settings, eng)
    summary = {"conversations": str(path), "n_conversations": len(convs), **summarise(rows)}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
        with open(out / "results.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        plot_by_kind(summary, out / "by_kind.png")
    return summary


def plot_by_kind(summary: dict[str, Any], path: Path) -> None:
    """Follow-up accuracy per kind of follow-up, with how many turns each bar stands on."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    kinds = summary["by_kind"]
    names = list(kinds)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bars = ax.bar(names, [kinds[k]["accuracy"] or 0 for k in names], color="#4c78a8")
    for b, k in zip(bars, names, strict=True):
        ax.text(b.get_x() + b.get_width() / 2, b.get_height() + 0.02, f"n={kinds[k]['n']}",
                ha="center", fontsize=8)
    overall = summary["follow_ups"]["accuracy"] or 0
    ax.axhline(overall, color="#e45756", linestyle="--", linewidth=1)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("answered right")
    ax.set_title(f"Follow-up turns by kind (all: {overall:.2f})", fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
