"""Versions of the same report page. Public: `resolve_versions`.

Two pages are the same page when council, page kind and quality statement agree and most of
their sentences do. Among them:
- a later assessment (a newer publication date) supersedes an older one: the newest is the
  default, older ones stay queryable by naming their year;
- the same page from two sources (full page vs excerpt, HTML vs text: most sentences of the
  shorter one occur in the longer one) is counted once: the longer text is canonical, and of
  two as long (an edited copy), the one added last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ingest.index import ReportRow
from ingest.structure import council_key
from reportqa.text import sentence_spans

SAME_PAGE_OVERLAP = 0.6  # share of the shorter page's sentences found in the longer one


@dataclass(frozen=True)
class Version:
    report_id: str
    status: str  # current | superseded | duplicate
    of: str | None = None  # the report that supersedes / duplicates this one
    published: str | None = None


def resolve_versions(reports: list[ReportRow], text_of: Callable[[str], str]) -> dict[str, Version]:
    groups: dict[tuple[str, str, str], list[ReportRow]] = {}
    for r in reports:
        m = r.metadata
        key = council_key(m.get("council"))
        # A page of no known kind is grouped too: two documents of a council are the same page
        # only when most sentences agree (`_same_page`), so an edited copy is found.
        if not key:
            continue
        groups.setdefault((key, m.get("page_kind") or "", m.get("quality_statement") or ""),
                          []).append(r)
    out: dict[str, Version] = {r.report_id: Version(r.report_id, "current",
                                                    published=r.metadata.get("published"))
                               for r in reports}
    for (_, kind, _), rows in groups.items():
        if len(rows) > 1:
            # Pages of no known kind are never one assessment in two years: only copies.
            _resolve_group(rows, text_of, out, dated=kind not in ("", "other"))
    return out


def _resolve_group(rows: list[ReportRow], text_of: Callable[[str], str],
                   out: dict[str, Version], dated: bool = True) -> None:
    sents = {r.report_id: _sentences(text_of(r.report_id)) for r in rows}
    # Longest first: among copies of the same page the most complete one is canonical; of
    # copies as long, the one added last (an edited copy: a corrected figure, the same
    # sentences otherwise) replaces the one it edits.
    rows = sorted(rows, key=lambda r: (-len(sents[r.report_id]), -r.added_at, r.report_id))
    canon: list[ReportRow] = []
    for r in rows:
        twin = next((c for c in canon if _same_page(sents[r.report_id], sents[c.report_id])
                     and _same_date(r, c)), None)
        if twin is not None:
            out[r.report_id] = Version(r.report_id, "duplicate", twin.report_id,
                                       r.metadata.get("published"))
        else:
            canon.append(r)
    if not dated:
        return
    published = [c for c in canon if c.metadata.get("published")]
    if len(published) > 1:
        newest = max(published, key=lambda c: (c.metadata["published"], c.report_id))
        for c in published:
            if c.report_id != newest.report_id and c.metadata["published"] < newest.metadata["published"]:
                out[c.report_id] = Version(c.report_id, "superseded", newest.report_id,
                                           c.metadata.get("published"))


def _sentences(text: str) -> set[str]:
    return {" ".join(text[s:e].split()).lower() for s, e in sentence_spans(text)
            if len(text[s:e].split()) >= 6}


def _same_page(a: set[str], b: set[str]) -> bool:
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    if not small:
        return False
    return len(small & big) / len(small) >= SAME_PAGE_OVERLAP


def _same_date(a: ReportRow, b: ReportRow) -> bool:
    da, db = a.metadata.get("published"), b.metadata.get("published")
    return not da or not db or da == db
