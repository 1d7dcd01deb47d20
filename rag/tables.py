"""Structured data read at ingest: the score table (council x quality statement -> score),
overall ratings. Public: `score_table`, `rating_table`, `cqc_row_spans`, `label_start`.

Every row keeps the span of the page line that states it, so answers built from the table
cite the page exactly like text answers do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ingest.index import ReportRow
from ingest.structure import CQC_FAMILY, SCORE_LABELS, STATEMENTS, council_key


@dataclass(frozen=True)
class ScoreRow:
    council_key: str
    council: str
    statement: str
    theme: str
    score: int
    label: str
    report_id: str
    page_kind: str
    start: int
    end: int
    source: str
    published: str | None
    indicative: bool


@dataclass(frozen=True)
class RatingRow:
    council_key: str
    council: str
    rating: str
    percentage: int | None
    report_id: str
    page_kind: str
    start: int
    end: int
    source: str
    published: str | None
    indicative: bool
    # The report family the rating is of (ingest/profiles/*.toml; CQC's local authority
    # assessments "cqc-la-assessment"): a council may hold a CQC rating and an Ofsted grade.
    family: str = CQC_FAMILY


def score_table(reports: list[ReportRow]) -> list[ScoreRow]:
    """All stated scores, quality-statement pages first, then overview pages; sorted."""
    rows: list[ScoreRow] = []
    for r in reports:
        m = r.metadata
        key = council_key(m.get("council")) or ""
        base: dict[str, Any] = dict(council_key=key, council=m.get("council") or "", report_id=r.report_id,
                    page_kind=m.get("page_kind") or "", source=r.source,
                    published=m.get("published"), indicative=bool(m.get("indicative")))
        if m.get("score") and m.get("quality_statement") and m.get("score_span"):
            s, e = m["score_span"]
            rows.append(ScoreRow(statement=m["quality_statement"],
                                 theme=STATEMENTS[m["quality_statement"]], score=int(m["score"]),
                                 label=m.get("score_label") or SCORE_LABELS[int(m["score"])],
                                 start=s, end=e, **base))
        for stmt, theme, score, label, s, e in m.get("statement_scores") or []:
            rows.append(ScoreRow(statement=stmt, theme=theme, score=int(score),
                                 label=label or SCORE_LABELS[int(score)], start=s, end=e, **base))
    order = list(STATEMENTS)
    rows.sort(key=lambda x: (x.council_key, order.index(x.statement),
                             x.page_kind != "quality_statement", x.report_id))
    return rows


def rating_table(reports: list[ReportRow]) -> list[RatingRow]:
    rows = []
    for r in reports:
        m = r.metadata
        if m.get("overall_rating") and m.get("overall_rating_span"):
            s, e = m["overall_rating_span"]
            rows.append(RatingRow(
                council_key=council_key(m.get("council")) or "", council=m.get("council") or "",
                rating=m["overall_rating"], percentage=m.get("overall_percentage"),
                report_id=r.report_id, page_kind=m.get("page_kind") or "", start=s, end=e,
                source=r.source, published=m.get("published"),
                indicative=bool(m.get("indicative")),
                family=m.get("family") or CQC_FAMILY,
            ))
    rows.sort(key=lambda x: (x.council_key, x.page_kind != "overall_summary", x.report_id))
    return rows


_SENTENCE_END = re.compile(r"[.!?][\"”’')]*\s*$")


def cqc_row_spans(scores: list[ScoreRow], ratings: list[RatingRow]) -> dict[str, set[tuple[int, int]]]:
    """Each report's CQC table cells (scores, overall ratings) as (start, end) spans."""
    out: dict[str, set[tuple[int, int]]] = {}
    cells: list[ScoreRow | RatingRow] = [*scores, *(x for x in ratings
                                                   if x.family == CQC_FAMILY)]
    for r in cells:
        out.setdefault(r.report_id, set()).add((r.start, r.end))
    return out


def label_start(text: str, start: int, end: int, cells: set[tuple[int, int]],
                max_lines: int, max_words: int = 8) -> int:
    """Where a CQC table cell's quote starts once the label lines printed just above it are
    included ("Assessing needs / Indicative score: / 2 - Evidence shows some shortfalls";
    "Local authority rating and score / Westminster City Council / Good Score: 75"): the cell
    alone does not say what the score is of. Up to ``max_lines`` non-blank lines, each short
    and not a sentence, stopping at another cell (a list of scores is not one cell's label).
    A cell that is itself a sentence names its subject and stays as it is."""
    if _SENTENCE_END.search(text[start:end]):
        return start
    at, taken = start, 0
    line_end = text.rfind("\n", 0, start)  # the end of the line above the cell
    while taken < max_lines and line_end > 0:
        line_start = text.rfind("\n", 0, line_end) + 1
        line = text[line_start:line_end]
        if line.strip():
            if (len(line.split()) > max_words or _SENTENCE_END.search(line)
                    or any(s < line_end and e > line_start for s, e in cells)):
                break
            at, taken = line_start + len(line) - len(line.lstrip()), taken + 1
        line_end = line_start - 1
    return at


def best_per_key(rows: list[ScoreRow]) -> dict[tuple[str, str], list[ScoreRow]]:
    """Group rows by (council, statement); the first row is the one to state."""
    out: dict[tuple[str, str], list[ScoreRow]] = {}
    for r in rows:
        out.setdefault((r.council_key, r.statement), []).append(r)
    return out


@dataclass(frozen=True)
class JudgementRow:
    """One graded judgement of any inspection report (Ofsted grades, area SEND outcomes, CQC
    overall ratings and quality-statement scores), with the span of the line that states it."""

    inspectorate: str
    family: str
    council_key: str
    council: str
    organisation: str
    judgement: str
    grade: str
    date: str | None
    report_id: str
    start: int
    end: int
    source: str

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "inspectorate", "family", "council", "organisation", "judgement", "grade", "date",
            "report_id", "start", "end", "source")}


def judgement_table(reports: list[ReportRow], scores: list[ScoreRow],
                    ratings: list[RatingRow]) -> list[JudgementRow]:
    """Every family's judgements in one table: profile-read judgements, then the CQC scores
    and overall ratings (the score and rating tables, restated)."""
    rows: list[JudgementRow] = []
    for r in reports:
        m = r.metadata
        if not m.get("family"):
            continue
        base = _judgement_base(r)
        named = {j[0] for j in m.get("judgements") or []}
        for name, grade, s, e in m.get("judgements") or []:
            rows.append(JudgementRow(judgement=name, grade=grade, start=s, end=e, **base))
        if m.get("overall_rating") and m.get("overall_rating_span"):
            s, e = m["overall_rating_span"]
            label = "Overall effectiveness" if m["family"] in ("ofsted-ilacs", "ofsted-sif") \
                else "Inspection outcome"
            if label not in named:
                rows.append(JudgementRow(judgement=label, grade=m["overall_rating"], start=s,
                                         end=e, **base))
    for x in scores:
        rows.append(JudgementRow("CQC", CQC_FAMILY, x.council_key, x.council, x.council,
                                 x.statement, f"{x.score} ({x.label})", x.published, x.report_id,
                                 x.start, x.end, x.source))
    for y in ratings:
        # Another family's overall grade came with its report's judgements above; a CQC page
        # stating its rating beside its scores keeps both (Ealing's, Staffordshire's,
        # Westminster's overall ratings were left out of `reportqa judgements`).
        if y.family != CQC_FAMILY and any(j.report_id == y.report_id for j in rows):
            continue
        rows.append(JudgementRow("CQC", CQC_FAMILY, y.council_key, y.council, y.council,
                                 "Overall rating", y.rating, y.published, y.report_id, y.start,
                                 y.end, y.source))
    return rows


def _judgement_base(r: ReportRow) -> dict[str, Any]:
    m = r.metadata
    return dict(inspectorate=m.get("inspectorate") or "", family=m.get("family") or "",
                council_key=council_key(m.get("council")) or "", council=m.get("council") or "",
                organisation=m.get("organisation") or m.get("council") or "",
                date=m.get("inspection_dates") or m.get("published"), report_id=r.report_id,
                source=r.source)
