"""The rows behind `reportqa reports|scores|judgements --json` and the HTTP API's GET /reports,
/scores and /judgements. Public: `report_rows`, `score_rows`, `judgement_rows`, `version_notes`, `noted`.

One builder per listing, so the command line and the API cannot drift apart. Every quote is
cut from the stored report text by the table's own offsets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from ingest.index import IndexStore
from ingest.structure import council_key, inspectorate_of
from ingest.upload import FileResult
from rag.engine import Engine
from rag.query import resolve_council
from rag.versions import resolve_versions


def report_rows(store: IndexStore) -> list[dict[str, Any]]:
    """Every indexed report with its version status (current, superseded, duplicate)."""
    reports = store.reports()
    versions = resolve_versions(reports, store.report_text)
    return [{**r.to_json(), "version": versions[r.report_id].status,
             "version_of": versions[r.report_id].of} for r in reports]


def version_notes(store: IndexStore, report_ids: Iterable[str]) -> dict[str, str]:
    """Report id -> what adding it did to the versions of its page, for whoever added it: a
    copy that answers will not use, a copy that now stands in for an older one, an older
    assessment. Ids whose page has no other version are left out."""
    ids = set(report_ids)
    if not ids:
        return {}
    versions = resolve_versions(store.reports(), store.report_text)
    notes: dict[str, str] = {}
    for rid, v in sorted(versions.items()):
        if rid in ids and v.status == "duplicate":
            notes[rid] = (f"{rid} is a copy of the page {v.of} holds, and answers use {v.of}; "
                          f"to use {rid} instead: reportqa remove {v.of}")
        elif rid in ids and v.status == "superseded":
            notes[rid] = (f"{rid} is an older assessment than {v.of}: answers use {v.of} "
                          "unless a question names the older one's year")
        elif v.of in ids and rid not in ids:
            # One new copy may stand in for several older ones: a note for each.
            note = (f"{v.of} now stands in for {rid}, "
                    + ("a copy of the same page" if v.status == "duplicate"
                       else "an older assessment") + f": answers use {v.of}")
            notes[v.of] = f"{notes[v.of]}; {note}" if v.of in notes else note
    return notes


def noted(results: list[FileResult], store: IndexStore) -> list[FileResult]:
    """Upload results with what each file did to the versions of its page said, and a file
    in which no report was recognised (no family, council or page kind) said to be one."""
    added = [i for r in results if r.status in ("added", "updated") for i in r.report_ids]
    notes = version_notes(store, added)
    meta = {r.report_id: r.metadata for r in store.reports() if r.report_id in added}
    for rid, m in meta.items():
        # No inspectorate's report (`inspectorate_of`, as "Other reports" in the app) and
        # no council named.
        if inspectorate_of(m) is None and not m.get("council"):
            note = (f"no inspection report was recognised in {rid} (no report family, council "
                    f"or CQC page): it is searched like the reports; to take it out: "
                    f"reportqa remove {rid}")
            notes[rid] = f"{notes[rid]}; {note}" if rid in notes else note
    return [replace(r, message=r.message + "".join(f". Note: {notes[i]}" for i in r.report_ids
                                                   if i in notes))
            for r in results]


def _of_council(eng: Engine, council: str | None) -> Callable[[str | None], bool]:
    """Whether a row's council is the one asked for ("bury", "Stockton"), or every row when
    none is; an unknown council raises QuestionError naming the indexed ones."""
    if not council:
        return lambda _name: True
    want = resolve_council(council, eng.derived().councils)
    return lambda name: council_key(name) == want


def score_rows(eng: Engine, council: str | None = None) -> list[dict[str, Any]]:
    """Council x quality statement -> score, then each overall rating, with its quote
    (``council``: only that council's)."""
    d = eng.derived()
    keep = _of_council(eng, council)
    rows = []
    for r in d.scores:
        if not keep(r.council):
            continue
        text = eng.retriever.report_text(r.report_id)
        rows.append({"council": r.council, "quality_statement": r.statement, "theme": r.theme,
                     "score": r.score, "label": r.label, "indicative": r.indicative,
                     "published": r.published, "page_kind": r.page_kind,
                     "report_id": r.report_id, "quote": text[r.start : r.end],
                     "start": r.start, "end": r.end, "source": r.source})
    for x in d.ratings:
        if not keep(x.council):
            continue
        text = eng.retriever.report_text(x.report_id)
        rows.append({"council": x.council, "quality_statement": "(overall rating)", "theme": "",
                     "score": x.percentage, "label": x.rating, "indicative": x.indicative,
                     "published": x.published, "page_kind": x.page_kind,
                     "report_id": x.report_id, "quote": text[x.start : x.end],
                     "start": x.start, "end": x.end, "source": x.source})
    return rows


def judgement_rows(eng: Engine, council: str | None = None) -> list[dict[str, Any]]:
    """Every graded judgement of every report family, with its quote and PDF page
    (``council``: only that council's)."""
    keep = _of_council(eng, council)
    rows = []
    for j in eng.derived().judgements:
        if not keep(j.council):
            continue
        row = eng.retriever.report(j.report_id)
        page, _ = row.pages(j.start, j.end) if row else (None, None)
        text = eng.retriever.report_text(j.report_id)
        rows.append({**j.to_json(), "quote": text[j.start:j.end], "page": page})
    return rows
