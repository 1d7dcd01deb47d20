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
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportqa.records import Answer, Citation, sha256
from reportqa.settings import Settings

UPLOAD_TYPES = ("txt", "md", "html", "htm", "pdf")
UPLOAD_DIR = "uploads"
NOT_IN_REPORTS_LABEL = "Not in the indexed reports"
MAX_NAME_CHARS = 120

# (fraction 0..1, message) -> None
UIProgress = Callable[[float, str], None]

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=\"'^%@,;?/])")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
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
    return f'<div class="{cls}" data-abstained="{str(ans.abstained).lower()}" style="{style}">{body}</div>'


def source_label(c: Citation) -> str:
    """Expander label (Markdown!) for one source: [n] council · statement · score · section
    · page (PDFs)."""
    parts = [c.council or "Unknown council", c.quality_statement or _kind(c.page_kind)]
    if c.score is not None:
        parts.append(f"score {c.score}/4")
    if c.section:
        parts.append(c.section)
    if c.page is not None:
        parts.append(f"p. {c.page}" + (f"–{c.page_end}" if c.page_end else ""))
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


def report_year(metadata: dict[str, Any]) -> str | None:
    """The year a report is about: its inspection dates' last year, else its publication."""
    years = re.findall(r"\b(20\d\d)\b", metadata.get("inspection_dates") or "")
    return years[-1] if years else (metadata.get("published") or "")[:4] or None


def index_summary(rows: Iterable[Any]) -> str:
    """"66 reports: 36 CQC local authority assessments, 13 Ofsted ... (ILACS), ..."."""
    counts: dict[str, int] = {}
    n = 0
    for r in rows:
        n += 1
        name = family_name(r.metadata.get("family"))
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
    p = c.passage or ""
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
               f"{esc(c.quote)}</mark></div>{pre}{esc(p)}</div>")
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
                    "family": family_name(j.get("family")),
                    "quality statement": j.get("quality_statement") or "",
                    "score": j.get("score"), "chunks": j.get("chunks"), "id": j.get("id")})
    out.sort(key=lambda d: (d["council"], d["page kind"], d["quality statement"], d["id"]))
    return out


# --- uploads ---------------------------------------------------------------------------------

@dataclass
class FileResult:
    name: str  # as the user gave it (display only; never used as a path)
    status: str  # added | updated | unchanged | failed
    message: str
    saved_as: str | None = None
    report_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def sanitize_filename(name: str) -> str:
    """Basename only, characters outside [A-Za-z0-9._-] -> '_', extension kept.

    Raises ValueError for empty names (nothing left but dots or spaces)."""
    base = (name or "").replace("\\", "/").split("/")[-1].strip()
    if not base.strip(". "):
        raise ValueError("the file has no usable name; rename it (e.g. council-report.txt) "
                         "and upload it again")
    base = _UNSAFE_NAME_CHARS.sub("_", base).lstrip(".")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    if not re.search(r"[A-Za-z0-9]", stem):
        stem = "upload"  # e.g. a name written only in non-Latin letters
    ext = ext[:10]
    stem = stem[: MAX_NAME_CHARS - len(ext) - 1]
    return f"{stem}.{ext}" if ext else stem


def upload_path(settings: Settings, data: bytes, safe_name: str) -> Path:
    """index_dir/uploads/<sha256(content)[:16]>/<safe name>; checked to stay inside uploads/."""
    index = Path(settings.index_dir).resolve()
    root = (index / UPLOAD_DIR).resolve()
    dest = (root / sha256(data)[:16] / safe_name).resolve()
    # resolve() follows links: an uploads/ dir, hash dir or file that is a symbolic link out of
    # the index is refused, never written through.
    if root.parent != index or dest.parent.parent != root:
        raise ValueError("unsafe file name or upload location (a symbolic link out of the "
                         "index folder?); nothing was written")
    return dest


def save_and_ingest(files: Sequence[tuple[str, bytes]], settings: Settings,
                    progress: UIProgress | None = None, embedder: Any = None) -> list[FileResult]:
    """Write each uploaded file under the index dir and ingest it; one FileResult per file.

    Every problem (bad name, unsupported type, too large, empty, unparseable) is reported on
    that file's result; the others still go in."""
    from ingest.pipeline import ingest
    from reportqa.errors import ReportQAError

    prog = progress or (lambda *_: None)
    limit = settings.max_file_mb * 1048576
    n = max(1, len(files))
    results: list[FileResult] = []
    for i, (name, data) in enumerate(files):
        shown = name or "(no name)"
        prog(i / n, f"{shown}: checking")
        try:
            safe = sanitize_filename(name)
        except ValueError as exc:
            results.append(FileResult(shown, "failed", str(exc)))
            continue
        ext = Path(safe).suffix.lower().lstrip(".")
        if ext not in UPLOAD_TYPES:
            kind = f".{ext}" if ext else "(none)"
            results.append(FileResult(
                shown, "failed", f"unsupported file type '{kind}'; upload one of: "
                + ", ".join("." + t for t in UPLOAD_TYPES)))
            continue
        if len(data) > limit:
            results.append(FileResult(
                shown, "failed", f"the file is {len(data) / 1048576:.1f} MB, over the "
                f"{settings.max_file_mb:g} MB upload limit; split it into smaller files"))
            continue
        if not data.strip():
            results.append(FileResult(shown, "failed", "the file is empty; nothing to index"))
            continue
        try:
            dest = upload_path(settings, data, safe)
        except ValueError as exc:
            results.append(FileResult(shown, "failed", str(exc)))
            continue
        created = not dest.exists()
        dest.parent.mkdir(parents=True, exist_ok=True)
        if created:
            dest.write_bytes(data)

        def step(done: int, total: int, msg: str, i: int = i, shown: str = shown) -> None:
            prog((i + (done / total if total else 1.0)) / n, f"{shown}: embedding ({msg})")

        try:
            summary = ingest([dest], settings, embedder=embedder, progress=step)
        except ReportQAError as exc:
            summary = None
            results.append(FileResult(shown, "failed", str(exc)))
        if summary is not None:
            results.append(_result(shown, dest, summary))
        if not results[-1].ok and created:
            _discard(dest)
    prog(1.0, "done")
    return results


def _result(shown: str, dest: Path, summary: Any) -> FileResult:
    if summary.failed:
        reason = "; ".join(r for _p, r in summary.failed)
        return FileResult(shown, "failed", reason)
    if summary.added:
        return FileResult(shown, "added", f"indexed as {', '.join(summary.added)}", str(dest),
                          list(summary.added))
    if summary.updated:
        return FileResult(shown, "updated", f"updated {', '.join(summary.updated)}", str(dest),
                          list(summary.updated))
    return FileResult(shown, "unchanged",
                      f"already indexed as {', '.join(summary.unchanged) or 'an existing report'}",
                      str(dest), list(summary.unchanged))


def _discard(dest: Path) -> None:
    try:
        dest.unlink(missing_ok=True)
        if dest.parent.exists() and not any(dest.parent.iterdir()):
            shutil.rmtree(dest.parent, ignore_errors=True)
    except OSError:
        pass


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
    from reportqa.embed import get_embedder

    prog = progress or (lambda *_: None)
    st: dict[str, Any] = {"done": 0, "total": None, "shown": 0.0}

    def show(frac: float, msg: str) -> None:
        st["shown"] = max(st["shown"], min(1.0, max(0.0, frac)))
        prog(st["shown"], msg)

    def on_group(done: int, total: int, _msg: str) -> None:  # from ingest, after each batch
        st["done"], st["total"] = done, total
        show(done / total if total else 1.0, f"Indexed {done}/{total} passages")

    emb = embedder or get_embedder(settings.embedder, settings.batch_size)
    marker = Path(settings.index_dir) / CORPUS_PENDING
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(settings.corpus_dir), encoding="utf-8")
    prog(0.0, "Reading the bundled reports and loading the embedding model")
    summary = ingest([settings.corpus_dir], settings, embedder=emb, progress=on_group)
    marker.unlink(missing_ok=True)
    show(1.0, "Indexed the bundled reports")
    return summary
