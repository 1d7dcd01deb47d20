"""Typed records passed between stages: Report -> Chunk -> Hit -> Citation -> Answer.

All are frozen so a stage can never mutate what an earlier stage produced. Offsets are
character offsets into ``Report.text`` so every citation can be highlighted exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from typing import Any

PAGE_KINDS = ("quality_statement", "overall_summary", "about", "press_release", "other")


# (report id, start, end): a passage of one report's stored text, as citations and candidates
# locate their quotes.
Span = tuple[str, int, int]


def overlap(a: Span, b: Span) -> bool:
    """Do two passages share a character of the same report's text?"""
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


def sha256(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Section:
    title: str
    start: int  # offset of the section body (after the heading line)
    end: int


@dataclass(frozen=True)
class StatementScore:
    """One quality-statement score as a page states it, with the span of the line that says so."""

    statement: str
    theme: str
    score: int
    label: str | None
    start: int
    end: int


@dataclass(frozen=True)
class Judgement:
    """One graded judgement a report states ("Overall effectiveness: Good"), with its span."""

    name: str
    grade: str
    start: int
    end: int


@dataclass(frozen=True)
class Structure:
    """What a report's text says about itself (read by ingest/structure.py)."""

    title: str = ""
    council: str | None = None
    page_kind: str = "other"
    quality_statement: str | None = None
    theme: str | None = None
    score: int | None = None
    score_label: str | None = None
    score_span: tuple[int, int] | None = None
    overall_rating: str | None = None
    overall_rating_span: tuple[int, int] | None = None
    overall_percentage: int | None = None
    indicative: bool = False
    published: str | None = None  # ISO date
    sections: tuple[Section, ...] = ()
    statement_scores: tuple[StatementScore, ...] = ()
    # Any inspection report (ingest/profiles): its family, the organisation as printed, the
    # inspection dates, graded judgements, and where each PDF page starts in the text.
    family: str | None = None
    inspectorate: str | None = None
    organisation: str | None = None
    inspection_dates: str | None = None
    judgements: tuple[Judgement, ...] = ()
    page_starts: tuple[int, ...] = ()

    def metadata(self) -> dict[str, Any]:
        """Structure as plain JSON-able data (for the manifest and `reportqa reports`)."""
        return {
            "title": self.title,
            "council": self.council,
            "page_kind": self.page_kind,
            "quality_statement": self.quality_statement,
            "theme": self.theme,
            "score": self.score,
            "score_label": self.score_label,
            "score_span": list(self.score_span) if self.score_span else None,
            "overall_rating": self.overall_rating,
            "overall_rating_span": (
                list(self.overall_rating_span) if self.overall_rating_span else None
            ),
            "overall_percentage": self.overall_percentage,
            "indicative": self.indicative,
            "published": self.published,
            "sections": [[s.title, s.start, s.end] for s in self.sections],
            "statement_scores": [
                [s.statement, s.theme, s.score, s.label, s.start, s.end]
                for s in self.statement_scores
            ],
            "family": self.family,
            "inspectorate": self.inspectorate,
            "organisation": self.organisation,
            "inspection_dates": self.inspection_dates,
            "judgements": [[j.name, j.grade, j.start, j.end] for j in self.judgements],
            "page_starts": list(self.page_starts),
        }


@dataclass(frozen=True, kw_only=True)
class Report(Structure):
    """A report page: its text, where it came from, and its structure."""

    report_id: str
    text: str
    source: str  # URL when known (SOURCES.tsv / HTML canonical link), else the file path
    path: str

    @classmethod
    def of(cls, structure: Structure, *, report_id: str, text: str, source: str,
           path: str) -> Report:
        read: dict[str, Any] = {f.name: getattr(structure, f.name) for f in fields(Structure)}
        return cls(report_id=report_id, text=text, source=source, path=path, **read)

    @property
    def content_hash(self) -> str:
        return sha256(self.text)


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    report_id: str
    text: str
    start: int
    end: int
    section: str | None = None
    council: str | None = None
    page_kind: str = "other"
    quality_statement: str | None = None
    theme: str | None = None
    score: int | None = None

    @staticmethod
    def make_id(content_hash: str, start: int, text: str) -> str:
        # Derived from content: the same report text always yields the same ids, so a
        # re-run after a crash upserts instead of duplicating.
        return sha256(f"{content_hash}:{start}:{text}")[:24]

    def header(self) -> str:
        """Context line prepended before embedding so the vector knows whose page it is."""
        parts = [p for p in (self.council, self.quality_statement, self.section) if p]
        return " | ".join(parts)


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    rank: int
    ranks: dict[str, int] = field(default_factory=dict, compare=False)  # per retriever


@dataclass(frozen=True)
class Citation:
    n: int
    report_id: str
    council: str | None
    page_kind: str | None
    quality_statement: str | None
    section: str | None
    score: int | None
    quote: str
    passage: str
    start: int
    end: int
    source: str
    passage_start: int = 0
    see_also: bool = False
    page: int | None = None  # PDF page of the quote's start (1-based); None for web pages
    page_end: int | None = None  # last page the quote runs onto, when it crosses a page break

    @property
    def span(self) -> Span:
        return (self.report_id, self.start, self.end)

    @property
    def pages(self) -> str:
        """The quote's page for people: "7", or "7-8" when it runs across a page break; ""
        for a web page, which has none."""
        if self.page is None:
            return ""
        if self.page_end is not None and self.page_end != self.page:
            return f"{self.page}-{self.page_end}"
        return str(self.page)

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "report_id": self.report_id,
            "council": self.council,
            "page_kind": self.page_kind,
            "quality_statement": self.quality_statement,
            "section": self.section,
            "score": self.score,
            "quote": self.quote,
            "passage": self.passage,
            # Where the passage starts in the report's text: quote offsets minus this locate
            # the quote inside the passage (a client highlighting it needs no search).
            "passage_start": self.passage_start,
            "start": self.start,
            "end": self.end,
            "source": self.source,
            "page": self.page,
            "page_end": self.page_end,
            # A closest passage shown beside "the reports don't say", not a quote of an answer.
            "see_also": self.see_also,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Citation:
        """A citation as ``to_json`` wrote it (a chat client sends earlier answers back)."""
        return cls(n=int(d["n"]), report_id=str(d["report_id"]), council=d.get("council"),
                   page_kind=d.get("page_kind"), quality_statement=d.get("quality_statement"),
                   section=d.get("section"), score=d.get("score"), quote=str(d.get("quote", "")),
                   passage=str(d.get("passage", "")), start=int(d["start"]), end=int(d["end"]),
                   source=str(d.get("source", "")), page=d.get("page"), page_end=d.get("page_end"),
                   passage_start=int(d.get("passage_start", 0)),
                   see_also=bool(d.get("see_also", False)))


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    answerer: str = "extractive"
    notes: tuple[str, ...] = ()
    confidence: float | None = None
    uncertain: bool = False  # the best passage is quoted, but it may not answer the question
    read_as: str = ""  # the question answered, when a chat follow-up was read in context

    @property
    def outcome(self) -> str:
        """answer | uncertain ("the closest passage may answer this") | not_found."""
        if self.abstained:
            return "not_found"
        return "uncertain" if self.uncertain else "answer"

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "read_as": self.read_as or self.question,
            "answer": self.text,
            "outcome": self.outcome,
            "abstained": self.abstained,
            "citations": [c.to_json() for c in self.citations],
            # What the reader should know beside the answer (a filter left out what the
            # question names; sentences dropped by the figure check).
            "notes": list(self.notes),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


@dataclass(frozen=True)
class Turn:
    """An earlier turn of a chat: what was typed, how it was read, and what its answer cited
    (follow-ups such as "which page is that on?" need the citations)."""

    question: str
    read_as: str = ""
    citations: tuple[Citation, ...] = ()
    # The passages shown as "see also" when the answer quoted none: "which page is that on?"
    # after "the reports don't say" asks about them.
    see_also: tuple[Citation, ...] = ()

    @classmethod
    def of(cls, ans: Answer) -> Turn:
        return cls(ans.question, ans.read_as or ans.question,
                   tuple(c for c in ans.citations if not c.see_also),
                   tuple(c for c in ans.citations if c.see_also))

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Turn:
        """A turn from ``Answer.to_json()`` output, or just {"question": ...}."""
        q = str(d["question"])
        cites = tuple(Citation.from_json(c) for c in d.get("citations") or ())
        # An abstained answer's citations are all "see also" passages, however marked.
        abstained = bool(d.get("abstained"))
        return cls(q, str(d.get("read_as") or q),
                   () if abstained else tuple(c for c in cites if not c.see_also),
                   cites if abstained else tuple(c for c in cites if c.see_also))
