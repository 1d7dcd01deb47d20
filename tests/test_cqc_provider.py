"""The CQC provider-report profile, on PDFs made here (no real provider report is bundled): the
family, the provider's name, the inspection date, the overall rating and the five key
questions' ratings, cited on page 1; a rating question about the provider is answered from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.parse import parse_file
from ingest.pdftext import page_at
from ingest.structure import extract_structure

RATINGS = {"Is the service safe?": "Requires improvement", "Is the service effective?": "Good",
           "Is the service caring?": "Outstanding", "Is the service responsive?": "Good",
           "Is the service well-led?": "Inadequate"}


def make_report(path: Path, name: str = "Sunnyview Care Home", *, cells: bool) -> Path:
    """A care home report laid out as CQC publishes them: ratings on page 1 (as one line per
    key question, or as a table whose grade cells are lines of their own), then findings
    pages with a running footer."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=11)

    def line(text: str) -> None:
        pdf.cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")

    pdf.add_page()
    for t in (name, "Inspection report", "12 High Street, Exampletown EX1 2AB",
              "Date of inspection visit: 5 March 2024", "Date of publication: 10 April 2024",
              "Overall rating for this service Requires improvement"):
        line(t)
    for q, grade in RATINGS.items():
        if cells:
            line(q)
            line(grade)
        else:
            line(f"{q} {grade}")
    findings = ("People told us staff were kind and knew them well, but medicines were not "
                "always recorded and some records had gaps in the month before the inspection.",
                "The manager had started weekly audits of care plans, and relatives said they "
                "were now told promptly about changes to their family member's care.",
                "Staffing levels at night did not always match the assessed needs of people "
                "living with dementia, and the provider had begun recruiting two more carers.")
    for n, finding in enumerate(findings, start=2):
        pdf.add_page()
        pdf.multi_cell(0, 6, f"Finding {n}. {finding}")
        pdf.set_y(-20)
        line(f"{name} Inspection report 10 April 2024 {n}")
    pdf.output(str(path))
    return path


@pytest.mark.parametrize("cells", [False, True], ids=["rating-on-its-line", "rating-cells"])
def test_provider_report_family_name_date_and_ratings(tmp_path: Path, cells: bool) -> None:
    p = parse_file(make_report(tmp_path / "sunnyview.pdf", cells=cells))
    st = extract_structure(p.text, p.headings, None, None, p.page_starts)
    assert st.family == "cqc-provider" and st.inspectorate == "CQC"
    assert st.organisation == "Sunnyview Care Home" and st.council == "Sunnyview Care Home"
    assert st.inspection_dates == "5 March 2024"
    assert st.overall_rating == "Requires improvement"
    got = {j.name: j.grade for j in st.judgements}
    assert got == RATINGS
    for j in st.judgements:
        assert page_at(st.page_starts, j.start) == 1 and j.grade in p.text[j.start:j.end]
    assert "Inspection report 10 April 2024" not in p.text.split("\n", 2)[2]  # footer dropped


def test_rating_questions_about_a_provider_are_answered_from_its_page_one(tmp_path: Path) -> None:
    from ingest.pipeline import ingest
    from rag.answer import answer
    from rag.engine import Engine
    from reportqa.settings import Settings

    (tmp_path / "r").mkdir()
    make_report(tmp_path / "r" / "sunnyview.pdf", cells=True)
    settings = Settings(index_dir=tmp_path / "index", embedder="hash")
    assert ingest([tmp_path / "r"], settings).reports_total == 1
    eng = Engine.load(settings)
    a = answer("How was Sunnyview Care Home rated for being well-led?", settings, engine=eng)
    assert "Inadequate" in a.text and a.citations[0].page == 1
    b = answer("What overall rating did CQC give Sunnyview Care Home?", settings, engine=eng)
    assert "Requires improvement" in b.text and b.citations[0].page == 1
