"""Bad-input matrix: every input through the CLI (`reportqa ingest`, subprocess, hash embedder)
and through the UI upload path (`ui.components.save_and_ingest`), then the two indexes checked.

    .venv/bin/python benchmarks/bad_input_matrix.py [--keep DIR]

Prints one row per input: input, CLI outcome, UI outcome, message. Exit status 1 when any row
breaks its expectation or an index check fails. `tests/test_bad_input_matrix.py` runs the same
`run_matrix()` and asserts on the same data.

Outcomes: ``indexed`` (a report holding the expected text), ``duplicate`` (no error, its text is
already indexed under another name), ``failed`` (one clear line naming the file and the reason),
``n/a`` (the input cannot reach that path, e.g. a named pipe cannot be uploaded). Never a crash
or traceback. After the runs each index must hold exactly the expected reports: the content hash
of every expected text, and the same chunks as a clean ingest of only the good files.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ingest.parse import ParsedFile, normalise_text  # noqa: E402
from reportqa.records import sha256  # noqa: E402
from reportqa.settings import Settings  # noqa: E402

CORPUS = REPO / "corpus"
MAX_MB = 20.0  # the default REPORTQA_MAX_FILE_MB, set explicitly for both paths
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def good_text(tag: str, extra: str = "") -> str:
    """A small, distinct, valid report (its own council name, so no two are duplicates)."""
    return (f"{tag} Borough Council: local authority assessment\n\n"
            "Key findings for this quality statement\n"
            f"{tag} Borough Council supported unpaid carers with a respite service.{extra}\n"
            f"Inspectors found that people in {tag} could get advice quickly.\n")


# --- builders -------------------------------------------------------------------------------

def _pdf(lines: list[str], encrypt: tuple[str, str] | None = None) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    if encrypt:
        pdf.set_encryption(owner_password=encrypt[0], user_password=encrypt[1])
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for ln in lines:
        pdf.cell(0, 8, ln, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _image_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_fill_color(40, 40, 40)
    pdf.rect(20, 20, 120, 60, style="F")
    return bytes(pdf.output())


def _raw_pdf(objects: list[bytes]) -> bytes:
    """A minimal PDF with these objects (1 = catalog) and a correct xref table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, o in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + o + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))
    return out.getvalue()


def _flate_bomb(mb: int, unit: bytes, pages: int = 1) -> bytes:
    """``pages`` pages sharing one FlateDecode content stream of ``mb`` MB of ``unit``."""
    raw = unit * (mb * 1024 * 1024 // len(unit))
    comp = zlib.compress(raw, 9)
    kids = b" ".join(b"%d 0 R" % (6 + i) for i in range(pages))
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages, b"<< >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(comp) + comp + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    objs += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
             b"/Resources << /Font << /F1 5 0 R >> >> >>"] * pages
    return _raw_pdf(objs)


def _many_pages_pdf(n: int) -> bytes:
    from pypdf import PdfWriter

    w = PdfWriter()
    for _ in range(n):
        w.add_blank_page(72, 72)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def _deep_array_pdf(depth: int) -> bytes:
    stream = b"BT /F1 12 Tf 72 712 Td (Deep nesting test page) Tj ET"
    return _raw_pdf([b"<< /Type /Catalog /Pages 2 0 R /Deep 5 0 R >>",
                     b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                     b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
                     b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
                     b"[" * depth + b"]" * depth])


def _garbage(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(n))


# --- cases ----------------------------------------------------------------------------------

@dataclass
class Case:
    key: str  # short id, also the default file name stem
    label: str  # what the input is (table column)
    name: str  # file name in the CLI folder (None-like "" for explicit-only cases)
    data: bytes | None  # file content; None when a special builder makes it
    expect: str  # CLI: indexed | duplicate | failed | n/a
    reason: str = ""  # substring of the failure message (CLI and UI unless ui_reason)
    text: str | None = None  # exact stored text when indexed (None: check contains/excludes)
    contains: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    ui_name: str | None = None  # upload name (default: name)
    ui_expect: str | None = None  # default: expect
    ui_reason: str | None = None
    mode: str = "folder"  # folder | explicit (own CLI argument) | special
    special: str = ""  # builder key for mode special/explicit inputs

    @property
    def upload_name(self) -> str:
        return self.name if self.ui_name is None else self.ui_name


def cases() -> list[Case]:
    zw = ("Zeroshire Borough Council: local\u200b authority assessment\n\n"
          "Key findings for this quality\u00ad statement\n\ufeffZeroshire Borough Council "
          "supported\u200d unpaid carers\x07 with a respite\u2060 service.\x1b\n"
          "Inspectors found\x0b that people in Zeroshire could get advice quickly.\n")
    zw_clean = normalise_text(good_text("Zeroshire"))
    big_line = ("carers respite advice " * 50_000)  # ~1.1 MB, one line
    deep_html = ("<html><body>" + "<div>" * 10_000
                 + "<p>Deepnest Borough Council supported unpaid carers with respite.</p>"
                 + "</div>" * 10_000 + "</body></html>")
    huge_attr = ('<html><body><main><h1>Attrville Borough Council: local authority assessment'
                 '</h1><div data-blob="' + "A" * (5 * 1024 * 1024) + '"><p>Attrville Borough '
                 'Council supported unpaid carers with respite.</p></div></main></body></html>')
    scripts = ("<html><head><script>alert('head')</script><style>p{color:red}</style></head>"
               "<body><main><h1>Scriptford Borough Council: local authority assessment</h1>"
               "<script>document.write('INJECTED')</script><iframe src=\"https://evil.example\">"
               "IFRAMETEXT</iframe><p onclick=\"steal()\">Scriptford Borough Council supported "
               "unpaid carers with respite.</p><noscript>NOSCRIPTTEXT</noscript>"
               "<object data=\"x.swf\">OBJECTTEXT</object></main></body></html>")
    minified = ("<html><body><main>" + "".join(
        f"<p>Minitown paragraph {i} says unpaid carers used respite services.</p>"
        for i in range(3_000)) + "</main></body></html>")  # ~200 KB on one line
    entity = ('<!DOCTYPE html [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
              "<html><body><p>Entityham Borough Council supported unpaid carers &b;&b;.</p>"
              "</body></html>")
    md_html = ("# Mdscript Borough Council: local authority assessment\n\n"
               "<script>alert(1)</script> Mdscript Borough Council supported unpaid carers.\n")
    late_nul = good_text("Latenul") + ("Padding sentence about carers and respite.\n" * 250)
    late_nul_bytes = late_nul.encode() + b"\x00" + b"The end of the Latenul report.\n"
    return [
        Case("empty", "empty file", "empty.txt", b"", "failed", "empty"),
        Case("whitespace", "whitespace only (spaces, tabs, CRLF)", "whitespace.txt",
             b"  \t\r\n\n   \t\n", "failed", "empty"),
        Case("unicode-space", "only NBSP / em space / zero-width", "unicode-space.txt",
             "\u00a0\u2003\u200b\u00a0\n".encode(), "failed", "no readable words"),
        Case("garbage", "binary garbage with .txt", "garbage.txt", _garbage(4096, 7),
             "failed", "binary"),
        Case("random-pdf", "random bytes with .pdf", "random.pdf", _garbage(4096, 8),
             "failed", "not a PDF"),
        Case("pdf-header-junk", "'%PDF-' header then junk", "header-junk.pdf",
             b"%PDF-1.7\n" + _garbage(2048, 9), "failed", "not a readable PDF"),
        Case("truncated-pdf", "valid fpdf2 PDF cut in half", "truncated.pdf", None, "failed",
             "PDF", special="truncated"),
        Case("encrypted-pdf", "encrypted PDF (user password)", "locked.pdf",
             _pdf(["Lockham Borough Council found carers well supported."],
                  ("owner-pw", "user-pw")), "failed", "password-protected"),
        Case("owner-only-pdf", "encrypted PDF, empty user password", "owner-only.pdf",
             _pdf(["Ownerham Borough Council: local authority assessment",
                   "Ownerham Borough Council supported unpaid carers with respite."],
                  ("owner-pw", "")), "indexed",
             contains=("Ownerham Borough Council supported unpaid carers",)),
        Case("scanned-pdf", "PDF with no text layer", "scanned.pdf", _image_pdf(), "failed",
             "no text layer"),
        Case("zero-bomb-pdf", "PDF: 100 MB FlateDecode stream of zeros (100 KB file)",
             "zero-bomb.pdf", None, "failed", "safety limits", special="zero-bomb"),
        Case("text-bomb-pdf", "PDF: 70 MB of text operators x 50 pages (220 KB file)",
             "text-bomb.pdf", None, "failed", "safety limits", special="text-bomb"),
        Case("pages-pdf", "PDF with 2,500 pages", "pages.pdf", None, "failed",
             "pages (limit 2000)", special="pages"),
        # The 50,000-deep array sits in an object no page uses: PDFium reads the page's text
        # without recursing into it (pypdf alone hit its recursion limit and refused the file).
        Case("deep-pdf", "PDF with a 50,000-deep nested array", "deep-array.pdf", None,
             "indexed", text="Deep nesting test page", special="deep-pdf"),
        Case("html-scripts", "HTML with script/style/iframe/noscript/object/onclick",
             "scripts.html", scripts.encode(), "indexed",
             text="Scriptford Borough Council: local authority assessment\nScriptford Borough "
                  "Council supported unpaid carers with respite.",
             excludes=("alert", "INJECTED", "IFRAMETEXT", "NOSCRIPTTEXT", "OBJECTTEXT", "steal")),
        Case("html-huge-attr", "HTML with a 5 MB attribute", "huge-attr.html",
             huge_attr.encode(), "indexed",
             text="Attrville Borough Council: local authority assessment\nAttrville Borough "
                  "Council supported unpaid carers with respite.", excludes=("AAAA",)),
        Case("html-deep", "HTML with 10,000 nested divs", "deep.html", deep_html.encode(),
             "indexed", text="Deepnest Borough Council supported unpaid carers with respite."),
        Case("html-minified", "HTML page minified to one 200 KB line", "minified.html",
             minified.encode(), "indexed",
             contains=("Minitown paragraph 0 says", "Minitown paragraph 2999 says")),
        Case("html-entities", "HTML with a DOCTYPE entity-expansion bomb", "entities.html",
             entity.encode(), "indexed", contains=("Entityham Borough Council supported",),
             excludes=("aaaaaaaaaa",)),
        Case("latin1", "latin-1 text", "latin1.txt",
             "Café report: the résumé of Latinby's naïve carers plan.\n".encode("latin-1"),
             "failed", "not valid UTF-8"),
        Case("utf16-nobom", "UTF-16-LE without BOM", "utf16.txt",
             good_text("Sixteenby").encode("utf-16-le"), "failed", "binary data"),
        Case("utf16-bom", "UTF-16 with BOM", "utf16-bom.txt",
             good_text("Bomsixteen").encode("utf-16"), "failed", "binary data"),
        Case("mixed-enc", "UTF-8 then latin-1 bytes in one file", "mixed.txt",
             good_text("Mixford").encode() + "Déjà vu in Mixford.\n".encode("latin-1"),
             "failed", "not valid UTF-8 (byte 0xe9"),
        Case("overlong-utf8", "invalid UTF-8 (overlong '/' encoding)", "overlong.txt",
             good_text("Overlong").encode() + b"\xc0\xaf etc\n", "failed", "not valid UTF-8"),
        Case("zero-width", "zero-width + control chars in valid text", "zero-width.txt",
             zw.encode(), "indexed", text=zw_clean),
        Case("utf8-bom-crlf", "UTF-8 BOM, CRLF and lone CR line ends", "bom-crlf.txt",
             b"\xef\xbb\xbf" + good_text("Crlfton").replace("\n", "\r\n").encode()
             + b"Old Mac line.\rLast line.\r\n", "indexed",
             text=normalise_text(good_text("Crlfton")) + "\nOld Mac line.\nLast line."),
        Case("late-nul", "NUL byte after the first 8 KB", "late-nul.txt", late_nul_bytes,
             "indexed", text=normalise_text(late_nul + "The end of the Latenul report.")),
        Case("big-50mb", "50 MB text file (limit 20 MB)", "big.txt", None, "failed",
             "over the 20 MB", ui_reason="over the 20 MB upload limit", special="big"),
        Case("long-line", "one 1 MB line", "long-line.txt", big_line.encode(), "failed",
             "line over 20000 characters"),
        Case("shell-subst", "name `$(touch pwned).txt`", "$(touch pwned).txt",
             good_text("Shellsub").encode(), "indexed", text=normalise_text(good_text("Shellsub"))),
        Case("shell-rm", "name `; rm -rf x.txt`", "; rm -rf x.txt", good_text("Rmrf").encode(),
             "indexed", text=normalise_text(good_text("Rmrf"))),
        Case("quotes", "name with quotes and backtick", "it's \"quoted\" `x`.txt",
             good_text("Quoteby").encode(), "indexed", text=normalise_text(good_text("Quoteby"))),
        Case("newline-name", "name with a newline (empty file)", "line\nbreak.txt", b"",
             "failed", "empty"),
        Case("escape-name", "name with an ANSI escape (good text)", "esc\x1b[31mred.txt",
             good_text("Escapeby").encode(), "indexed", text=normalise_text(good_text("Escapeby"))),
        Case("unicode-name", "non-Latin / accented name", "Überprüfung-отчёт.txt",
             good_text("Umlautby").encode(), "indexed", text=normalise_text(good_text("Umlautby"))),
        Case("long-name", "250-character name", "n" * 246 + ".txt",
             good_text("Longname").encode(), "indexed", text=normalise_text(good_text("Longname"))),
        Case("dotdot", "path with ../ (CLI) / name ../../x.txt (UI)", "dotdot.txt",
             good_text("Dotdot").encode(), "indexed", text=normalise_text(good_text("Dotdot")),
             ui_name="../../dotdot.txt", mode="explicit", special="dotdot"),
        Case("abs-name", "upload name that is an absolute path", "abs.txt",
             good_text("Absolute").encode(), "indexed",
             text=normalise_text(good_text("Absolute")), ui_name="/etc/cron.d/abs.txt"),
        Case("txt-is-html", ".txt that is actually HTML (kept as literal text)", "page.txt",
             b"<html><body><p>Htmltxt Borough Council supported unpaid carers.</p></body></html>",
             "indexed", text="<html><body><p>Htmltxt Borough Council supported unpaid "
                             "carers.</p></body></html>"),
        Case("html-is-text", ".html that is plain text", "plain.html",
             b"This page has no markup at all, it is plain text about carers.\n", "failed",
             "no HTML markup"),
        Case("md-markup-only", ".md with only markup", "markup.md",
             b"# \n\n---\n\n**  **\n\n* \n\n[](http://x)\n\n> \n", "failed",
             "no readable words"),
        Case("md-with-html", ".md with raw HTML/JS (kept as literal text)", "md-html.md",
             md_html.encode(), "indexed",
             text="Mdscript Borough Council: local authority assessment\n\n<script>alert(1)"
                  "</script> Mdscript Borough Council supported unpaid carers."),
        Case("html-only-scripts", "HTML whose only content is script/style", "only-js.html",
             b"<html><head><script>var a = 'carers respite advice';</script></head><body>"
             b"<style>body{}</style></body></html>", "failed", "no readable words"),
        Case("docx", "unsupported .docx", "report.docx", b"PK\x03\x04 fake docx", "failed",
             "unsupported file type '.docx'"),
        Case("exe", "unsupported .exe", "setup.exe", b"MZ\x90\x00 fake exe", "failed",
             "unsupported file type '.exe'"),
        Case("no-ext", "no extension", "README-ish", good_text("Noext").encode(), "failed",
             "unsupported file type '(none)'", ui_reason="unsupported file type '(none)'"),
        Case("symlink-out", "symlink to /etc/passwd inside the folder", "passwd-link.txt", None,
             "failed", "outside the folder", ui_expect="failed", ui_reason="symbolic link",
             special="symlink-out"),
        Case("symlink-explicit", "symlink named on the command line (user's choice)",
             "chosen-link.txt", None, "indexed", text=normalise_text(good_text("Linkchosen")),
             ui_expect="n/a", mode="explicit", special="symlink-explicit"),
        Case("dup", "same bytes twice in one batch (second copy)", "dup-b.txt",
             good_text("Dupford").encode(), "duplicate", special="dup"),
        Case("changing", "file rewritten between hashing and parsing / appended during ingest",
             "changing.txt", good_text("Changeby").encode(), "indexed", special="changing"),
        Case("dir-named-file", "directory named x.txt/ (holding a good file)", "x.txt", None,
             "indexed", text=normalise_text(good_text("Dirfile")), ui_name="x.txt/",
             ui_expect="failed", ui_reason="no usable name", special="dir"),
        Case("fifo-in-folder", "named pipe in the folder", "pipe.txt", None, "failed",
             "not a regular file", ui_expect="n/a", special="fifo"),
        Case("fifo-explicit", "named pipe on the command line (used to hang)", "pipe2.txt",
             None, "failed", "not a regular file", ui_expect="n/a", mode="explicit",
             special="fifo"),
        Case("device", "/dev/zero on the command line (used to read forever)", "", None,
             "failed", "not a regular file", ui_expect="n/a", mode="explicit", special="device"),
        Case("missing", "path that does not exist", "", None, "failed", "no such file",
             ui_expect="n/a", mode="explicit", special="missing"),
        # As root chmod 000 does not stop reads: the permission case is not applicable and the
        # file is simply indexed; as any other user it must fail with "cannot read".
        Case("unreadable", "no read permission (chmod 000)" + (" [root: n/a, readable]"
                                                                if ROOT else ""), "secret.txt",
             good_text("Secretby").encode(), "indexed" if ROOT else "failed", "cannot read",
             text=normalise_text(good_text("Secretby")) if ROOT else None, ui_expect="n/a",
             special="unreadable"),
        Case("hidden", "hidden file .hidden.txt", ".hidden.txt", good_text("Hiddenby").encode(),
             "n/a", ui_expect="indexed", text=normalise_text(good_text("Hiddenby"))),
        Case("corpus", "valid CQC report pages (2 corpus files)", "", None, "indexed",
             special="corpus"),
    ]


# --- running --------------------------------------------------------------------------------

@dataclass
class Row:
    case: Case
    cli: str = ""  # outcome: indexed | duplicate | failed | n/a | crash | ...
    ui: str = ""
    cli_msg: str = ""
    ui_msg: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class Matrix:
    rows: list[Row]
    checks: list[str]  # index-level problems (empty when all good)
    cli_stderr: str
    cli_state: dict[str, Any]
    ui_state: dict[str, Any]
    seconds: float

    @property
    def problems(self) -> list[str]:
        return [f"{r.case.key}: {p}" for r in self.rows for p in r.problems] + self.checks

    def table(self) -> str:
        def clip(s: str, n: int) -> str:
            s = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in s)
            return s if len(s) <= n else s[: n - 1] + "…"

        head = ("input", "CLI", "UI", "message (CLI; UI when different)")
        lines = [f"{head[0]:<58} {head[1]:<10} {head[2]:<10} {head[3]}"]
        lines.append("-" * 150)
        for r in self.rows:
            msg = r.cli_msg or r.ui_msg
            if r.ui_msg and r.cli_msg and r.ui_msg != r.cli_msg:
                msg = f"{r.cli_msg} | UI: {r.ui_msg}"
            flag = "" if not r.problems else "  <-- " + "; ".join(r.problems)
            lines.append(f"{clip(r.case.label, 58):<58} {r.cli:<10} {r.ui:<10} "
                         f"{clip(msg, 110)}{flag}")
        lines.append(f"{len(self.rows)} inputs; {sum(not r.problems for r in self.rows)} as "
                     f"expected; index checks: {'ok' if not self.checks else self.checks}; "
                     f"{self.seconds:.1f} s")
        return "\n".join(lines)


def _hash_settings(index: Path) -> Settings:
    return Settings(index_dir=index, embedder="hash", chroma_url=None, chroma_token=None,
                    max_file_mb=MAX_MB, corpus_dir=CORPUS)


def _state(settings: Settings) -> dict[str, Any]:
    from ingest.index import IndexStore
    from reportqa.embed import get_embedder

    emb = get_embedder("hash")
    st = IndexStore(settings, emb.name, emb.dim, create=False)
    try:
        reports = st.reports()
        rows: dict[str, int] = {}
        for (rid,) in st.db.execute("SELECT report_id FROM chunks"):
            rows[rid] = rows.get(rid, 0) + 1
        return {
            "reports": {r.report_id: r for r in reports},
            "text": {r.report_id: st.report_text(r.report_id) for r in reports},
            "rows": rows, "chunk_ids": st.chunk_ids(), "vector_ids": st.vector_ids(),
            "counts": st.counts(), "pending": st.has_pending(),
        }
    finally:
        st.close()


def _write_special(c: Case, folder: Path, work: Path) -> list[Path]:
    """Create a special input under ``folder``; return the CLI paths that stand for it."""
    p = folder / (c.name or "_unnamed")  # cases without a name return other paths below
    s = c.special
    if s == "truncated":
        full = _pdf(["Truncby Borough Council: local authority assessment",
                     "Truncby Borough Council supported unpaid carers with respite."] * 5)
        p.write_bytes(full[: len(full) // 2])
    elif s == "zero-bomb":
        p.write_bytes(_flate_bomb(100, b"\x00" * 4096))
    elif s == "text-bomb":
        p.write_bytes(_flate_bomb(70, b"BT /F1 12 Tf 72 712 Td (carers respite advice) Tj ET\n",
                                  pages=50))
    elif s == "pages":
        p.write_bytes(_many_pages_pdf(2500))
    elif s == "deep-pdf":
        p.write_bytes(_deep_array_pdf(50_000))
    elif s == "big":
        with open(p, "wb") as fh:  # sparse: instant, no 50 MB written
            fh.write(good_text("Bigby").encode())
            fh.truncate(50 * 1024 * 1024)
    elif s == "symlink-out":
        p.symlink_to("/etc/passwd")
    elif s == "symlink-explicit":
        target = work / "outside" / "chosen-target.txt"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(good_text("Linkchosen"), encoding="utf-8")
        p.symlink_to(target)
    elif s == "dup":
        (folder / "dup-a.txt").write_bytes(c.data or b"")
        p.write_bytes(c.data or b"")
    elif s == "dir":
        p.mkdir()
        (p / "inner.txt").write_text(good_text("Dirfile"), encoding="utf-8")
        return [p]
    elif s == "fifo":
        os.mkfifo(p)
    elif s == "device":
        return [Path("/dev/zero")]
    elif s == "missing":
        return [folder / "no-such-file.txt"]
    elif s == "dotdot":
        (folder / "sub").mkdir(exist_ok=True)
        p.write_bytes(c.data or b"")
        return [folder / "sub" / ".." / c.name]
    elif s == "unreadable":
        p.write_bytes(c.data or b"")
        p.chmod(0)
    elif s == "corpus":
        out = []
        for name in ("wirral__about.txt", "darlington__about.txt"):
            shutil.copy(CORPUS / name, folder / name)
            out.append(folder / name)
        return out
    elif s == "changing":
        p.write_bytes(c.data or b"")
    return [p] if c.name else []


def _uploads(c: Case, work: Path) -> list[tuple[str, bytes]]:
    """What the UI receives for a case (name, bytes); [] when n/a."""
    if c.ui_expect == "n/a" or (c.ui_expect is None and c.expect == "n/a"):
        return []
    if c.special == "corpus":
        return [(n, (CORPUS / n).read_bytes()) for n in ("wirral__about.txt",
                                                           "darlington__about.txt")]
    if c.special == "dup":
        return [("dup-a.txt", c.data or b""), (c.upload_name, c.data or b"")]
    if c.special == "big":
        return [(c.upload_name, b"carers respite " * (50 * 1024 * 1024 // 15 + 1))]
    if c.special == "dir":
        return [(c.upload_name, good_text("Dirfile").encode())]
    if c.special == "symlink-out":
        return [(c.upload_name, good_text("Symlinkby").encode())]
    if c.data is not None:
        return [(c.upload_name, c.data)]
    f = work / "cli-batch" / c.name
    return [(c.upload_name, f.read_bytes())] if f.is_file() else []


def _appender(path: Path, stop: threading.Event, written: list[bytes]) -> None:
    """Append whole lines to ``path`` until ``stop``; ``written`` gets every version."""
    i = 0
    while not stop.is_set() and i < 400:
        line = f"Update {i}: Changeby Borough Council reviewed carers plans.\n".encode()
        with open(path, "ab") as fh:
            fh.write(line)
        written.append(path.read_bytes())
        i += 1
        time.sleep(0.005)


def run_cli(all_cases: list[Case], work: Path) -> tuple[dict[str, tuple[str, str]], str,
                                                          dict[str, Any], list[str]]:
    """One folder run + one run with every explicit path. Returns per-case (outcome, message),
    stderr, final state, and the versions of the file changed during the run."""
    folder = work / "cli-batch"
    single = work / "cli-single"
    folder.mkdir(parents=True)
    single.mkdir(parents=True)
    paths: dict[str, list[Path]] = {}
    for c in all_cases:
        if c.mode == "folder":
            if c.special:
                paths[c.key] = _write_special(c, folder, work)
            else:
                (folder / c.name).write_bytes(c.data or b"")
                paths[c.key] = [folder / c.name]
        else:
            paths[c.key] = _write_special(c, single, work)
    index = work / "cli-index"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPORTQA_")}
    env.update({"REPORTQA_EMBEDDER": "hash", "REPORTQA_MAX_FILE_MB": f"{MAX_MB:g}",
                "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"})
    explicit = [str(p) for c in all_cases if c.mode == "explicit" for p in paths[c.key]]
    stop, versions = threading.Event(), []
    changing = folder / "changing.txt"
    versions.append(changing.read_bytes())
    t = threading.Thread(target=_appender, args=(changing, stop, versions), daemon=True)
    stderr = ""
    procs = []
    t.start()
    try:
        for args in ([str(folder)], explicit):
            proc = subprocess.run([sys.executable, "-m", "ui.cli", "ingest", *args,
                                   "--json", "--index", str(index)], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=900)
            procs.append(proc)
            stderr += proc.stderr
    finally:
        stop.set()
        t.join()
    state = _state(_hash_settings(index))
    by_path = {r.path: r for r in state["reports"].values()}
    failed: dict[str, str] = {}
    for ln in stderr.splitlines():
        if ln.startswith("FAILED "):
            path, _, reason = ln[len("FAILED "):].partition(": ")
            failed[path] = reason
    from ui.cli import _one_line

    out: dict[str, tuple[str, str]] = {}
    for c in all_cases:
        if c.expect == "n/a":
            out[c.key] = ("n/a", "hidden files are skipped by a folder walk"
                          if c.key == "hidden" else "")
            continue
        results = []
        for p in paths[c.key]:
            shown = _one_line(str(p))
            if shown in failed:
                results.append(("failed", failed[shown]))
                continue
            target = p / "inner.txt" if p.is_dir() else p
            try:
                real = str(target.resolve())
            except OSError:
                real = str(target)
            row = by_path.get(real)
            if row is not None:
                results.append(("indexed", f"indexed as {row.report_id}"))
            else:
                results.append(("duplicate" if c.special == "dup" else "silent",
                                "no error; same text already indexed" if c.special == "dup"
                                else "no output at all"))
        outcome = results[0][0] if len({r[0] for r in results}) == 1 else "mixed"
        out[c.key] = (outcome, results[0][1])
    codes = [p.returncode for p in procs]
    notes = [f"exit codes {codes}"]
    if "Traceback" in stderr:
        notes.append("TRACEBACK in CLI stderr")
    bad_lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("FAILED ")]
    if bad_lines:
        notes.append(f"unexpected stderr lines: {bad_lines[:3]}")
    state["versions"] = versions
    state["paths"] = paths
    return out, stderr, state, notes


def run_ui(all_cases: list[Case], work: Path) -> tuple[dict[str, tuple[str, str]], dict[str, Any],
                                                         list[str]]:
    """One save_and_ingest call with every upload, as the app makes it."""
    import ingest.pipeline as pipeline
    from reportqa.embed import get_embedder
    from ui.components import sanitize_filename, upload_path

    settings = _hash_settings(work / "ui-index")
    files: list[tuple[str, bytes]] = []
    owner: list[str] = []
    for c in all_cases:
        ups = _uploads(c, work)
        files.extend(ups)
        owner.extend([c.key] * len(ups))
        if c.special == "symlink-out" and ups:
            # Symlink trick: the upload's destination already exists as a link to /etc/passwd.
            dest = upload_path(settings, ups[0][1], sanitize_filename(ups[0][0]))
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to("/etc/passwd")
    versions: list[bytes] = []
    real_parse = pipeline.parse_file

    def racing_parse(path: Path, max_mb: float = 20.0, data: bytes | None = None) -> ParsedFile:
        # The upload is rewritten on disk after the pipeline hashed it, before it is parsed.
        if path.name == "changing.txt" and not versions:
            versions.append(path.read_bytes())
            path.write_bytes(path.read_bytes() + b"Rewritten after hashing: Changeby added a line.\n")
            versions.append(path.read_bytes())
        return real_parse(path, max_mb, data)

    notes: list[str] = []
    pipeline.parse_file = racing_parse
    try:
        results = __import__("ui.components", fromlist=["x"]).save_and_ingest(
            files, settings, progress=lambda *_: None, embedder=get_embedder("hash"))
    except Exception as exc:  # a crash is a finding, reported in the matrix
        notes.append(f"save_and_ingest crashed: {type(exc).__name__}: {exc}")
        results = []
    finally:
        pipeline.parse_file = real_parse
    out: dict[str, tuple[str, str]] = {}
    for c in all_cases:
        got = [r for r, k in zip(results, owner, strict=False) if k == c.key]
        if not got:
            out[c.key] = ("n/a", "") if not any(k == c.key for k in owner) else ("crash", "")
            continue
        r = got[-1]  # dup: the second copy is the case
        status = {"added": "indexed", "updated": "indexed", "unchanged": "duplicate",
                  "failed": "failed"}.get(r.status, r.status)
        out[c.key] = (status, r.message)
    state = _state(settings) if (settings.index_dir / "manifest.sqlite3").exists() else {}
    state["versions"] = versions
    state["files"] = files
    return out, state, notes


def _reference(all_cases: list[Case], work: Path, cli_state: dict[str, Any]) -> dict[str, Any]:
    """A clean in-process ingest of only the good files (same names): the expected chunks."""
    from ingest.pipeline import ingest

    ref_dir = work / "reference"
    ref_dir.mkdir()
    for c in all_cases:
        if c.special == "changing" or "indexed" not in (c.expect, c.ui_expect) and c.special != "dup":
            continue
        if c.expect == "n/a" and c.data is not None:  # UI-only good input (hidden file)
            (ref_dir / f"{c.key}.txt").write_bytes(c.data)
            continue
        for i, p in enumerate(cli_state["paths"][c.key]):
            src = p / "inner.txt" if p.is_dir() else p
            (ref_dir / f"{c.key}-{i}{src.suffix}").write_bytes(src.read_bytes())
    settings = _hash_settings(work / "ref-index")
    summary = ingest([ref_dir], settings)
    assert not summary.failed, summary.failed
    return _state(settings)


def _expected_texts(c: Case) -> list[str] | None:
    if c.text is not None:
        return [c.text]
    if c.special == "corpus":
        return [normalise_text((CORPUS / n).read_text(encoding="utf-8"))
                for n in ("wirral__about.txt", "darlington__about.txt")]
    if c.special == "dup":
        return [normalise_text(good_text("Dupford"))]
    return None


def _check_changing(state: dict[str, Any], versions: list[bytes], where: str) -> list[str]:
    rows = [r for r in state["reports"].values() if Path(r.path).name == "changing.txt"]
    if len(rows) != 1:
        return [f"{where}: {len(rows)} reports for the changing file"]
    r = rows[0]
    text = state["text"][r.report_id]
    probs = []
    if sha256(text) != r.content_hash:
        probs.append(f"{where}: content hash does not match the stored text")
    match = [v for v in versions if sha256(v) == r.file_hash]
    if not match:
        probs.append(f"{where}: stored file hash matches no version of the file")
    elif normalise_text(match[0].decode("utf-8")) != text:
        probs.append(f"{where}: stored text is not the version its file hash names")
    return probs


def _check_index(name: str, state: dict[str, Any], ref: dict[str, Any],
                 expect_hashes: dict[str, str], changing_versions: list[bytes]) -> list[str]:
    probs: list[str] = []
    if state.get("pending"):
        probs.append(f"{name}: write journal not empty")
    if state["vector_ids"] != state["chunk_ids"]:
        probs.append(f"{name}: vector ids != chunk ids")
    for rid, r in state["reports"].items():
        if state["rows"].get(rid, 0) != r.chunk_count:
            probs.append(f"{name}: {rid} chunk_count {r.chunk_count} != rows")
        if sha256(state["text"][rid]) != r.content_hash:
            probs.append(f"{name}: {rid} content hash does not match its text")
    changing = {r.content_hash for r in state["reports"].values()
                if Path(r.path).name == "changing.txt"}
    got = {r.content_hash for r in state["reports"].values()} - changing
    ref_hashes = {r.content_hash for r in ref["reports"].values()}
    want = set(expect_hashes)
    if got != want:
        probs.append(f"{name}: unexpected reports {sorted(expect_hashes.get(h, h) for h in got - want)}"
                     f", missing {sorted(expect_hashes[h] for h in want - got)}")
    # Chunks: exactly those a clean ingest of the same good files makes.
    ref_chunks = {c for c in ref["chunk_ids"]}
    ref_by_hash = {r.content_hash: r.chunk_count for r in ref["reports"].values()}
    mine_by_hash = {r.content_hash: r.chunk_count for r in state["reports"].values()}
    for h in want & ref_hashes:
        if mine_by_hash.get(h) != ref_by_hash.get(h):
            probs.append(f"{name}: {expect_hashes[h]} has {mine_by_hash.get(h)} chunks, "
                         f"expected {ref_by_hash.get(h)}")
    changing_ids = {cid for cid in state["chunk_ids"]} - ref_chunks
    n_changing = sum(r.chunk_count for r in state["reports"].values()
                     if Path(r.path).name == "changing.txt")
    if len(changing_ids) > n_changing:
        probs.append(f"{name}: {len(changing_ids) - n_changing} chunks not in the reference")
    probs += _check_changing(state, changing_versions, name)
    return probs


def run_matrix(work: Path) -> Matrix:
    t0 = time.perf_counter()
    all_cases = cases()
    keys = [c.key for c in all_cases]
    assert len(keys) == len(set(keys)), "duplicate case keys"
    cli, stderr, cli_state, cli_notes = run_cli(all_cases, work)
    ui, ui_state, ui_notes = run_ui(all_cases, work)
    ref = _reference(all_cases, work, cli_state)

    rows: list[Row] = []
    cli_hashes: dict[str, str] = {}
    ui_hashes: dict[str, str] = {}
    for c in all_cases:
        row = Row(c, cli[c.key][0], ui[c.key][0], cli[c.key][1], ui[c.key][1])
        want_ui = c.ui_expect or c.expect
        for where, got, want, msg, state, hashes in (
                ("CLI", row.cli, c.expect, row.cli_msg, cli_state, cli_hashes),
                ("UI", row.ui, want_ui, row.ui_msg, ui_state, ui_hashes)):
            if got != want:
                row.problems.append(f"{where}: {got} (expected {want}): {msg}")
                continue
            if got == "failed":
                reason = (c.ui_reason or c.reason) if where == "UI" else c.reason
                if reason not in msg:
                    row.problems.append(f"{where}: message lacks {reason!r}: {msg}")
                if "\n" in msg or "Traceback" in msg:
                    row.problems.append(f"{where}: message is not one line")
            if got in ("indexed", "duplicate") and c.special != "changing":
                texts = _expected_texts(c)
                ids = [r.report_id for r in state["reports"].values()
                       if texts is None and (c.contains or c.excludes)]
                if texts is not None:
                    for t in texts:
                        hashes[sha256(t)] = c.key
                        if sha256(t) not in {r.content_hash for r in state["reports"].values()}:
                            row.problems.append(f"{where}: expected text not indexed")
                else:
                    found = [rid for rid in ids
                             if all(s in state["text"][rid] for s in c.contains)]
                    if len(found) != 1:
                        row.problems.append(f"{where}: {len(found)} reports contain {c.contains}")
                    else:
                        hashes[state["reports"][found[0]].content_hash] = c.key
                        text = state["text"][found[0]]
                        leaked = [s for s in c.excludes if s in text]
                        if leaked:
                            row.problems.append(f"{where}: stored text contains {leaked}")
                if texts is not None:
                    for t in texts:
                        leaked = [s for s in c.excludes if s in t]
                        if leaked:
                            row.problems.append(f"{where}: expected text contains {leaked}")
        rows.append(row)

    checks = [n for n in cli_notes if n.startswith(("TRACEBACK", "unexpected"))] + ui_notes
    if "exit codes [1, 1]" not in cli_notes:
        checks.append(f"CLI: {cli_notes[0]}, expected [1, 1] (some files failed in each run)")
    checks += _check_index("CLI index", cli_state, ref, cli_hashes, cli_state["versions"])
    if ui_state.get("reports") is not None:
        checks += _check_index("UI index", ui_state, ref, ui_hashes, ui_state["versions"])
        # The file rewritten after hashing: next ingest picks up the new version.
    # Nothing the shell characters could have run.
    for p in (work / "pwned", REPO / "pwned", Path.cwd() / "pwned"):
        if p.exists():
            checks.append(f"shell command ran: {p} exists")
    # Nothing the UI wrote escaped the index's uploads folder.
    uploads = (work / "ui-index" / "uploads").resolve()
    for f in (work / "ui-index").rglob("*"):
        if (f.is_file() and not f.is_symlink() and "uploads" in f.parts
                and not f.resolve().is_relative_to(uploads)):
            checks.append(f"UI wrote outside uploads/: {f}")
    if Path("/etc/cron.d/abs.txt").exists():
        checks.append("UI wrote /etc/cron.d/abs.txt")
    return Matrix(rows, checks, stderr, cli_state, ui_state, time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temp dir)")
    args = ap.parse_args(argv)
    if args.keep:
        work = Path(args.keep)
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        m = run_matrix(work)
    else:
        with tempfile.TemporaryDirectory(prefix="bad-input-matrix-") as tmp:
            m = run_matrix(Path(tmp))
    print(m.table())
    for p in m.problems:
        print("PROBLEM:", p)
    return 1 if m.problems else 0


if __name__ == "__main__":
    sys.exit(main())
