"""Every citation of a PDF carries the right page: over every citation that the open blind
questions on the bundled Ofsted PDFs produce, the quote is on the page it names, read
independently from pypdf's raw text of that page."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from ingest.pipeline import ingest
from ingest.profiles import addressee, inspection_team, partnership_people, profile_named
from rag.answer import answer
from rag.engine import Engine
from rag.evidence import block_around
from reportqa.records import Chunk
from reportqa.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "corpus" / "ofsted"
QUESTIONS = [q for q in (json.loads(ln) for ln in
                         (ROOT / "evals" / "blind" / "open.jsonl").read_text().splitlines())
             if (q.get("file") or "").endswith(".pdf")]


@pytest.fixture(scope="module")
def eng(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    settings = Settings(index_dir=tmp_path_factory.mktemp("pdf-index"), embedder="hash")
    assert ingest([FOLDER], settings).reports_total == 30
    return Engine.load(settings)


@cache
def _raw_pages(path: str) -> tuple[str, ...]:
    import pypdf

    return tuple(_words(p.extract_text() or "") for p in pypdf.PdfReader(path).pages)


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def test_every_blind_question_citation_is_on_its_page(eng: Engine) -> None:
    assert len(QUESTIONS) >= 100
    checked = 0
    for q in QUESTIONS:
        for c in answer(q["question"], eng.settings, engine=eng).citations:
            row = eng.retriever.report(c.report_id)
            assert row is not None and c.page is not None, (q["id"], c.report_id)
            assert eng.retriever.report_text(c.report_id)[c.start:c.end] == c.quote
            pages = _raw_pages(row.path)
            last = c.page_end or c.page
            on = " ".join(pages[c.page - 1 : last])
            # the quote's opening and closing words are printed on the pages it names
            words = _words(c.quote).split()
            head, tail = " ".join(words[:5]), " ".join(words[-5:])
            assert head in on or c.page_end, (q["id"], c.page, c.quote[:80])
            assert tail in on or head in on, (q["id"], c.page, c.quote[:80])
            assert head in pages[c.page - 1] or " ".join(words[:2]) in pages[c.page - 1], (
                q["id"], c.page, c.quote[:80])
            checked += 1
    assert checked >= 100


def test_judgements_json_lists_every_page_one_judgement(eng: Engine) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "ui.cli", "judgements", "--json",
                          "--index", str(eng.settings.index_dir)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={"PATH": "/usr/bin:/bin", "REPORTQA_EMBEDDER": "hash"})
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) >= 40
    for r in rows:
        text = eng.retriever.report_text(r["report_id"])
        assert text[r["start"]:r["end"]] == r["quote"] and r["page"] == 1
        assert r["grade"].split()[-1].lower() in r["quote"].lower()


def test_which_councils_were_judged_inadequate_is_exact_and_cited(eng: Engine) -> None:
    import csv

    rows = csv.DictReader((FOLDER / "SOURCES.tsv").open(encoding="utf-8"), delimiter="\t")
    expected = {r["file"].removesuffix(".pdf") for r in rows if r["overall_judgement"] == "Inadequate"}
    a = answer("Which councils' children's services were judged inadequate?", eng.settings,
               engine=eng)
    assert not a.abstained and a.answerer == "table"
    assert {c.report_id for c in a.citations} == expected
    assert all("inadequate" in c.quote.lower() for c in a.citations)


@pytest.mark.parametrize("question, report, grade", [
    ("What did Ofsted grade Doncaster's services for care leavers?", "ofsted-ilacs-doncaster-2025",
     "Requires improvement to be good"),
    ("how were kids in care in knowsley judged", "ofsted-ilacs-knowsley-2025",
     "Requires improvement to be good"),
    ("What overall grade did Cumberland get?", "ofsted-ilacs-cumberland-2024", "Good"),
    ("What was the outcome of Rotherham's SEND inspection?", "ofsted-send-rotherham-2024",
     "Typically positive experiences and outcomes"),
    # "leadership" is how people name the leaders judgement (the ILACS profile's asked_as).
    ("what grade did havering get for leadership", "ofsted-ilacs-havering-2024", "Inadequate"),
    ("What grade did Doncaster get for leadership?", "ofsted-ilacs-doncaster-2025", "Good"),
    # "how did X do for ..." asks the judgement (questions.toml asks_grade).
    ("how did knowsley do for care leavers", "ofsted-ilacs-knowsley-2025", "Inadequate"),
    ("how did cambridgeshire do for care leavers in the 2024 inspection",
     "ofsted-ilacs-cambridgeshire-2024", "Requires improvement to be good"),
    # A month names when, not what: "dec 2024" is not a judgement's topic.
    ("lancashire send inspection result dec 2024", "ofsted-send-lancashire-2025",
     "Widespread and/or systemic failings"),
    ("what grade did cambridgeshire get in the march 2024 inspection",
     "ofsted-ilacs-cambridgeshire-2024", "Requires improvement to be good"),
    # "Young people leaving care" are the care leavers (the profiles' asked_as).
    ("What grade did Ofsted give Redbridge for how well it supports young people leaving care?",
     "ofsted-sif-redbridge-2016", "Experiences and progress of care leavers Requires improvement"),
    ("what did ofsted rate doncaster for leaving care", "ofsted-ilacs-doncaster-2025",
     "The experiences and progress of care leavers: Requires improvement to be good"),
])
def test_judgement_questions_are_answered_from_page_one(eng: Engine, question: str, report: str,
                                                        grade: str) -> None:
    a = answer(question, eng.settings, engine=eng)
    assert grade in a.text and a.citations[0].report_id == report
    assert a.citations[0].page == 1
    # A judgement table's row is quoted as printed; an outcome stated as a sentence (area
    # SEND) is named by its grade, then quoted as the inspectors worded it.
    row = " ".join(a.citations[0].quote.split()).rstrip(".")
    assert row in a.text, (row, a.text)
    if len(row.split()) > 20:
        assert a.text.index(grade) < a.text.index(f"words: \u201c{row}\u201d [1].")


@pytest.mark.parametrize("question, report, headline", [
    ("oxfordshire childrens services ofsted rating 2024?", "ofsted-ilacs-oxfordshire-2024",
     "are good across all aspects of the inspection framework"),
    # A 2016 report: its summary opens under "Executive summary", below a footnote.
    ("What overall grade did Ofsted give Redbridge children's services?",
     "ofsted-sif-redbridge-2016", "Children\u2019s services in Redbridge are good and improving"),
    # Its summary opens with the grade sentence again: the next sentence follows.
    ("sandwell children's services ofsted result 2018", "ofsted-sif-sandwell-2018",
     "Since the last inspection, some services have deteriorated"),
    # One judgement of several: the summary's sentence that names it.
    ("How did Ofsted rate help and protection in Redbridge?", "ofsted-sif-redbridge-2016",
     "with a \u2018front door\u2019 service that is outstanding"),
])
def test_one_grade_is_followed_by_the_reports_own_word_on_it(eng: Engine, question: str,
                                                             report: str, headline: str) -> None:
    a = answer(question, eng.settings, engine=eng)
    assert [c.report_id for c in a.citations] == [report, report], a.text
    grade, said = a.citations
    assert headline in " ".join(said.quote.split()) and headline in a.text
    assert said.start > grade.end and a.text.endswith("[2].")
    assert "Ofsted produces this report" not in a.text
    assert len(a.text.split()) <= 75


@pytest.mark.parametrize("question, visit_question, report, date", [
    ("What date is the Ofsted letter to Kent dated?", "when did ofsted visit kent",
     "ofsted-fv-kent-2024", "27 February 2024"),
    ("when was ofsted's focused visit letter to dudley sent",
     "what date did ofsted visit dudley, according to the letter?", "ofsted-fv-dudley-2020",
     "27 November 2020"),
])
def test_a_letters_date_is_the_line_at_its_top_not_the_visit(
        eng: Engine, question: str, visit_question: str, report: str, date: str) -> None:
    """A visit letter is written weeks after the visit: asked when it was sent, its own date
    answers; asked when the visit was, the visit's dates do."""
    a = answer(question, eng.settings, engine=eng)
    assert a.text.endswith(f"is dated {date} [1].") and len(a.citations) == 1, a.text
    assert a.citations[0].report_id == report and a.citations[0].quote == date
    assert a.citations[0].page == 1
    visit = answer(visit_question, eng.settings, engine=eng)
    assert visit.citations and visit.citations[0].report_id == report
    assert date not in visit.text, visit.text


def test_every_grades_headline_reads_alone(eng: Engine) -> None:
    """Asked each graded council's overall grade, the sentence quoted after the grade (when
    there is one) is a whole sentence of running text: not a list item, not one pointing back
    ("This leads to delays ..."), not the grade in other words ("Children's services in
    Sandwell are inadequate.")."""
    councils = {j.council for j in eng.derived().judgements
                if j.family != "cqc-la-assessment" and j.council}
    assert len(councils) >= 20
    followed = 0
    for council in sorted(councils):
        a = answer(f"What overall grade did {council} get from its inspection?",
                   eng.settings, engine=eng)
        assert a.answerer == "table", (council, a.text)
        for said in a.citations[1:]:
            quote = " ".join(said.quote.split())
            followed += 1
            assert quote[-1] in ".!?\u201d\u2019" and quote[0].isupper(), (council, quote)
            assert not re.match(r"(This|It|These|They)\b", quote), (council, quote)
            assert not re.fullmatch(rf"Children\u2019s services in {council} are \w+\.", quote)
    assert followed >= 15


def test_outcomes_of_several_councils_are_named_by_grade_when_their_sentences_do_not_fit(
        eng: Engine) -> None:
    a = answer("what was the outcome of bury, medway and lancashire's send inspections",
               eng.settings, engine=eng)
    assert len(a.citations) == 3 and "in the report" not in a.text
    assert len(a.text.split()) <= 75


@pytest.mark.parametrize("question, report", [
    ("what was the outcome of kent's focused visit", "ofsted-fv-kent-2024"),
    ("whats ofsteds overall verdict on dudley childrens services", "ofsted-fv-dudley-2020"),
    ("how did wolverhampton do in its ofsted visit", "ofsted-fv-wolverhampton-2024"),
    # Asked for a summary or what it found, as of a graded report (CLI review: "don't say",
    # and the "Headline findings" heading line quoted as a finding).
    ("Summarise Blackpool's report", "ofsted-fv-blackpool-2025"),
    ("what did the focused visit to worcestershire find", "ofsted-fv-worcestershire-2025"),
])
def test_a_grade_asked_of_an_ungraded_visit_says_so_and_quotes_its_findings(
        eng: Engine, question: str, report: str) -> None:
    """A focused visit gives no grade: the answer says so and quotes the sentences its
    findings open with (under "Headline findings", or "Overview" in 2020's letters)."""
    from rag.verify import word_count

    a = answer(question, eng.settings, engine=eng)
    assert a.outcome == "answer" and "was not graded; its findings open:" in a.text, a.text
    assert {c.report_id for c in a.citations} == {report}
    text = eng.retriever.report_text(report)
    heading = next(text.index(h) for h in ("Headline findings", "Overview") if h in text)
    assert heading < a.citations[0].start < heading + 40
    assert all(text[c.start:c.end] == c.quote and c.page for c in a.citations)
    assert word_count(a.text) <= 75


def test_asked_for_an_ungraded_visits_grade_the_answer_is_that_there_is_none(eng: Engine) -> None:
    a = answer("What overall grade did Ofsted give Blackpool children's services after its "
               "focused visit?", eng.settings, engine=eng)
    assert a.abstained and a.text.startswith("The indexed reports give no grade for Blackpool")
    assert a.citations and all(c.see_also for c in a.citations)
    assert {c.report_id for c in a.citations} == {"ofsted-fv-blackpool-2025"}


def test_a_visit_is_not_read_out_for_a_grade_of_something_narrower_or_a_graded_council(
        eng: Engine) -> None:
    narrower = answer("how did ofsted rate kent's care leavers", eng.settings, engine=eng)
    assert "was not graded" not in narrower.text
    past = answer("When was Worcestershire children's services judged inadequate by Ofsted?",
                  eng.settings, engine=eng)
    assert "not graded" not in past.text and "give no grade" not in past.text
    graded = answer("how did ofsted rate doncaster", eng.settings, engine=eng)
    assert "was not graded" not in graded.text and "Overall effectiveness" in graded.text


def test_compare_two_send_outcomes_cites_each(eng: Engine) -> None:
    a = answer("Compare Medway and Bury's SEND inspection outcomes", eng.settings, engine=eng)
    assert "Inconsistent experiences and outcomes" in a.text
    assert "Widespread and/or systemic failings" in a.text
    assert [c.report_id for c in a.citations] == ["ofsted-send-medway-2024", "ofsted-send-bury-2024"]


@pytest.mark.parametrize("question, report", [
    ("List the areas for improvement in Doncaster's 2025 Ofsted children's services report.",
     "ofsted-ilacs-doncaster-2025"),
    ("what does newham need to do better for kids with send", "ofsted-send-newham-2024"),
    ("What did Ofsted say Blackpool needs to improve after its focused visit?",
     "ofsted-fv-blackpool-2025"),
])
def test_list_questions_quote_the_reports_own_list(eng: Engine, question: str, report: str) -> None:
    a = answer(question, eng.settings, engine=eng)
    assert not a.abstained and a.citations
    assert {c.report_id for c in a.citations} == {report}
    assert len(a.text.split()) <= 75  # ~55 words of items, the heading and the tail
    for c in a.citations:
        assert eng.retriever.report_text(c.report_id)[c.start:c.end] == c.quote
        assert f"[{c.n}]" in a.text


@pytest.mark.parametrize("question, heading, item", [
    # The item the question's own words name comes first, wherever the report lists it.
    ("What did Ofsted recommend Sandwell do to improve its adoption paperwork and panel?",
     "Recommendations", "adoption panel"),
    # The heading whose words the question uses most: "improve", not "need to do better";
    # no item named, so the report's first item ("send" names the family, not an item).
    ("list the things newham needs to improve from its send inspection",
     "Areas for improvement", "reduce the lengthy waits"),
    ("what are the priority actions for bury council and the ICB after the send inspection?",
     "Areas for priority action", ""),
])
def test_a_list_question_gets_the_list_and_the_item_it_names(eng: Engine, question: str,
                                                             heading: str, item: str) -> None:
    a = answer(question, eng.settings, engine=eng)
    assert a.answerer == "table" and f": {heading}" in a.text, a.text
    assert item in a.citations[0].quote


@pytest.mark.parametrize("question, council", [
    ("name one thing oxfordshire childrens services does really well according to ofsted",
     "Oxfordshire"),
    ("What is actually working well when a concern about a child is first reported in Sandwell?",
     "Sandwell"),
])
def test_a_report_with_no_list_of_strengths_answers_with_those_it_names(
        eng: Engine, question: str, council: str) -> None:
    """Asked what a council does well, a report with no list of strengths answers with the
    sentences that name one ("... is a strength"), each cited on its page."""
    a = answer(question, eng.settings, engine=eng)
    assert a.answerer == "table" and a.text.startswith(f"{council}: Named as a strength:")
    for c in a.citations:
        assert re.search(r"\bstrengths?\b", c.quote) and c.page is not None


@pytest.mark.parametrize("question", [
    "who is good at getting kids views into there ehcp in lancashire",
    "In Lancashire, what happens to health professionals when families want medication "
    "recommended by a private ADHD service?",
])
def test_who_and_what_happens_questions_are_not_answered_with_a_list(eng: Engine,
                                                                     question: str) -> None:
    """'Good at' and 'recommended' are a list's words, but these ask for a name and a
    consequence: they are searched."""
    assert answer(question, eng.settings, engine=eng).answerer != "table"


def test_which_judgement_had_a_named_grade(eng: Engine) -> None:
    """"Which area was graded requires improvement?" lists the judgements with that grade."""
    a = answer("In Cumberland's 2024 inspection, which area was graded requires improvement?",
               eng.settings, engine=eng)
    assert "children who need help and protection" in a.text
    assert "Requires improvement to be good" in a.text and a.citations[0].page == 1
    assert "care leavers" not in a.text  # graded Good


@pytest.mark.parametrize("question, judgement, grade", [
    ("Which area of Cumberland's children's services did Ofsted not rate as good?",
     "children who need help and protection", "Requires improvement to be good"),
    ("Which part of Brighton and Hove's children's services wasn't graded outstanding?",
     "children who need help and protection", "Good"),
])
def test_which_judgement_had_another_grade_than_the_one_named(
        eng: Engine, question: str, judgement: str, grade: str) -> None:
    """"Which area was not rated good?" lists the judgements with any other grade, the
    overall one aside: not those with the grade named (one judgement cited, then the
    report's own sentence on it)."""
    a = answer(question, eng.settings, engine=eng)
    assert a.answerer == "table" and a.text.count(" judged ") == 1, a.text
    assert judgement in a.citations[0].quote and a.citations[0].page == 1
    assert judgement in a.text and f"{grade}”" in a.text


def test_why_questions_are_not_answered_with_a_list(eng: Engine) -> None:
    """A 'why' question using the word 'improve' is searched, not given the report's list."""
    a = answer("Why did Doncaster's services improve so much since the last inspection?",
               eng.settings, engine=eng)
    assert not a.text.startswith("Doncaster: What needs to improve?")


def test_when_will_they_inspect_again_is_not_answered_with_this_inspections_dates(
        eng: Engine) -> None:
    """Area SEND reports say when the next inspection will be; "when will ... again" is
    searched for that, while "when was ... inspected" keeps the dates of the one reported."""
    a = answer("When will Bury's SEND services get a full reinspection after the February 2024 "
               "visit?", eng.settings, engine=eng)
    assert "within approximately three years" in a.text and a.answerer != "table", a.text
    dates = answer("When was Bury's SEND inspection?", eng.settings, engine=eng)
    assert "12 to 16 February 2024" in dates.text, dates.text


@pytest.mark.parametrize("question", [
    "Compare Redbridge and Sandwell on children's homes",
    "What proportion of children in Hull are entitled to free school meals?",
])
def test_symbol_font_bullets_read_as_printed_in_every_kind_of_answer(eng: Engine,
                                                                     question: str) -> None:
    """The older reports' bullets are private-use characters in their text layers (an empty
    box on screen): a comparison across councils or a plain answer shows them as printed,
    while every citation still quotes the stored text exactly at its offsets."""
    a = answer(question, eng.settings, engine=eng)
    assert a.citations and not any(0xE000 <= ord(ch) <= 0xF8FF for ch in a.text), a.text
    assert any("\uf06e" in c.quote or "\uf02d" in c.quote for c in a.citations), a.citations
    for c in a.citations:
        assert eng.retriever.report_text(c.report_id)[c.start:c.end] == c.quote


def test_the_stats_table_shows_bullets_as_printed_and_json_keeps_them(
        eng: Engine, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`reportqa stats` prints Hull's figures (whose text layer gives list bullets as
    private-use characters) as people read them, on one line per figure; `--json` keeps the
    stored text exactly."""
    from ui.cli import main

    monkeypatch.setenv("REPORTQA_EMBEDDER", "hash")
    index = str(eng.settings.index_dir)
    assert main(["stats", "--council", "Kingston upon Hull", "--index", index]) == 0
    table = capsys.readouterr().out
    assert "Kingston upon Hull" in table
    assert not any(0xE000 <= ord(ch) <= 0xF8FF for ch in table), table
    assert main(["stats", "--council", "Kingston upon Hull", "--json", "--index", index]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any("\uf02d" in r["raw"] or "\uf06e" in r["raw"] or "\uf02d" in r["subject"]
               or "\uf06e" in r["subject"] for r in rows), rows[:3]


@pytest.mark.parametrize("question", ["What did Ofsted judge Knowsley overall?",
                                      "what did ofsted judge knowsley's services overall"])
def test_what_ofsted_judged_a_council_is_its_judgement(eng: Engine, question: str) -> None:
    """"Judge" as Ofsted's verb asks the judgement as "rate" does: the page-1 row, not a
    sentence about the grade at the inspection before (which never said Inadequate)."""
    a = answer(question, eng.settings, engine=eng)
    assert a.answerer == "table" and "Overall effectiveness Inadequate" in a.text, a.text


def test_a_judgement_rows_passage_is_its_table_and_the_summary_it_heads(eng: Engine) -> None:
    """The last row of a judgement table ("Overall effectiveness Inadequate") is a line the
    chunker files as the heading of the summary below it, so no chunk holds it and its
    citation's passage was the row alone: the reader of the passage lost the table. The
    passage is now the table it closes and the summary it opens, the quote at its offset."""
    a = answer("What did Ofsted judge Knowsley overall?", eng.settings, engine=eng)
    c = next(c for c in a.citations if c.quote.startswith("Overall effectiveness"))
    at = c.start - c.passage_start
    assert c.passage[at:at + len(c.quote)] == c.quote, (c.passage, c.quote)
    assert "The experiences and progress of care leavers" in c.passage[:at], c.passage
    assert len(c.passage[at + len(c.quote):].split()) > 20, c.passage


def test_a_quote_between_chunks_takes_only_the_chunks_it_touches() -> None:
    """A heading line between two chunks joins each only across white space: a heading of its
    own between (a second block) keeps the quote out of the chunk beyond it."""
    text = "Row one: Good\nRow two: Good\nOverall effectiveness Good\nSummary.\nNext\nMore."
    row = text.index("Overall")
    end = row + len("Overall effectiveness Good")

    def chunk(s: int, e: int) -> Chunk:
        return Chunk(Chunk.make_id("h", s, text[s:e]), "r", text[s:e], s, e)

    table, summary = chunk(0, row - 1), chunk(end + 1, text.index("\nNext"))
    assert block_around(text, row, end, table, summary) == (0, summary.end)
    first_row = chunk(0, text.index("\nRow two"))  # "Row two: Good" lies between, in no chunk
    assert block_around(text, row, end, first_row, summary) == (row, summary.end)
    assert block_around(text, row, end, None, None) == (row, end)


def test_every_visit_letter_names_its_addressee_and_post(eng: Engine) -> None:
    """Each bundled visit letter's addressee is the line above its address ending with the
    surname its greeting uses, and their post is the line below."""
    letters = [r for r in eng.current_reports() if r.metadata.get("family") == "ofsted-visit-letter"]
    assert len(letters) == 6
    for row in letters:
        text = eng.retriever.report_text(row.report_id)
        found = addressee(text, profile_named("ofsted-visit-letter"))  # type: ignore[arg-type]
        assert found is not None, row.report_id
        (s, e), (ps, pe) = found
        assert re.search(rf"^Dear \w+ {text[s:e].split()[-1]}$", text, re.M), text[s:e]
        assert "Director" in text[ps:pe] and pe < text.index("Dear")


@pytest.mark.parametrize("question, name, post", [
    ("Who is the corporate director for children, young people and education at Kent County "
     "Council that Ofsted wrote to?", "Sarah Hammond", "Corporate Director"),
    ("Who is the interim boss of children's services in Worcestershire that Ofsted's focused "
     "visit letter was sent to?", "Adam Johnston", "Interim Director"),
    ("who was the interim director of childrens services at dudley when ofsted visited in 2020",
     "Helen Ellis", "Interim Director of Children"),
])
def test_who_a_visit_letter_was_sent_to_is_its_addressee(eng: Engine, question: str, name: str,
                                                          post: str) -> None:
    """The name and post are two lines above the greeting, in no one sentence: the search
    quoted something else or nothing (three blind writers, three letters)."""
    a = answer(question, eng.settings, engine=eng)
    assert a.answerer == "table" and name in a.text and post in a.text, a.text
    assert name in a.citations[0].quote and post in a.citations[0].quote
    assert a.citations[0].page == 1


@pytest.mark.parametrize("question", ["who is kent's chief executive",
                                      "who is blackpool's director of adult social care",
                                      "Who is Southend-on-Sea's director of children's services?"])
def test_a_post_no_letter_names_is_not_answered_with_an_addressee(eng: Engine,
                                                                   question: str) -> None:
    """Kent's letter went to its corporate director, not its chief executive; Blackpool's to
    its director of children's services, not of adult social care; Southend has no letter.
    None is answered from an addressee."""
    a = answer(question, eng.settings, engine=eng)
    assert a.answerer != "table" and "addressed to" not in a.text, a.text


def test_every_ofsted_report_names_its_inspection_team(eng: Engine) -> None:
    """Each bundled Ofsted report's team as printed: an ILACS or SIF report's lead inspector
    line, a SEND report's Ofsted and CQC leads, a letter's inspectors and the one of them who
    signed it. Each entry's names are inside its own quote."""
    families = {"ofsted-ilacs": 0, "ofsted-sif": 0, "ofsted-area-send": 0, "ofsted-visit-letter": 0}
    for row in eng.current_reports():
        fam = row.metadata.get("family")
        if fam not in families:
            continue
        families[fam] += 1
        text = eng.retriever.report_text(row.report_id)
        team = inspection_team(text, profile_named(fam))  # type: ignore[arg-type]
        assert team and all(e.names and e.names in " ".join(text[e.start:e.end].split())
                            for e in team), row.report_id
        roles = [e.role.lower() for e in team]
        if fam in ("ofsted-ilacs", "ofsted-sif"):
            assert roles[0] == "lead inspector", (row.report_id, roles)
        elif fam == "ofsted-area-send":
            assert any("ofsted" in r and "lead" in r for r in roles), (row.report_id, roles)
            assert any("cqc" in r and "lead" in r for r in roles), (row.report_id, roles)
        else:
            listed, signed = team[0], team[-1]
            assert "inspector" in signed.role.lower() and signed.names in listed.names, team
    assert families == {"ofsted-ilacs": 13, "ofsted-sif": 3, "ofsted-area-send": 8,
                        "ofsted-visit-letter": 6}


@pytest.mark.parametrize("question, names, not_names", [
    ("who led the ofsted inspection of doncaster kids services in 2025", ["Catherine Heron"], []),
    ("name of the lead inspector for havering", ["Claire Beckingham"], []),
    ("who was deputy lead inspector redbridge 2016 ofsted", ["Nigel Parkes"], ["Louise Hocking"]),
    ("who was the cqc lead inspector for bury send inspection 2024", ["Kaye Goodfellow"],
     ["Adam Sproston"]),
    ("which inspectors carried out the october 2025 focused visit to blackpool",
     ["Rachel Fairhurst", "Rebekah Tucker"], []),
])
def test_who_inspected_is_the_reports_inspection_team(eng: Engine, question: str,
                                                      names: list[str], not_names: list[str]) -> None:
    """Names printed in a line or table no sentence holds: worded "who led ..." or "name of
    the lead inspector", the search found nothing for six ILACS reports, and the deputy lead
    inspector's line was never quoted. Each name is quoted from its own line, with its page."""
    a = answer(question, eng.settings, engine=eng)
    assert a.answerer == "table", a.text
    for name in names:
        assert any(name in c.quote for c in a.citations), (name, a.text)
    assert not any(n in a.text for n in not_names), a.text
    assert all(c.page is not None for c in a.citations)


def test_what_inspectors_did_is_not_who_they_were(eng: Engine) -> None:
    """"Who did inspectors speak to" asks a finding, not the team."""
    a = answer("who did inspectors speak to in kent", eng.settings, engine=eng)
    assert a.answerer != "table" and "inspection team" not in a.text, a.text


def test_every_send_report_names_its_partnership_leaders(eng: Engine) -> None:
    """A SEND report's details table names the council's director first, then the ICBs'
    leaders, above their web addresses (Rotherham's prints names without posts: none)."""
    named = {}
    for row in eng.current_reports():
        if row.metadata.get("family") != "ofsted-area-send":
            continue
        text = eng.retriever.report_text(row.report_id)
        people = partnership_people(text, profile_named("ofsted-area-send"))  # type: ignore[arg-type]
        named[row.report_id] = people
        for p in people:
            assert "www." not in text[p.start:p.end] and "\n\n" not in text[p.start:p.end]
        if people:
            assert people[0].side == "local authority" and "Director" in text[people[0].start:people[0].end]
            assert all(p.side == "integrated care board" for p in people[1:])
    assert sorted(k for k, v in named.items() if not v) == ["ofsted-send-rotherham-2024"]


@pytest.mark.parametrize("question, name, not_name", [
    ("Who is the executive director of children's services at Bury Council, as named in the SEND "
     "report?", "Jeanette Richards", "Mark Fisher"),
    ("Who is Telford and Wrekin Council's Director of Children and Adult Services?", "Jo Britton",
     "Tracey Jones"),
    ("Who is the chief executive of NHS Frimley ICB, as listed in Surrey's SEND inspection report?",
     "Fiona Edwards", "Karen McDowell"),
])
def test_a_send_reports_leaders_are_named_by_their_post(eng: Engine, question: str, name: str,
                                                       not_name: str) -> None:
    """Name and post are a table cell no sentence holds: the search quoted the ICB's web
    address line or the partnership's description (blind writers, four SEND reports)."""
    a = answer(question, eng.settings, engine=eng)
    assert a.answerer == "table" and name in a.text and not_name not in a.text, a.text
    assert name in a.citations[0].quote and a.citations[0].page is not None


def test_a_post_the_partnership_table_lacks_is_not_answered_from_it(eng: Engine) -> None:
    """Bury's table names the council's executive director and the ICB's chief executive:
    the council's chief executive is neither."""
    a = answer("who is bury council's chief executive", eng.settings, engine=eng)
    assert a.answerer != "table" and "Mark Fisher" not in a.text, a.text


def test_who_holds_a_post_is_answered_only_by_a_sentence_naming_a_person(eng: Engine) -> None:
    """Cambridgeshire's report says its improvement board "has an independent chair" and names
    no one: a sentence of organisation names is no answer to who the chair is. A named post
    holder still answers ("Lead inspector: Lisa Walsh")."""
    from rag.evidence import names_a_person

    a = answer("Who is the independent chair of Cambridgeshire's Children's Improvement Board?",
               eng.settings, engine=eng)
    assert a.abstained, a.text
    assert not names_a_person("A refreshed Children’s Improvement Board has an independent chair")
    assert names_a_person("Lead inspector: Máire Atherton, His Majesty’s Inspector")
    assert names_a_person("Dear Ms Hammond") and not names_a_person("Tees Valley and NHS Northwest London")
    lead = answer("who was the lead inspector on the cumberland childrens services inspection",
                  eng.settings, engine=eng)
    assert "Lisa Walsh" in lead.text


def test_a_visit_letters_closing_line_is_no_answer(eng: Engine) -> None:
    """Every letter closes "Ofsted will take the findings from this focused visit into account
    when planning the next inspection or visit": sharing "Ofsted", "focused visit" and
    "inspection" with many questions, it was quoted for what the visit looked at (an Ofsted
    PDF review, three of four letters)."""
    a = answer("what did ofsted look at in the kent focused visit", eng.settings, engine=eng)
    assert not any(c.quote.startswith("Ofsted will take the findings") for c in a.citations)
    assert any("Inspectors looked at the local authority" in c.quote for c in a.citations), a.text


def test_a_heading_line_is_not_quoted_on_after_a_finding(eng: Engine) -> None:
    """Asked why, the sentence after the pick is quoted with it; a heading line there read as
    part of the finding ("... only recently has action begun to address this. What needs to
    improve [1]?"). Neither the sentence after nor the one before may be a heading line."""
    from rag.evidence import heading_line

    text = "Services have declined.\nWhat needs to improve?\n◼ Leaders should act.\nA sentence."
    at = text.index("What")
    assert heading_line(text, at, at + len("What needs to improve?"))
    assert not heading_line(text, 0, len("Services have declined."))
    a = answer("why did havering get inadequate", eng.settings, engine=eng)
    assert not any("What needs to improve" in c.quote for c in a.citations), a.text


def test_a_question_heading_is_not_its_own_answer(eng: Engine) -> None:
    """Asked in the heading's own words, the heading was quoted as the answer ("What is it like
    to be a child or young person with SEND in this area [1]?": a second CLI review)."""
    a = answer("What is it like to be a child with SEND in Rotherham?", eng.settings, engine=eng)
    assert a.citations and not any(c.quote.rstrip().endswith("?") for c in a.citations), a.text
