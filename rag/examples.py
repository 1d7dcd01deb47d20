"""Example questions for an empty chat, built from the judgement table of what is indexed
(rag/vocab/examples.toml). Public: `example_questions`."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rag.engine import Engine
from rag.lexicon import vocab
from rag.tables import JudgementRow


def example_rows() -> tuple[dict[str, Any], ...]:
    return tuple(vocab("examples")["example"])


def example_questions(engine: Engine, n: int = 4) -> list[str]:
    """Up to ``n`` questions the index answers from its tables; deterministic for an index."""
    table = engine.derived().judgements
    hidden = set(engine.derived().hidden())
    out: list[str] = []
    for row in example_rows():
        rows = sorted((j for j in table if j.family == row["family"]
                       and j.judgement == row["judgement"] and j.report_id not in hidden),
                      key=lambda j: (j.organisation, j.report_id))
        if rows and len(out) < n:
            out.append(_fill(row["text"], rows))
    return list(dict.fromkeys(out))


def _fill(text: str, rows: list[JudgementRow]) -> str:
    # The rarest grade makes the most telling "which councils ..." question.
    grades = Counter(r.grade for r in rows)
    rare = min(grades, key=lambda g: (grades[g], g))
    first = rows[0]
    return text.format(org=first.organisation, judgement=first.judgement.lower(),
                       grade=rare.lower())
