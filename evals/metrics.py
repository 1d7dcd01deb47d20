"""Evaluation metrics as pure functions (no index, no model): easy to unit-test.

Definitions (see `reportqa eval`):

* normalise: lower-case, drop citation markers like ``[3]``, collapse whitespace.
* answer accuracy (answerable): not abstained, at most 75 words, and the normalised answer
  contains a normalised gold answer.
* abstention accuracy (unanswerable): abstained. False-abstention rate: answerable questions
  that were abstained on.
* citation support (answerable and correct): some citation's passage (or quote) contains a
  normalised evidence string or shares a run of >= 40 characters with one.
* retrieval recall@k / MRR (answerable): rank of the first retrieved passage that supports an
  evidence string in the same sense; rank None (not in the top 10) has reciprocal rank 0.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from difflib import SequenceMatcher
from typing import Any

MAX_WORDS = 75
MIN_RUN = 40
_MARKER = re.compile(r"\[\d+(?:\s*[,;–-]\s*\d+)*\]")


def normalise(text: str | None) -> str:
    """Lower-case, remove citation markers (``[3]``, ``[1, 2]``), collapse whitespace."""
    t = _MARKER.sub(" ", (text or "").lower())
    return " ".join(t.split())


def word_count(text: str | None) -> int:
    """Words of the answer as a reader sees them (citation markers are not words)."""
    return len(normalise(text).split())


def contains_gold(answer: str | None, golds: Iterable[str]) -> bool:
    a = normalise(answer)
    return any(g and g in a for g in (normalise(x) for x in golds))


def answer_correct(answer: str | None, abstained: bool, golds: Iterable[str],
                   max_words: int = MAX_WORDS) -> bool:
    return (not abstained and word_count(answer) <= max_words
            and contains_gold(answer, golds))


def longest_common_run(a: str, b: str) -> int:
    """Length of the longest common substring of ``a`` and ``b`` (raw strings, as given)."""
    if not a or not b:
        return 0
    m = SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return m.size


def shares_run(a: str, b: str, n: int = MIN_RUN) -> bool:
    """True when ``a`` and ``b`` share a substring of at least ``n`` characters.

    Equivalent to ``longest_common_run(a, b) >= n`` but fast: every n-character window of the
    shorter string is looked up in the longer one (C-speed ``in``).
    """
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    if len(short) < n:
        return False
    return any(short[i:i + n] in long_ for i in range(len(short) - n + 1))


def supports(passage: str | None, evidence: Iterable[str], n: int = MIN_RUN) -> bool:
    """Does ``passage`` contain (or share a >= n-char run with) some evidence string?"""
    p = normalise(passage)
    if not p:
        return False
    for ev in evidence:
        e = normalise(ev)
        if e and (e in p or shares_run(e, p, n)):
            return True
    return False


def first_supporting_rank(passages: Sequence[str], evidence: Sequence[str],
                          n: int = MIN_RUN) -> int | None:
    """1-based rank of the first passage that supports an evidence string, else None."""
    for i, p in enumerate(passages, start=1):
        if supports(p, evidence, n):
            return i
    return None


def recall_at(ranks: Sequence[int | None], k: int) -> float | None:
    if not ranks:
        return None
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mrr(ranks: Sequence[int | None]) -> float | None:
    if not ranks:
        return None
    return sum(1.0 / r for r in ranks if r) / len(ranks)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _rate(num: int, den: int) -> float | None:
    return None if den == 0 else num / den


def failure_reason(row: dict[str, Any]) -> str | None:
    """Why a result row is wrong (None when it is right).

    error | missed abstention | false abstention | retrieval miss | too long | wrong sentence
    """
    if row.get("error") and row.get("answer") is None:
        return "error"
    if not row.get("answerable", True):
        return None if row.get("abstained") else "missed abstention"
    if row.get("correct"):
        return None
    if row.get("abstained"):
        return "false abstention"
    if row.get("contains_gold"):
        return "too long"
    if row.get("rank") is None and row.get("answerer") != "table":
        return "retrieval miss"
    return "wrong sentence"


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Every metric over a group of result rows (rows as written to results.jsonl).

    Error rows count as failures (an answerable question that errored is not correct; an
    unanswerable one did not abstain) so a crash can never raise a score.
    """
    ans = [r for r in rows if r.get("answerable", True)]
    una = [r for r in rows if not r.get("answerable", True)]
    correct = [r for r in ans if r.get("correct")]
    ranks = [r.get("rank") for r in ans]
    lat = [r["latency_ms"] for r in rows if r.get("latency_ms") is not None]
    answered = [r for r in rows if r.get("answer") is not None and not r.get("abstained")]
    words = [word_count(r["answer"]) for r in answered]
    return {
        "n": len(rows),
        "n_answerable": len(ans),
        "n_unanswerable": len(una),
        "errors": sum(1 for r in rows if r.get("error")),
        "answer_accuracy": _rate(len(correct), len(ans)),
        "contains_gold": _rate(sum(1 for r in ans if r.get("contains_gold")), len(ans)),
        "abstention_accuracy": _rate(sum(1 for r in una if r.get("abstained")), len(una)),
        "false_abstention_rate": _rate(sum(1 for r in ans if r.get("abstained")), len(ans)),
        # Three outcomes (answer | uncertain | not_found): "uncertain" counts as an answer
        # above; these say how often each outcome was given.
        "answerable_outcomes": outcome_counts(ans),
        "unanswerable_outcomes": outcome_counts(una),
        # Unanswerable questions that got no confident answer (not_found or uncertain).
        "no_confident_answer": _rate(sum(1 for r in una if _outcome(r) != "answer"), len(una)),
        "citation_support": _rate(sum(1 for r in correct if r.get("supported")), len(correct)),
        # Which answerer gave the correct answers whose citations do not support the evidence:
        # a table answer cites its judgement or score row as the report's text reads after
        # repair, and an evidence string copied from another rendering of that table (its
        # columns in another order) shares too short a run with it to count.
        "unsupported_by_answerer": _by_answerer([r for r in correct
                                                 if r.get("supported") is False]),
        "recall_at_1": recall_at(ranks, 1),
        "recall_at_5": recall_at(ranks, 5),
        "mrr": mrr(ranks),
        "latency_p50_ms": percentile(lat, 50),
        "latency_p95_ms": percentile(lat, 95),
        "mean_answer_words": (sum(words) / len(words)) if words else None,
    }


def _by_answerer(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(str(r.get("answerer") or "unknown") for r in rows).items()))


def _outcome(row: dict[str, Any]) -> str:
    if row.get("abstained") or row.get("answer") is None:
        return "not_found"
    return str(row.get("outcome") or "answer")


def outcome_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    out = {"answer": 0, "uncertain": 0, "not_found": 0}
    for r in rows:
        out[_outcome(r)] += 1
    return out


def grouped(rows: Sequence[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """``summarise`` per value of ``key`` (rows without the key are left out)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        v = r.get(key)
        if v is not None:
            groups.setdefault(str(v), []).append(r)
    return {k: summarise(v) for k, v in sorted(groups.items())}


GATED = ("answer_accuracy", "abstention_accuracy", "no_confident_answer", "citation_support",
         "recall_at_5")


def gate(overall: dict[str, Any], thresholds: dict[str, float]) -> list[str]:
    """Messages for every metric below its minimum (empty list: the gate passes)."""
    out = []
    for name, minimum in thresholds.items():
        value = overall.get(name)
        if value is None:
            out.append(f"{name} was not measured (minimum {minimum:.3f})")
        elif value < minimum:
            out.append(f"{name} = {value:.3f} is below the minimum {minimum:.3f}")
    return out
