"""Citing a table row, and refusing from the tables: shared by the table answers
(rag/structured.py for one council's rows, rag/across.py for lists across councils).
Public: `cite_row`, `cite_score`, `refused`, `in_its_words`."""

from __future__ import annotations

from rag.engine import Engine
from rag.evidence import W, cite_span
from rag.query import Understanding
from rag.tables import RatingRow, ScoreRow
from reportqa.records import Answer, Citation
from reportqa.text import clean_quote


def in_its_words(quote: str) -> str:
    """", in the report's words: “...”" when a grade row is a whole sentence (an area SEND
    outcome, "The Care Quality Commission (CQC), has rated Darlington Borough Council as
    good, ..."): the grade's name alone drops the verdict as inspectors worded it. Empty for
    a table row (the judgement and its grade, a few words), which is quoted as printed."""
    row = clean_quote(quote)
    if len(row.split()) <= W.judgement_row_words:
        return ""
    return f", in the report\u2019s words: \u201c{row.rstrip('.')}\u201d"


def refused(u: Understanding, text: str) -> Answer:
    """A table answer that says what the tables do not hold ("No indexed council is ...")."""
    return Answer(u.question, text, True, (), answerer="table")


def cite_score(n: int, r: ScoreRow, eng: Engine) -> Citation:
    return cite_row(n, r, eng, r.start, r.end, statement=r.statement, score=r.score)


def cite_row(n: int, r: ScoreRow | RatingRow, eng: Engine, start: int, end: int,
             statement: str | None = None, score: int | None = None) -> Citation:
    return cite_span(n, r.report_id, eng, start, end, council=r.council, statement=statement,
                     score=score)
