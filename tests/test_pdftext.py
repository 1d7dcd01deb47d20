"""PDF text as a reader sees it: running lines dropped, sentences rejoined, a page map."""

from __future__ import annotations

from ingest.pdftext import clean_pages, page_at

HEADER = "Inspection of Exampleshire local authority children's services"
FOCUS = ("housing", "school places", "health visits", "youth work", "transport", "respite",
         "mental health")


def _page(n: int, body: list[str]) -> str:
    return "\n".join([HEADER, f"3 to 14 March 2025 {n}", *body, f"Page {n} of 4"])


PAGES = [
    _page(1, ["Judgement Grade", "The experiences and progress of care", "leavers", "Good",
              "Overall effectiveness", "Requires improvement to be good", ""]),
    _page(2, ["12. Leaders have a clear plan and have invested in the workforce, which means",
              "that caseloads are now manageable for most social workers in the area.",
              "◼ The timeliness of initial health assessments for children in care.",
              "What needs to improve?"]),
    _page(3, ["13. The number of children waiting for an assessment has fallen from 240 to",
              "95 since the last inspection, because managers added a second duty team and"]),
    _page(4, ["now review every referral within one working day of receipt by the front door.",
              "14. Care leavers told inspectors that personal advisers are easy to contact."]),
]


def test_running_headers_footers_and_page_numbers_are_dropped() -> None:
    text = clean_pages(PAGES).text
    assert HEADER not in text
    assert "March 2025" not in text
    assert "Page 2 of 4" not in text and "of 4" not in text


def test_wrapped_lines_and_page_breaks_rejoin_into_sentences() -> None:
    text = clean_pages(PAGES).text
    assert ("which means that caseloads are now manageable for most social workers in the area."
            in text)
    # a sentence broken across a page break (and the furniture between) reads whole
    assert ("added a second duty team and now review every referral within one working day"
            in text)


def test_a_short_line_ending_in_a_comma_goes_on() -> None:
    """However short the line (a narrow column, a wide table elsewhere on the page), a comma
    at its end means the clause goes on; a bullet after it still starts its own line."""
    body = ["There are shining beacons: the ATLAS (Accept, Teach, Listen,",
            "Access, Support) group has co-produced many of the recent changes.",
            "Leaders plan for care leavers up to, and sometimes over,",
            "◼ 25 years of age."]
    wide = "x" * 160  # a wide table row makes every line of text look short
    pages = [_page(n, [wide, *body] if n == 2 else [wide, "Some text."]) for n in (1, 2, 3, 4)]
    text = clean_pages(pages).text
    assert "the ATLAS (Accept, Teach, Listen, Access, Support) group has" in text
    assert "sometimes over,\n◼ 25 years" in text


def test_a_short_line_ending_on_a_word_no_sentence_ends_on_goes_on() -> None:
    """A table cell wraps its sentence early ("should ensure that the / SEND strategy"); a
    line ending on "the", "to", "across" was cut mid-phrase, whatever the next line opens
    with. A bullet after it still starts its own line; a line ending on a noun does not go on."""
    body = ["Leaders across the partnership should ensure that the",
            "SEND strategy continues to be implemented.",
            "Lancashire County Council and NHS Lancashire and",
            "South Cumbria ICB",
            "This is to meet the needs of children across",
            "Lancashire.",
            "They should improve:",
            "• social care contributions to",
            "• EHC plans",
            "Areas for improvement"]
    wide = "x" * 160
    pages = [_page(n, [wide, *body] if n == 2 else [wide, "Some text."]) for n in (1, 2, 3, 4)]
    text = clean_pages(pages).text
    assert "should ensure that the SEND strategy continues to be implemented." in text
    assert "\nLancashire County Council and NHS Lancashire and South Cumbria ICB\n" in text
    assert "children across Lancashire.\nThey should improve:" in text
    assert "contributions to\n• EHC plans\nAreas for improvement" in text


def test_a_line_opening_with_a_figure_goes_on_from_a_sentence_cut_short() -> None:
    """A figure that wraps to the start of a line ("from 240 to / 95 since", "over, / 25
    years") is the sentence going on, not a numbered paragraph; a paragraph number or a
    footnote after a finished sentence still opens its own line."""
    text = clean_pages(PAGES).text
    assert "has fallen from 240 to 95 since the last inspection" in text
    body = ["Personal advisers keep in touch with care leavers up to, and sometimes over,",
            "25 years of age where this is wanted.",
            "Some children wait too long for a placement and some are placed",
            "1 The areas for improvement are cross-referenced to the framework."]
    pages = [_page(n, body if n == 2 else ["Some text."]) for n in (1, 2, 3, 4)]
    text = clean_pages(pages).text
    assert "sometimes over, 25 years of age where this is wanted." in text
    assert "\n1 The areas for improvement" in text


def test_bullets_numbered_paragraphs_and_headings_keep_their_own_lines() -> None:
    lines = clean_pages(PAGES).text.split("\n")
    assert any(ln.startswith("◼ The timeliness") for ln in lines)
    assert "What needs to improve?" in lines
    assert any(ln.startswith("13. The number of children") for ln in lines)
    assert any(ln.startswith("14. Care leavers") for ln in lines)


def test_grade_cells_join_the_judgement_they_grade() -> None:
    grades = ("Requires improvement to be good", "Good", "Outstanding", "Inadequate")
    lines = clean_pages(PAGES, grades).text.split("\n")
    assert "The experiences and progress of care leavers: Good" in lines
    assert "Overall effectiveness: Requires improvement to be good" in lines
    # without the family's grade scale the cells stay on their own lines
    assert "Good" in clean_pages(PAGES).text.split("\n")


def test_page_map_puts_every_line_on_its_page() -> None:
    clean = clean_pages(PAGES)
    assert len(clean.page_starts) == 4
    t = clean.text
    for needle, page in [("Judgement Grade", 1), ("12. Leaders", 2), ("13. The number", 3),
                         ("now review every referral", 4), ("14. Care leavers", 4)]:
        assert clean.page_of(t.index(needle)) == page, needle
    assert page_at(clean.page_starts, 0) == 1


def test_short_documents_keep_repeated_lines() -> None:
    # two pages are too few to call a repeated line furniture: nothing is dropped
    pages = ["Summary\nThe council did well overall.", "Summary\nThe council did well overall."]
    assert clean_pages(pages).text.count("Summary") == 2


def test_blank_and_empty_pages_keep_the_map_aligned() -> None:
    clean = clean_pages(["First page text here.", "", "Third page text here."])
    assert clean.page_starts[0] == 0
    assert clean.page_of(clean.text.index("Third")) == 3


def test_a_500_page_pdf_is_read_with_its_page_map(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A long real PDF (made here with fpdf2): every page's running header and footer goes,
    and a sentence on page 321 is mapped to page 321."""
    from fpdf import FPDF

    from ingest.parse import parse_file

    pdf = FPDF()
    pdf.set_auto_page_break(False)  # the footer sits in the bottom margin
    pdf.set_font("Helvetica", size=11)
    for n in range(1, 501):
        pdf.add_page()
        pdf.cell(0, 8, "Inspection of Longshire local authority children's services",
                 new_x="LMARGIN", new_y="NEXT")
        # templated text: every page's paragraph has the same shape, only its figures differ
        pdf.multi_cell(0, 6, f"Paragraph {n}. Inspectors found that the service on page {n} "
                       f"kept clear records of {n * 7} visits and reviewed plans on time for "
                       f"most of the {n + 12} children, although {n % 9 + 2} reviews were late.",
                       new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(0, 6, f"Managers met {n % 5 + 1} times with partners about {FOCUS[n % 7]} "
                       f"and agreed {n % 4 + 2} actions for the next quarter, which the board "
                       "will review when it next meets.", new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(-20)
        pdf.cell(0, 8, f"Page {n} of 500")
    path = tmp_path / "long.pdf"
    pdf.output(str(path))
    parsed = parse_file(path)
    assert len(parsed.page_starts) == 500
    assert "Inspection of Longshire" not in parsed.text and "of 500" not in parsed.text
    at = parsed.text.index("service on page 321 ")
    assert page_at(parsed.page_starts, at) == 321
    # the templated paragraph's short last line has the same shape on every page: it stays
    assert f"most of the {321 + 12} children, although {321 % 9 + 2} reviews were late." in parsed.text


def test_a_judgement_heading_wrapped_over_two_lines_opens_its_own_line() -> None:
    """A judgement heading that wraps ("... care leavers: requires" / "improvement to be
    good", "... with children and" / "families: good") read as the paragraph going on, and was
    glued to the end of the one before, so its section never opened (a CLI review saw care
    leavers' sentences labelled "children in care: inadequate"; 9 headings in 7 reports)."""
    grades = ("Requires improvement to be good", "Good", "Outstanding", "Inadequate")
    wide = "x" * 90
    body = ["30. There is effective recruitment of adopters that meets the needs of children,",
            "but assessments do not always consider how vulnerabilities will be mitigated.",
            "The experiences and progress of care leavers: requires",
            "improvement to be good",
            "31. Children in care do not have the opportunity to build trusting relationships",
            "with their personal adviser before they turn 18, inspectors found in most cases.",
            "The impact of leaders on social work practice with children and",
            "families: good",
            "32. Leaders know their services well."]
    pages = [_page(n, [wide, *body] if n == 2 else [wide, "Some text."]) for n in (1, 2, 3, 4)]
    text = clean_pages(pages, grades).text
    assert "will be mitigated.\nThe experiences and progress of care leavers: requires " \
           "improvement to be good\n31. Children" in text
    assert "in most cases.\nThe impact of leaders on social work practice with children and " \
           "families: good\n32." in text
    # A sentence going on after a full line still runs on.
    assert "the needs of children, but assessments" in text


def test_a_long_question_heading_is_a_line_of_its_own() -> None:
    """"What is it like to be a child or young person with SEND in this area?" is as long as
    a line of text: it was glued to the paragraphs either side (seven of eight SEND reports)
    and quoted as its own answer. A question opening with a question word after a sentence's
    end heads what follows."""
    wide = "x" * 70
    body = ["The local area partnership commissions a pupil referral unit for these children.",
            "What is it like to be a child or young person with SEND in this area?",
            "Children and young people are valued and visible in their communities."]
    pages = [_page(n, [wide, *body] if n == 2 else [wide, "Some text."]) for n in (1, 2, 3, 4)]
    text = clean_pages(pages).text
    assert "these children.\nWhat is it like to be a child or young person with SEND in this " \
           "area?\nChildren and young people" in text


def test_lines_pdfium_read_as_one_do_not_set_the_width() -> None:
    """PDFium reads two printed lines as one now and then (160 characters among lines of 85).
    On over half of a report's pages (Surrey's area SEND report) such a line set the typical
    width, every full line then read as short, and a sentence broke at each line end before a
    capital: "... Care Board (ICB) and NHS" / "Frimley ICB are jointly responsible ..."."""
    merged = ("Children and young people in the area have co-produced many of the recent changes "
              "across the partnership, for example the new strategy for autism and the offer.")
    body = ["Surrey County Council, NHS Surrey Heartlands Integrated Care Board (ICB) and NHS",
            "Frimley ICB are jointly responsible for the planning and commissioning of services",
            "for children and young people with SEND in the area, and they meet every month."]
    assert len(merged) > 1.5 * max(len(b) for b in body)
    pages = [_page(n, [merged, *body] if n < 4 else body) for n in (1, 2, 3, 4)]
    text = clean_pages(pages).text
    assert "(ICB) and NHS Frimley ICB are jointly responsible" in text, text
