"""Pure helpers for the Streamlit front end (no Streamlit import, so they unit-test directly).

Safety rule: every piece of report text, file name or message that reaches the page goes
through ``html.escape`` (for HTML we render) or ``md_escape`` (for the few places Streamlit
interprets Markdown: labels, alerts, progress text). Nothing from a report is ever rendered as
HTML or Markdown of its own.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

# Re-exported: the app and its tests import the upload helpers from here.
from ingest.structure import inspectorate_of
from ingest.upload import (  # noqa: F401
    MAX_NAME_CHARS,
    UPLOAD_DIR,
    UPLOAD_TYPES,
    FileResult,
    remove_upload,
    sanitize_filename,
    save_and_ingest,
    upload_path,
)
from reportqa.records import Answer, Citation
from reportqa.settings import Settings
from reportqa.text import as_printed

NOT_IN_REPORTS_LABEL = "Not in the indexed reports"

# (fraction 0..1, message) -> None
UIProgress = Callable[[float, str], None]

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=\"'^%@,;?/])")
_MARKER = re.compile(r"\[(\d{1,3})\]")


# --- escaping --------------------------------------------------------------------------------

def esc(text: object) -> str:
    """HTML-escape anything (quotes too, so the result is safe inside attributes)."""
    return html.escape("" if text is None else str(text), quote=True)


def md_escape(text: object) -> str:
    """Make text literal in Streamlit Markdown: whitespace collapsed (no block syntax) and every
    ASCII punctuation character that Markdown, HTML, LaTeX ($) or directives (:) could use
    backslash-escaped."""
    flat = " ".join(("" if text is None else str(text)).split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def safe_url(url: str | None) -> str | None:
    """The URL if it is plain http(s), else None (no javascript:, data:, file paths...)."""
    u = (url or "").strip()
    return u if re.match(r"^https?://", u, re.I) and not re.search(r"[\s<>\"']", u) else None


# --- rendering -------------------------------------------------------------------------------

def answer_html(ans: Answer) -> str:
    """The answer text, escaped, with its [n] citation markers as small superscripts."""
    body = _MARKER.sub(r'<sup class="rq-marker" style="color:#1c64b4;font-weight:600">[\1]</sup>',
                       esc(ans.text))
    if ans.abstained:
        style = ("border-left:4px solid #d97706;background:#fff7e6;color:#5c3b00;"
                 "padding:0.6rem 0.9rem;border-radius:0.4rem;font-style:italic")
        cls = "rq-answer rq-abstained"
    else:
        style = "font-size:1.05rem;line-height:1.55"
        cls = "rq-answer"
    # A word longer than the column (a pasted URL) wraps rather than runs past the bubble.
    style += ";overflow-wrap:anywhere"
    return f'<div class="{cls}" data-abstained="{str(ans.abstained).lower()}" style="{style}">{body}</div>'


def question_html(question: str) -> str:
    """The question as typed, escaped; a word longer than the column wraps."""
    return f'<div class="rq-question" style="overflow-wrap:anywhere">{esc(question)}</div>'


def source_label(c: Citation) -> str:
    """Expander label (Markdown!) for one source: [n] council · statement · score · section
    · page (PDFs)."""
    parts = [c.council or "Unknown council", c.quality_statement or _kind(c.page_kind)]
    if c.score is not None:
        parts.append(f"score {c.score}/4")
    if c.section:
        parts.append(c.section)
    if c.pages:
        parts.append(f"p. {c.pages}")
    return f"\\[{c.n}\\] " + " · ".join(md_escape(p) for p in parts if p)


def _kind(kind: str | None) -> str:
    return {"overall_summary": "Overall summary", "about": "About the council",
            "press_release": "Press release", "quality_statement": "Quality statement",
            "inspection_report": "Inspection report", "visit_letter": "Visit letter"}.get(
        kind or "", "")


# Report families as a reader names them (the profile files' own titles are longer).
FAMILY_NAMES = {None: "CQC local authority assessments", "cqc-la-assessment":
                "CQC local authority assessments", "ofsted-ilacs": "Ofsted children's services "
                "inspections (ILACS)", "ofsted-sif": "Ofsted single inspection framework reports",
                "ofsted-area-send": "Ofsted/CQC area SEND inspections",
                "ofsted-visit-letter": "Ofsted focused and monitoring visits",
                "cqc-provider": "CQC provider inspections"}


def family_name(family: str | None) -> str:
    return FAMILY_NAMES.get(family, family or "Other reports")


def report_family(metadata: dict[str, Any]) -> str:
    """The family a report is shown under. A CQC local authority assessment page carries no
    family of its own but a page kind; a file with neither (an uploaded note) is not one,
    whatever its format (`inspectorate_of`, the rule questions naming CQC are read by)."""
    if not metadata.get("family") and inspectorate_of(metadata) is None:
        return "Other reports"
    return family_name(metadata.get("family"))


def report_year(metadata: dict[str, Any]) -> str | None:
    """The year a report is about: its inspection dates' last year, else its publication."""
    years = re.findall(r"\b(20\d\d)\b", metadata.get("inspection_dates") or "")
    return years[-1] if years else (metadata.get("published") or "")[:4] or None


def report_years(rows: Iterable[Any]) -> dict[str, str | None]:
    """Report id -> its year (`report_year`). A page with no date of its own (most CQC
    quality-statement pages) takes its council's other pages' year in the same family, when
    they agree on one: filtered to 2023, Birmingham's safeguarding page was left out and the
    answer said the reports don't state its score."""
    rows = list(rows)
    own = {r.report_id: report_year(r.metadata) for r in rows}
    group: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        year = own[r.report_id]
        if year and r.metadata.get("council"):
            group.setdefault((r.metadata["council"], report_family(r.metadata)), set()).add(year)
    out: dict[str, str | None] = {}
    for r in rows:
        years = group.get((r.metadata.get("council") or "", report_family(r.metadata)), set())
        out[r.report_id] = own[r.report_id] or (next(iter(years)) if len(years) == 1 else None)
    return out


def index_summary(rows: Iterable[Any]) -> str:
    """"66 reports: 36 CQC local authority assessments, 13 Ofsted ... (ILACS), ..."."""
    counts: dict[str, int] = {}
    n = 0
    for r in rows:
        n += 1
        name = report_family(r.metadata)
        counts[name] = counts.get(name, 0) + 1
    parts = [f"{k} ({v})" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
    return f"{n} reports indexed: " + "; ".join(parts) if n else "No reports indexed yet."


def quote_span(c: Citation) -> tuple[int, int] | None:
    """Offsets of the quoted sentence within ``c.passage``, or None when it lies outside it."""
    s, e = c.start - c.passage_start, c.end - c.passage_start
    if 0 <= s < e <= len(c.passage):
        return s, e
    return None


def page_png(path: str, page: int, width_px: int = 900) -> bytes | None:
    """Page ``page`` (1-based) of the PDF at ``path`` as a PNG, rendered by PDFium; None when
    the file is gone, is not a PDF or has no such page (the text passage is still shown)."""
    try:
        import io

        import pypdfium2 as pdfium

        doc = pdfium.PdfDocument(path)
        try:
            if not 1 <= page <= len(doc):
                return None
            pg = doc[page - 1]
            image = pg.render(scale=width_px / max(1.0, pg.get_width())).to_pil()
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            return buf.getvalue()
        finally:
            doc.close()
    except Exception:  # a moved, changed or unreadable file: no picture, never a crash
        return None


def passage_html(c: Citation) -> str:
    """The passage with the quoted sentence in <mark>, and a link to the source page.

    Built only from ``html.escape``d pieces; the link is emitted only for http(s) URLs."""
    # As printed (one character for one, so the quote's span in the passage holds).
    p = as_printed(c.passage or "")
    span = quote_span(c)
    pre = ('<div class="rq-passage" style="white-space:pre-wrap;line-height:1.5;'
           'font-size:0.92rem">')
    mark_style = "background:#ffe066;color:inherit;padding:0 2px;border-radius:2px"
    if span:
        s, e = span
        body = (f"{esc(p[:s])}<mark class=\"rq-quote\" style=\"{mark_style}\">{esc(p[s:e])}</mark>"
                f"{esc(p[e:])}")
        out = pre + body + "</div>"
    else:
        # The quote continues past this chunk (e.g. the comparison sentence that follows a
        # figure): show it highlighted on its own, then the passage for context.
        out = (f'<div style="margin-bottom:0.5rem"><mark class="rq-quote" style="{mark_style}">'
               f"{esc(as_printed(c.quote))}</mark></div>{pre}{esc(p)}</div>")
    url = safe_url(c.source)
    where = f"characters {c.start}\u2013{c.end}"
    if url:
        link = (f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer nofollow">'
                f"{esc(url)}</a>")
    else:
        link = f"<span>{esc(Path(c.source).name if c.source else 'uploaded file')}</span>"
    return (f'<div class="rq-source" data-n="{c.n}">{out}<div style="margin-top:0.5rem;'
            f'font-size:0.8rem;color:#555">Source: {link} ({esc(where)})</div></div>')


def csv_bytes(ans: Answer) -> bytes:
    """The evidence CSV (same columns as `reportqa ask --csv`)."""
    from ui.render import CSV_FIELDS, csv_rows

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    w.writeheader()
    w.writerows(csv_rows(ans))
    return buf.getvalue().encode("utf-8")


def report_rows(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """ReportRow list -> rows for the sidebar's reports browser."""
    out = []
    for r in rows:
        j = r.to_json()
        out.append({"council": j.get("council") or "", "page kind": j.get("page_kind") or "",
                    "family": report_family(r.metadata),
                    "quality statement": j.get("quality_statement") or "",
                    "score": j.get("score"), "chunks": j.get("chunks"), "id": j.get("id")})
    out.sort(key=lambda d: (d["council"], d["page kind"], d["quality statement"], d["id"]))
    return out


# --- uploads (the logic lives in ingest/upload.py, shared with the HTTP API) ----------------

# --- first start -----------------------------------------------------------------------------

CORPUS_PENDING = "corpus-ingest.pending"


def needs_corpus(settings: Settings, embedder: Any) -> bool:
    """True when the bundled corpus should be ingested: the index is missing or holds no
    chunks, or an earlier first-start ingest was interrupted (its marker is still there)."""
    from ingest.index import IndexStore

    index = Path(settings.index_dir)
    if not (index / "manifest.sqlite3").exists() or (index / CORPUS_PENDING).exists():
        return True
    store = IndexStore(settings, embedder.name, embedder.dim, create=False)
    try:
        return store.counts()[1] == 0
    finally:
        store.close()


def ingest_corpus(settings: Settings, progress: UIProgress | None = None,
                  embedder: Any = None) -> Any:
    """Ingest ``settings.corpus_dir`` (first start), feeding a UI progress callback (0..1,
    never going backwards).

    A marker file stays in the index dir until the ingest has finished, so a first start that
    is interrupted (browser closed, server stopped) resumes on the next start; ingest is
    idempotent, so what was already written is skipped."""
    from ingest.pipeline import ingest
    from reportqa.embed import embedder_for

    prog = progress or (lambda *_: None)
    st: dict[str, Any] = {"done": 0, "total": None, "shown": 0.0}

    def show(frac: float, msg: str) -> None:
        st["shown"] = max(st["shown"], min(1.0, max(0.0, frac)))
        prog(st["shown"], msg)

    def on_group(done: int, total: int, _msg: str) -> None:  # from ingest, after each batch
        st["done"], st["total"] = done, total
        show(done / total if total else 1.0, f"Indexed {done}/{total} passages")

    emb = embedder or embedder_for(settings)
    marker = Path(settings.index_dir) / CORPUS_PENDING
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(settings.corpus_dir), encoding="utf-8")
    prog(0.0, "Reading the bundled reports and loading the embedding model")
    summary = ingest([settings.corpus_dir], settings, embedder=emb, progress=on_group)
    marker.unlink(missing_ok=True)
    show(1.0, "Indexed the bundled reports")
    return summary
