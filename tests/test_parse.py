"""Stage 1: parsing each supported format into normalised report text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.parse import normalise_text, parse_file
from ingest.pipeline import ingest
from ingest.structure import extract_structure

CANONICAL = ("https://www.cqc.org.uk/care-services/local-authority-assessment-reports/"
             "northbridge-0125/safeguarding")

# A CQC-like page as a browser saves it: chrome around the content that must not be indexed.
SAVED_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Safeguarding - Northbridge Council: local authority assessment - Care Quality Commission</title>
  <link rel="stylesheet" href="./Safeguarding_files/main.css">
  <link rel="canonical" href="{CANONICAL}">
  <style>.govuk-header {{ background: #000; }} body {{ font-family: Arial; }}</style>
  <script>window.dataLayer = window.dataLayer || []; function gtag() {{ trackingScriptMarker(); }}</script>
</head>
<body>
  <div class="cookie-banner" role="region">
    <p>We use cookies to collect information about how you use our website. CookieBannerMarker</p>
    <a href="/cookies">View cookies</a>
  </div>
  <a class="skip-link" href="#main">Skip to main content</a>
  <header class="site-header">
    <a href="/">Care Quality Commission HeaderMarker</a>
    <nav aria-label="Main menu">
      <ul>
        <li><a href="/find">Find and compare services NavMarker</a></li>
        <li><a href="/guidance">Guidance for providers</a></li>
      </ul>
    </nav>
  </header>
  <main id="main">
    <h1>Northbridge Council: local authority assessment</h1>
    <p>Assessment published: 14 February 2025</p>
    <h2>Safeguarding</h2>
    <p>Score: 2</p>
    <p>2 - Evidence shows some shortfalls</p>
    <h2>What people expect</h2>
    <p>I feel safe and am supported to understand and manage any risks.</p>
    <h2>Key findings for this quality statement</h2>
    <p>The local authority had a clear safeguarding pathway, although waiting times for
       safeguarding enquiries had grown in the year before our assessment.</p>
    <ul>
      <li>Referrals were triaged within <strong>24 hours</strong> of receipt.</li>
      <li>Staff had access to specialist legal advice.</li>
    </ul>
  </main>
  <footer><p>FooterMarker Care Quality Commission 2025. All rights reserved.</p></footer>
  <script src="./Safeguarding_files/analytics.js"></script>
  <script>console.log("lateScriptMarker");</script>
</body>
</html>
"""

CHROME_MARKERS = ("trackingScriptMarker", "CookieBannerMarker", "HeaderMarker", "NavMarker",
                  "FooterMarker", "lateScriptMarker", "Skip to main content", "font-family",
                  "View cookies", "Guidance for providers")


def test_txt_is_normalised_but_text_kept(tmp_path: Path) -> None:
    body = ("\ufeffWestminster City Council: local authority assessment  \r\n"
            "Safeguarding\r\n"
            "Score: 3\r\n"
            "The local\u200b authority worked well with partners.   \r\n\r\n\r\n")
    f = tmp_path / "page.txt"
    f.write_bytes(body.encode("utf-8"))
    parsed = parse_file(f)
    assert parsed.text == ("Westminster City Council: local authority assessment\nSafeguarding\n"
                           "Score: 3\nThe local authority worked well with partners.")
    assert parsed.url is None


def test_corpus_txt_files_parse_to_their_own_text(corpus_files: list[Path]) -> None:
    for f in corpus_files:
        parsed = parse_file(f)
        assert parsed.text == normalise_text(f.read_text(encoding="utf-8")), f.name
        assert len(parsed.text) > 500, f.name


def test_a_markdown_link_whose_address_holds_brackets_goes_whole(tmp_path: Path) -> None:
    f = tmp_path / "report.md"
    f.write_text("# Eastmoor Council\n\nSee [the strategy](https://example.org/Care_(2024)) and "
                 "[click me](javascript:alert(4)) or ![a chart](c.png (x)).\n", encoding="utf-8")
    assert parse_file(f).text.split("\n")[2] == "See the strategy and click me or a chart."
    f.write_text("See [the plan](https://example.org/plan_(2024) for details.\n", encoding="utf-8")
    assert parse_file(f).text == "See the plan for details."


def test_markdown_headings_links_and_lists(tmp_path: Path) -> None:
    f = tmp_path / "report.md"
    f.write_text(
        "# Eastmoor Council: local authority assessment\n\n"
        "## Key findings for this quality statement\n\n"
        "People told us about **long waits** for [occupational therapy](https://example.org/ot).\n\n"
        "- Waiting lists had reduced.\n"
        "* Carers felt supported.\n",
        encoding="utf-8",
    )
    parsed = parse_file(f)
    assert parsed.headings == ("Eastmoor Council: local authority assessment",
                               "Key findings for this quality statement")
    lines = parsed.text.split("\n")
    assert lines[0] == "Eastmoor Council: local authority assessment"
    assert "People told us about long waits for occupational therapy." in lines
    assert "  • Waiting lists had reduced." in lines
    assert "  • Carers felt supported." in lines
    assert "https://" not in parsed.text and "#" not in parsed.text and "**" not in parsed.text


@pytest.mark.parametrize("suffix", [".html", ".htm"])
def test_saved_html_page_keeps_content_drops_chrome(tmp_path: Path, suffix: str) -> None:
    f = tmp_path / f"northbridge-safeguarding{suffix}"
    f.write_text(SAVED_PAGE, encoding="utf-8")
    parsed = parse_file(f)
    for marker in CHROME_MARKERS:
        assert marker not in parsed.text, marker
    lines = parsed.text.split("\n")
    # Headings and paragraphs are kept, each on its own line, in page order.
    for heading in ("Northbridge Council: local authority assessment", "Safeguarding",
                    "What people expect", "Key findings for this quality statement"):
        assert heading in lines, heading
        assert heading in parsed.headings
    assert lines[0] == "Northbridge Council: local authority assessment"
    assert "Score: 2" in lines
    # List items are kept as bullets; inline markup does not split the line.
    assert "  • Referrals were triaged within 24 hours of receipt." in lines
    assert "  • Staff had access to specialist legal advice." in lines
    # Wrapped source lines are re-joined into one paragraph.
    assert ("The local authority had a clear safeguarding pathway, although waiting times for "
            "safeguarding enquiries had grown in the year before our assessment.") in lines
    assert parsed.url == CANONICAL


def test_saved_html_page_ingests_with_canonical_source(tmp_path: Path, hash_settings,
                                                       open_index) -> None:
    f = tmp_path / "northbridge-safeguarding.html"
    f.write_text(SAVED_PAGE, encoding="utf-8")
    summary = ingest([f], hash_settings)
    assert not summary.failed and len(summary.added) == 1
    store = open_index(hash_settings)
    (row,) = store.reports()
    assert row.source == CANONICAL
    assert row.path == str(f.resolve())
    meta = row.metadata
    assert meta["council"] == "Northbridge Council"
    assert meta["page_kind"] == "quality_statement"
    assert meta["quality_statement"] == "Safeguarding"
    assert meta["score"] == 2
    assert meta["published"] == "2025-02-14"
    text = store.report_text(row.report_id)
    assert all(m not in text for m in CHROME_MARKERS)
    assert all(m not in c.text for c in store.chunks() for m in CHROME_MARKERS)


def test_html_without_main_uses_body_and_og_url(tmp_path: Path) -> None:
    page = ("<html><head><meta property='og:url' content='https://example.org/r/1'></head><body>"
            "<nav>Menu NavMarker</nav><h1>Inspection report</h1><p>The service was rated good "
            "overall by the inspectors.</p><script>var x = 'scriptMarker';</script></body></html>")
    f = tmp_path / "r.html"
    f.write_text(page, encoding="utf-8")
    parsed = parse_file(f)
    assert parsed.text == "Inspection report\nThe service was rated good overall by the inspectors."
    assert parsed.url == "https://example.org/r/1"


PDF_LINES = [
    "Westhaven Council: local authority assessment",
    "Safeguarding",
    "Score: 3",
    "3 - Evidence shows a good standard",
    "Key findings for this quality statement",
    "The local authority worked with partners to keep people safe from abuse and neglect.",
    "Safeguarding enquiries were completed within 28 days in 91% of cases.",
]


def _write_text_pdf(path: Path, lines: list[str], pages: int = 1) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for p in range(pages):
        pdf.add_page()
        for ln in lines:
            pdf.cell(0, 8, ln if p == 0 else f"{ln} (page {p + 1})",
                     new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def test_pdf_text_layer_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "westhaven.pdf"
    _write_text_pdf(f, PDF_LINES)
    parsed = parse_file(f)
    # Title, headings and the score lines keep their own lines; the two sentences of the
    # findings paragraph (a full-width line, then its next line) are one paragraph now.
    assert parsed.text.split("\n") == [*PDF_LINES[:5], " ".join(PDF_LINES[5:])]
    assert parsed.page_starts == (0,)


def test_pdf_multi_page_keeps_every_page_in_order(tmp_path: Path) -> None:
    f = tmp_path / "multi.pdf"
    _write_text_pdf(f, PDF_LINES, pages=3)
    text = parse_file(f).text
    positions = [text.find(PDF_LINES[-1]), text.find(PDF_LINES[-1] + " (page 2)"),
                 text.find(PDF_LINES[-1] + " (page 3)")]
    assert all(p >= 0 for p in positions) and positions == sorted(positions)


def test_pdf_ingests_with_structure(tmp_path: Path, hash_settings, open_index) -> None:
    f = tmp_path / "westhaven.pdf"
    _write_text_pdf(f, PDF_LINES)
    summary = ingest([f], hash_settings)
    assert not summary.failed and summary.chunks_added >= 1
    st = extract_structure(parse_file(f).text)
    assert (st.council, st.page_kind, st.quality_statement, st.score) == (
        "Westhaven Council", "quality_statement", "Safeguarding", 3)
    (row,) = open_index(hash_settings).reports()
    assert row.metadata["score"] == 3 and row.source == str(f.resolve())


def test_normalise_text_strips_controls_and_unifies_newlines() -> None:
    raw = "\n\n  \nLine one\t \r\nLine\x07 two\u00ad\rCafe\u0301\n\n"
    assert normalise_text(raw) == "Line one\nLine two\nCafé"
    assert re.fullmatch(r"[^\r\x00-\x08]*", normalise_text(raw))


def _letter(path: Path, *, letterhead_last: bool) -> Path:
    """A two-page visit letter whose page-1 letterhead (at the top of the page) is written
    before or after the body in the content stream, as Ofsted's letters write it after."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=11)

    def lines(y: float, texts: tuple[str, ...]) -> None:
        pdf.set_y(y)
        for t in texts:
            pdf.cell(0, 7, t, new_x="LMARGIN", new_y="NEXT")

    head = ("Ofsted", "Piccadilly Gate", "Store Street", "Manchester")
    body = ("Focused visit to Exampleshire children's services",
            "This letter summarises the findings of the focused visit to Exampleshire.",
            "Inspectors looked at the local authority's arrangements for children in care.",
            "Children's services were run by a trust from 2019 until this year.",
            "On 1 October 2024,")
    pdf.add_page()
    if not letterhead_last:
        lines(10, head)
    lines(60, body)
    if letterhead_last:
        lines(10, head)
    pdf.add_page()
    lines(20, ("the trust was brought back into the council, which inspectors found had",
               "improved the oversight of children in care."))
    pdf.output(str(path))
    return path


@pytest.mark.parametrize("letterhead_last", [True, False])
def test_pdf_block_at_the_top_written_last_is_read_first(tmp_path: Path,
                                                         letterhead_last: bool) -> None:
    """A letterhead written after the body no longer sits between page 1's last words and
    page 2's: the sentence reads on, and the text is the same as when it is written first."""
    text = parse_file(_letter(tmp_path / "letter.pdf", letterhead_last=letterhead_last)).text
    assert "On 1 October 2024, the trust was brought back into the council" in text, text
    assert text.index("Piccadilly Gate") < text.index("Focused visit to Exampleshire"), text
    first = parse_file(_letter(tmp_path / "first.pdf", letterhead_last=False)).text
    assert text == first
