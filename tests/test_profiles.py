"""Report-family profiles on the 30 real Ofsted PDFs bundled in corpus/ofsted/ (checked against
their SOURCES.tsv), every profile file's own examples, and no running line left in any chunk."""

from __future__ import annotations

import csv
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from ingest.parse import ParsedFile, parse_file
from ingest.pdftext import page_at
from ingest.profiles import detect, profiles, read_family, resolve_organisation
from ingest.structure import council_key, extract_structure

FOLDER = Path(__file__).resolve().parents[1] / "corpus" / "ofsted"
ROWS = list(csv.DictReader((FOLDER / "SOURCES.tsv").open(encoding="utf-8"), delimiter="\t"))
FAMILY = {"ilacs-full": "ofsted-ilacs", "ilacs-short": "ofsted-ilacs", "sif": "ofsted-sif",
          "area-send": "ofsted-area-send", "focused-visit": "ofsted-visit-letter"}


@cache
def _parsed(name: str) -> ParsedFile:
    return parse_file(FOLDER / name)


def test_every_profile_file_loads_and_its_example_reports_are_recognised() -> None:
    """Each family file names two examples; those that are bundled reports ("file.pdf: ...")
    must be recognised as that family."""
    import tomllib

    from ingest.profiles import HERE

    names = [p.name for p in profiles()]
    assert len(names) == len(set(names)) >= 5
    for p in profiles():
        assert p.recognise and p.organisation, p.name
    checked = 0
    for path in sorted(HERE.glob("*.toml")):
        d = tomllib.loads(path.read_text(encoding="utf-8"))
        assert len(d["examples"]) >= 2 and len(d["why"]) > 20, path.name
        for ex in d["examples"]:
            name = ex.split(":", 1)[0]
            if (FOLDER / name).is_file():
                found = detect(_parsed(name).text)
                assert found is not None and found.name == d["name"], (path.name, name)
                checked += 1
    assert checked >= 8


@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_pdf_family_organisation_dates_and_overall_judgement(row: dict[str, str]) -> None:
    p = _parsed(row["file"])
    st = extract_structure(p.text, p.headings, None, None, p.page_starts)
    assert st.family == FAMILY[row["kind"]]
    assert st.page_starts and len(st.page_starts) == int(row["pages"])
    expected = resolve_organisation(row["organisation"])
    assert expected and council_key(st.council) == council_key(expected), st.council
    assert " ".join((st.inspection_dates or "").split()) == " ".join(row["inspection_dates"].split())
    assert (st.overall_rating or "") == row["overall_judgement"]
    if st.overall_rating:  # the grade is quoted from page 1, where the report states it
        s, e = st.overall_rating_span or (0, 0)
        assert page_at(st.page_starts, s) == 1
        assert st.overall_rating.split()[-1].lower() in p.text[s:e].lower()


@pytest.mark.parametrize("row", [r for r in ROWS if r["kind"] in ("ilacs-full", "ilacs-short", "sif")],
                         ids=lambda r: r["file"])
def test_every_page_one_judgement_is_read(row: dict[str, str]) -> None:
    p = _parsed(row["file"])
    facts = read_family(p.text, p.page_starts)
    assert facts is not None
    # ILACS: four judgements + overall effectiveness; SIF: five numbered judgements
    assert len(facts.judgements) == 5
    for j in facts.judgements:
        assert page_at(p.page_starts, j.start) == 1
        line = p.text[j.start:j.end]
        assert line.rstrip().endswith(j.grade) or line.lower().endswith(j.grade.lower()), line


def _raw_running_lines(path: Path) -> set[str]:
    """Lines that open or close at least half the pages, read independently with pypdf."""
    import pypdf

    pages = [pg.extract_text() or "" for pg in pypdf.PdfReader(str(path)).pages]
    seen: Counter[str] = Counter()
    for t in pages:
        lines = [" ".join(ln.split()) for ln in t.split("\n") if ln.strip()]
        seen.update({ln for ln in lines[:2] + lines[-2:] if len(ln) >= 12})
    return {ln for ln, n in seen.items() if n >= max(3, len(pages) // 2)}


@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_no_running_header_or_footer_inside_any_chunk(row: dict[str, str]) -> None:
    from ingest.chunk import chunk_report
    from reportqa.records import Report

    p = _parsed(row["file"])
    st = extract_structure(p.text, p.headings, None, None, p.page_starts)
    report = Report.of(st, report_id="r", text=p.text, source="s", path="p")
    chunks = chunk_report(report)
    text = "\n".join(c.text for c in chunks)
    for line in _raw_running_lines(FOLDER / row["file"]):
        # Left in, a running line would be in the text once per page; page 1's own title
        # or dates line may say the same words once.
        assert text.count(line) <= 1, line
    # page numbers glued to sentences ("... 2024 5 group activities") are gone too
    assert not re.search(r"children’s services \d{1,2} (?:to|and) \d{1,2} \w+ 20\d\d \d", p.text)


def test_detect_leaves_cqc_pages_to_the_cqc_reader() -> None:
    corpus = FOLDER.parent
    for f in sorted(corpus.glob("*.txt")):
        assert detect(f.read_text(encoding="utf-8")) is None, f.name


def test_asked_as_names_judgements_of_its_family_by_words_their_names_lack() -> None:
    """A profile's ``asked_as`` row adds names people ask a judgement by: the key must be one
    of the family's judgements, and a name it adds must not be the judgement's own name (as
    the retriever stems them), or the row does nothing. One word of a longer name is allowed:
    alone it names the judgement fully ("leadership" for "Leadership, management and
    governance", which a question naming leadership alone covers one word in three of)."""
    from rag.retrieve import tokenize

    rows = [(p, j, w) for p in profiles() for j, ws in p.asked_as.items() for w in ws]
    assert rows
    for p, judgement, word in rows:
        assert judgement in p.judgements, (p.name, judgement)
        assert set(tokenize(word)) != set(tokenize(judgement)), (p.name, word)


def test_grade_words_name_a_grade_of_their_family_and_no_other() -> None:
    """A profile's ``grade_words`` row adds phrases a question names a grade by: the key must
    be one of the family's grades, and a list question using the phrase asks that grade
    alone ("which areas got the positive outcome?")."""
    from rag.grades import listed_grades

    rows = [(p, g, w) for p in profiles() for g, ws in p.grade_words.items() for w in ws]
    assert rows
    for p, grade, phrase in rows:
        assert grade in (*p.grades, *p.outcomes), (p.name, grade)
        assert listed_grades(f"which councils got the {phrase}?") == ((grade,), ""), phrase


def test_organisations_resolve_to_the_gazetteer() -> None:
    assert resolve_organisation("Kingston upon Hull City Council") == "Kingston upon Hull"
    assert resolve_organisation("Medway Local Area Partnership") == "Medway"
    assert resolve_organisation("Cumberland Council") == "Cumberland"
    assert resolve_organisation("Nowhere Fictional Trust") is None


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["file"])
def test_every_report_lists_what_needs_to_improve(row: dict[str, str]) -> None:
    """The list under 'What needs to improve?' (or the family's heading for it) is read item
    by item: whole lines, none of them the heading or running text after the list."""
    from ingest.profiles import listed_items, profile_named

    p = _parsed(row["file"])
    prof = profile_named(FAMILY[row["kind"]])
    assert prof is not None
    items = listed_items(p.text, prof.lists["improve"])
    if row["kind"] == "focused-visit":  # a letter may have no such list, or a one-item list
        has_heading = any(h.rstrip("?") in p.text for h in prof.lists["improve"])
        assert bool(items) == has_heading, row["file"]
    else:
        assert len(items) >= 2, row["file"]
    for s, e in items:
        item = p.text[s:e]
        assert _one_item(item) and len(item.split()) >= 4, item
        assert p.text[s - 1] in "\n ◼•"  # starts right after its bullet
    if row["kind"] == "sif":  # numbered recommendations, some under a topic title first
        assert all(re.match(r"\d{1,2}\. [A-Z]", p.text[s:e]) for s, e in items), row["file"]


def _one_item(item: str) -> bool:
    """One line, or a lead-in ending with a colon and the bullets that finish it (with at
    most a short lead-in line of its own: "This is to ensure that:")."""
    lines = item.split("\n")
    return len(lines) == 1 or (any(ln.endswith(":") for ln in lines[:-1]) and all(
        re.match(r"[◼•●▪■◦‣−–—-]", ln) or ln.endswith(":") for ln in lines[1:]))


def test_a_recommendation_table_is_read_row_by_row() -> None:
    """An area SEND report prints its recommendations as a table: the responsible body's
    cell before each row (its words perhaps reordered), a lead-in ending with a colon and
    the bullets that finish it, paragraphs running several recommendations together. Each
    recommendation is one item; the list ends at the next title."""
    from ingest.profiles import listed_under

    text = ("Areas for priority action\nResponsible body Areas for priority action\n"
            "Exampleshire County Council and NHS Example ICB\n"
            "Leaders should improve the timeliness of plans for children with SEND.\n"
            "NHS Example ICB and Exampleshire\nCounty Council\n"
            "Leaders should reduce the waits for autism assessments across the area. This is "
            "to meet the needs of all children.\n"
            "Exampleshire County Council and NHS Example ICB\n"
            "Leaders across the partnership should urgently improve:\n"
            "• the quality of advice from professionals\n• social care contributions.\n"
            "Areas for improvement\n"
            "Leaders should improve communication with families about the local offer. The "
            "partnership should update the local offer regularly. This will help parents.\n"
            "Leaders should continue to improve the quality of EHC plans.\n"
            "This is to ensure that:\n• plans are clear;\n• outcomes are measurable.\n"
            "Local area partnership details\n")
    _, rows = listed_under(text, ("Areas for priority action",))
    assert [text[s:e] for s, e in rows] == [
        "Leaders should improve the timeliness of plans for children with SEND.",
        "Leaders should reduce the waits for autism assessments across the area. This is to "
        "meet the needs of all children.",
        "Leaders across the partnership should urgently improve:\n"
        "• the quality of advice from professionals\n• social care contributions."]
    _, items = listed_under(text, ("Areas for improvement",))
    assert [text[s:e] for s, e in items] == [
        "Leaders should improve communication with families about the local offer.",
        "The partnership should update the local offer regularly. This will help parents.",
        "Leaders should continue to improve the quality of EHC plans.\nThis is to ensure "
        "that:\n• plans are clear;\n• outcomes are measurable."]


def test_a_bulleted_list_ends_where_numbered_paragraphs_begin() -> None:
    """A PDF may run the next section's title into the last bullet: the numbered paragraphs
    after it are the report going on, not more items."""
    from ingest.profiles import listed_items

    text = ("What needs to improve?\n◼ The timeliness of plans.\n"
            "◼ The quality of direct work. The experiences of children: good\n"
            "1. Children receive timely help.\n2. Assessments are good.\n")
    items = [text[s:e] for s, e in listed_items(text, ("What needs to improve?",))]
    # (The title run into the last bullet stays in it: the list reader cannot tell it from
    # the item's own second sentence.)
    assert len(items) == 2 and items[0] == "The timeliness of plans."
    assert items[1].startswith("The quality of direct work.")


@pytest.mark.parametrize("row", [r for r in ROWS if r["kind"] == "area-send"],
                         ids=lambda r: r["file"])
def test_area_send_recommendations_printed_as_paragraphs_are_the_items(row: dict[str, str]) -> None:
    """Under 'Areas for improvement' (and 'Areas for priority action') an area SEND report
    prints its recommendations as paragraphs: each item is a whole recommendation, starting
    with a capital and ending a sentence (or opening its own bullets), never the table's
    header, the responsible body's name or the next section's title."""
    from ingest.profiles import listed_under

    text = _parsed(row["file"]).text
    heading, items = listed_under(text, ("Areas for improvement",))
    assert heading == "Areas for improvement" and items, row["file"]
    first = text[items[0][0]:items[0][1]]
    assert first[0].isupper() and re.search(r"\bshould\b|\bneed to\b", first), first
    for s, e in items:
        item = text[s:e]
        assert _one_item(item) and len(item.split()) >= 2, item
        assert "Local area partnership details" not in item and "Responsible body" not in item


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["file"])
def test_a_family_findings_heading_is_in_every_report_of_it_followed_by_running_text(
        row: dict[str, str]) -> None:
    """A profile's ``findings`` heading (where "why?" after the overall grade reads the
    inspectors' summary) is printed by every bundled report of that family, with sentences
    of running text below it (after at most a lead-in line and a sub-heading: "Children's
    services in Hull require improvement because:"), not only more headings. Its own line
    counts first, as the answerer reads it: a contents list names it too ("Summary of
    findings 3") with only headings below."""
    from ingest.profiles import profile_named

    prof = profile_named(FAMILY[row["kind"]])
    assert prof is not None
    if not prof.findings:
        return
    text = _parsed(row["file"]).text
    own = (re.search(rf"^{re.escape(h)}[ \t]*$", text, re.M) for h in prof.findings)
    at = next((m.end() for m in own if m),
              next((text.find(h) + len(h) for h in prof.findings if h in text), -1))
    assert at >= 0, (row["file"], prof.findings)
    after = text[at:at + 400]
    assert re.search(r"[A-Z][^\n]{40,}?[.!]", after), after


def test_a_list_heading_the_question_names_is_read_first(tmp_path: Path) -> None:
    """'Areas for priority action' asks for that list, not the first one the report prints;
    a question that names no heading gets the family's first list."""
    from ingest.pipeline import ingest
    from rag.answer import answer
    from rag.engine import Engine
    from reportqa.settings import Settings

    settings = Settings(index_dir=tmp_path / "idx", embedder="hash")
    ingest([FOLDER / "ofsted-send-lancashire-2025.pdf"], settings)
    eng = Engine.load(settings)
    shown = {q: answer(q, settings, engine=eng).text for q in (
        "What are the areas for priority action for Lancashire's SEND partnership?",
        "What are the areas for improvement for Lancashire's SEND partnership?",
        "What does Lancashire's SEND partnership need to do better?")}
    expected = ["Areas for priority action:", "Areas for improvement:",
                "What does the area partnership need to do better?"]
    assert [t.startswith(f"Lancashire: {h} ") for t, h in zip(shown.values(), expected,
                                                              strict=True)] == [True] * 3, shown
    assert "shared strategic governance" in next(iter(shown.values()))
    # "Need to improve" names no heading: the most urgent list answers (two reviews saw the
    # README's "What does Bury need to improve?" leave out its priority actions).
    assert answer("What does Lancashire need to improve?", settings, engine=eng).text \
        .startswith("Lancashire: Areas for priority action: ")
    # An item too long to quote whole is cut after a whole sentence, or says it is cut
    # ("... to better meet the needs of … [1]."), never left hanging on "of [1]".
    for q in ("What is Lancashire's SEND partnership doing well?",
              "What does Lancashire's SEND partnership need to do better?"):
        body = answer(q, settings, engine=eng).text
        assert not re.search(r"\b(?:of|the|to|and|in|with|for) \[\d+\]", body), body


def test_hyphens_at_line_wraps_are_hyphens() -> None:
    """PDFium marks a hyphen where a line was wrapped with U+FFFE; the text keeps the hyphen."""
    text = _parsed("ofsted-send-surrey-2023.pdf").text
    assert "\ufffe" not in text
    assert "co-produced" in text and "multi-agency" in text


def test_a_text_about_inspection_reports_is_not_one() -> None:
    """The Ofsted folder's README names the families and their outcomes ("Area SEND inspection
    of ...", "Typically positive experiences and outcomes") but no organisation inspected:
    read as a report it got family ofsted-area-send and an invented outcome, listed among the
    judgements. A family is read only with its organisation."""
    assert read_family((FOLDER / "README.md").read_text(encoding="utf-8")) is None
    first = _parsed("ofsted-send-bury-2024.pdf")
    facts = read_family(first.text)
    assert facts is not None and facts.council == "Bury"


def test_recommendations_grouped_under_titles_are_one_list_that_ends_at_the_next_list() -> None:
    """Hull's recommendations sit under "Priority and immediate action" and "Areas for
    improvement", each grouped by topic titles ("The quality of social work plans"), numbered
    1-20 through them: one list (an answer started at 6, leaving out the priority actions).
    Its strengths, numbered on from 21 under no topic title, end before the next section."""
    from ingest.profiles import listed_under, profile_named

    text = _parsed("ofsted-sif-hull-2015.pdf").text
    prof = profile_named("ofsted-sif")
    assert prof is not None
    numbers = {kind: [int(text[s:e].split(".")[0]) for s, e in
                      listed_under(text, prof.lists[kind])[1]] for kind in ("improve", "strengths")}
    assert numbers == {"improve": list(range(1, 21)), "strengths": list(range(21, 36))}


def test_a_list_question_asking_for_a_number_of_items_gets_that_many(tmp_path: Path) -> None:
    """"Name two areas for improvement": two items, each cut to its share of the words when
    long (in the report's order one long item left room for no second); "list three
    recommendations ofsted made to ..." quotes the first three, not the one item that happens
    to use the asking words ("made"). Without a number, as many whole items as fit."""
    from ingest.pipeline import ingest
    from rag.answer import answer
    from rag.engine import Engine
    from reportqa.settings import Settings

    settings = Settings(index_dir=tmp_path / "idx", embedder="hash")
    ingest([FOLDER / "ofsted-sif-sandwell-2018.pdf", FOLDER / "ofsted-send-telford-and-wrekin-2023.pdf"],
           settings)
    eng = Engine.load(settings)
    two = answer("name two areas for improvement for telford and wrekin send", settings, engine=eng)
    assert len(two.citations) == 2 and len(re.sub(r"\[\d+\]", "", two.text).split()) <= 75, two.text
    three = answer("list three recommendations ofsted made to sandwell", settings, engine=eng)
    assert [c.quote.split()[0] for c in three.citations] == ["1.", "2.", "3."], three.text
    plain = answer("list the recommendations ofsted made to sandwell", settings, engine=eng)
    assert plain.citations[0].quote.startswith("1.") and plain.text.endswith("The report lists more.")


@pytest.mark.parametrize("prof", [p for p in profiles() if p.sections], ids=lambda p: p.name)
def test_a_profile_section_heading_is_printed_on_a_line_of_its_own_in_two_of_its_reports(
        prof) -> None:  # type: ignore[no-untyped-def]
    """Each ``sections`` row is a heading the family's reports print, not one report's line:
    at least two bundled reports of that family print it on a line of its own."""
    reports = [r["file"] for r in ROWS if FAMILY[r["kind"]] == prof.name]
    for heading in prof.sections:
        own = re.compile(rf"^[ \t]*{re.escape(heading)}[ \t]*[?:]?[ \t]*$", re.M | re.I)
        printing = [f for f in reports if own.search(_parsed(f).text)]
        assert len(printing) >= 2, (prof.name, heading, printing)


@pytest.fixture(scope="module")
def send_engine(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from ingest.pipeline import ingest
    from rag.engine import Engine
    from reportqa.settings import Settings

    settings = Settings(index_dir=tmp_path_factory.mktemp("send"), embedder="hash")
    ingest([FOLDER / "ofsted-send-bury-2024.pdf", FOLDER / "ofsted-send-surrey-2023.pdf"],
           settings)
    return Engine.load(settings)


def test_a_quote_of_an_area_send_report_names_the_heading_printed_above_it(send_engine) -> None:  # type: ignore[no-untyped-def]
    """A citation's section is the report's own heading above the quote: the chunker filed
    Bury's findings under "Information about the local area partnership" and a table cell
    ("Manchester ICB"), and all of Surrey's under "Inspection outcome"."""
    from ingest.profiles import profile_named
    from rag.evidence import cite_span

    prof = profile_named("ofsted-area-send")
    assert prof is not None
    st = send_engine.retriever.state()
    for rid in ("ofsted-send-bury-2024", "ofsted-send-surrey-2023"):
        text = send_engine.retriever.report_text(rid)
        labels = {cite_span(1, rid, send_engine, st.chunks[i].start, st.chunks[i].end).section
                  for i in st.by_report[rid]}
        assert labels - {"Introduction"} <= set(prof.headings), labels - set(prof.headings)
        assert len(labels) >= 8, labels
    text = send_engine.retriever.report_text("ofsted-send-bury-2024")
    at = text.index("The average waiting time for speech and language therapy is 75 weeks")
    quote = cite_span(1, "ofsted-send-bury-2024", send_engine, at, at + 60)
    assert quote.section == "What does the area partnership need to do better?", quote.section
