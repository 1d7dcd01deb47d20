"""Question types are one ordered table, rag/structured.py QUESTION_TYPES (detector and
handler per row); tests/data/intents.jsonl pins which question reads as which type, with its
slots, and for some the rows route() tries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rag.answer import answer
from rag.engine import Engine
from rag.query import council_catalogue
from rag.structured import QUESTION_TYPES, plan, understand
from reportqa.settings import Settings

REPO = Path(__file__).resolve().parent.parent
ROWS = [json.loads(x) for x in
        (Path(__file__).parent / "data" / "intents.jsonl").read_text("utf-8").splitlines() if x]
COUNCILS = council_catalogue(["Darlington Borough Council", "Staffordshire County Council",
                              "Bury Council", "Doncaster", "Bradford", "Kent", "Medway"])


@pytest.mark.parametrize("row", ROWS, ids=[r["question"][:50] for r in ROWS])
def test_question_reads_as_its_type_and_slots(row: dict[str, Any]) -> None:
    u = understand(row["question"], COUNCILS)
    assert u.intent == row["intent"], row["why"]
    tried = plan(u, u.councils, u.statements)
    for slot, value in row["slots"].items():
        value = tuple(value) if isinstance(value, list) else value  # JSON has no tuples
        got = next((getattr(v, slot) for _, v in tried if getattr(v, slot) == value),
                   getattr(u, slot))
        assert got == value, (slot, row["why"])
    if "tries" in row:
        assert [t.name for t, _ in tried] == row["tries"], row["why"]
    assert len(row["why"]) > 20


def test_every_question_type_has_a_pinned_question() -> None:
    """Adding a row to QUESTION_TYPES needs a line in tests/data/intents.jsonl that reads as
    it (or, for an overlay row, that tries it)."""
    names = [t.name for t in QUESTION_TYPES]
    assert len(names) == len(set(names)) and "search" not in names
    pinned = {r["intent"] for r in ROWS} | {n for r in ROWS for n in r.get("tries", ())}
    for t in QUESTION_TYPES:
        assert t.name in pinned, f"no question in tests/data/intents.jsonl reads as {t.name}"


def test_an_overlay_is_never_a_questions_type() -> None:
    overlays = {t.name for t in QUESTION_TYPES if t.overlay}
    assert overlays == {"judgement", "list"}
    assert not overlays & {r["intent"] for r in ROWS}


@pytest.fixture(scope="module")
def pdf_eng(doncaster_pdf_index: Settings) -> Engine:
    return Engine.load(doncaster_pdf_index)


def test_when_was_it_inspected_cites_the_dates_on_page_one(pdf_eng: Engine) -> None:
    a = answer("When was Doncaster's children's services inspection?", pdf_eng.settings,
               engine=pdf_eng)
    assert a.answerer == "table" and "20 to 31 January 2025 [1]" in a.text
    c = a.citations[0]
    assert (c.quote, c.page) == ("20 to 31 January 2025", 1)
    assert pdf_eng.retriever.report_text(c.report_id)[c.start:c.end] == c.quote


def test_when_was_it_published_cites_the_reports_published_line(
        shared_hash_index: Settings) -> None:
    """Not the inspection dates nor a sentence sharing words: the line the report prints.
    Every page of a council says the same date; it is stated once."""
    eng = Engine.load(shared_hash_index)
    # The report named first, "when was it" after it, and a misspelling that is one edit
    # from "published" and from "publish" (the reports use the first far more).
    for q in ("When was the CQC assessment of Darlington published?",
              "when did cqc publish darlingtons assessment",
              "darlington council adult social care cqc report when was it publishd"):
        a = answer(q, eng.settings, engine=eng)
        assert a.answerer == "table" and a.text.count("published on 30 May 2025") == 1, a.text
        c = a.citations[0]
        assert eng.retriever.report_text(c.report_id)[c.start:c.end] == c.quote == "30 May 2025"


def test_table_answers_keep_to_the_reports_a_filter_allows(shared_hash_index: Settings) -> None:
    """The app's family and year filters narrow retrieval to some reports; the tables too."""
    from rag.retrieve import Filters

    eng = Engine.load(shared_hash_index)
    q = "Which councils scored 3 for safeguarding?"
    everyone = answer(q, eng.settings, engine=eng)
    darlington = tuple(r for r in eng.retriever.state().reports if r.startswith("darlington"))
    narrowed = answer(q, eng.settings, Filters(report_ids=darlington), engine=eng)
    assert len(everyone.citations) > 1
    assert {c.report_id for c in narrowed.citations} <= set(darlington)
    assert [c.council for c in narrowed.citations] == ["Darlington Borough Council"]


def test_a_question_about_another_inspection_is_not_answered_from_this_ones_table(
        pdf_eng: Engine) -> None:
    """Reports state the grade and dates of the inspection before; the judgement and date
    tables hold only the indexed one's, so a question about another inspection (by wording
    or by year) goes to search."""
    s = pdf_eng.settings
    table = [answer(q, s, engine=pdf_eng) for q in (
        "What did Ofsted grade Doncaster's services for care leavers?",
        "What did Ofsted grade Doncaster's services for care leavers in 2025?",
        "When was Doncaster inspected in 2025?")]
    assert all(a.answerer == "table" for a in table), [a.text for a in table]
    elsewhere = [answer(q, s, engine=pdf_eng) for q in (
        "What did Ofsted grade Doncaster's services for care leavers at the previous inspection?",
        "What did Ofsted grade Doncaster's services for care leavers in 2019?",
        "When was Doncaster last inspected before this inspection?",
        "When was the last full Ofsted inspection of Doncaster children's services before "
        "the 2025 one?",
        "when was the inspection before doncaster's 2025 inspection",
        "When will Ofsted come back to Doncaster?")]
    assert all(a.answerer != "table" for a in elsewhere), [a.text for a in elsewhere]


def test_which_part_named_by_its_grade_comes_from_the_judgement_table(pdf_eng: Engine) -> None:
    """A grade named in any wording ("rate as", "requiring") asks which judgements have it;
    "why" asks for the reason, which the table does not hold: the report's own summary of
    that judgement, no judgement row restated."""
    s = pdf_eng.settings
    grades = {j.judgement: j.grade for j in pdf_eng.derived().judgements}
    ri = sorted(n for n, g in grades.items() if g.startswith("Requires improvement"))
    assert ri and len(ri) < len(grades)
    for q in ("Which part of Doncaster's children's services did Ofsted rate as requires "
              "improvement?", "which area of doncaster was graded as requiring improvement"):
        a = answer(q, s, engine=pdf_eng)
        assert a.answerer == "table", a.text
        assert sorted(n for n in grades if n in a.text) == ri, a.text
    why = answer("Why was Doncaster graded requires improvement for care leavers?", s,
                 engine=pdf_eng)
    rows = {(j.start, j.end) for j in pdf_eng.derived().judgements}
    assert why.text.startswith("The report's findings:"), why.text
    assert not any((c.start, c.end) in rows for c in why.citations), why.text


def test_a_councils_lowest_and_highest_quality_statements(shared_hash_index: Settings) -> None:
    """One council and a superlative over its areas: every statement at its lowest (highest)
    score, each cited, not the council with the lowest overall score."""
    from rag.tables import best_per_key

    eng = Engine.load(shared_hash_index)
    stated = [g[0] for g in best_per_key([r for r in eng.derived().scores
                                          if r.council_key == "darlington"]).values()]
    assert len({r.score for r in stated}) > 1
    for q, pick in (("Which of Darlington's nine CQC assessment areas got the lowest score?", min),
                    ("what was darlington's strongest area", max)):
        a = answer(q, eng.settings, engine=eng)
        best = pick(r.score for r in stated)
        want = sorted(r.statement for r in stated if r.score == best)
        assert a.answerer == "table" and f"is {best} - " in a.text, a.text
        assert sorted(s for s in {r.statement for r in stated} if f"{s} [" in a.text) == want
        assert len(a.citations) == len(want)
        for c in a.citations:
            assert eng.retriever.report_text(c.report_id)[c.start:c.end] == c.quote


def test_a_grade_question_gets_the_judgement_that_covers_what_it_asks(pdf_eng: Engine) -> None:
    """Nothing narrower than the council or its children's services: the overall judgement.
    A topic the judgement names only part of (housing and staffing of care leavers) is for
    search; the judgement itself, in any wording, is the table's."""
    s = pdf_eng.settings
    overall = [answer(q, s, engine=pdf_eng) for q in (
        "What grade did Doncaster's children's services get?",
        "How did Ofsted rate Doncaster in its January 2025 inspection?")]
    assert all("Overall effectiveness" in a.text for a in overall), [a.text for a in overall]
    leavers = answer("how did ofsted rate doncaster for care leavers", s, engine=pdf_eng)
    assert "The experiences and progress of care leavers" in leavers.text, leavers.text
    wider = answer("How did Ofsted rate the housing and personal adviser staffing for Doncaster's "
                   "care leavers?", s, engine=pdf_eng)
    assert wider.answerer != "table", wider.text


def test_a_councils_weakest_and_strongest_judgements(pdf_eng: Engine) -> None:
    """One council and its worst (best) judgement: every judgement at the bottom (top) of its
    family's grade scale, the overall one aside, each cited where its grade is stated."""
    from ingest.profiles import profile_named

    judged = [j for j in pdf_eng.derived().judgements if j.judgement != "Overall effectiveness"]
    prof = profile_named(judged[0].family)
    assert prof is not None and prof.grades[0] == "Outstanding" and prof.grades[-1] == "Inadequate"
    rank = {j.judgement: prof.grades.index(j.grade) for j in judged}
    assert len(set(rank.values())) > 1  # the fixture has better and worse judgements
    for q, pick in (("What was Doncaster's weakest judgement?", max),
                    ("which of doncaster's grades was the best", min)):
        a = answer(q, pdf_eng.settings, engine=pdf_eng)
        want = sorted(n for n, r in rank.items() if r == pick(rank.values()))
        assert a.answerer == "table", a.text
        assert sorted(n for n in rank if f'"{n}"' in a.text) == want, a.text
        assert '"Overall effectiveness"' not in a.text and len(a.citations) == len(want)
        for c in a.citations:
            quote = pdf_eng.retriever.report_text(c.report_id)[c.start:c.end]
            assert quote == c.quote and prof.grades[pick(rank.values())] in quote


def test_a_rating_question_about_another_year_goes_to_search(shared_hash_index: Settings) -> None:
    """The rating table holds the indexed assessment's: asked about a year it is not from,
    the text answers (or says it does not), not the table; asked about the assessment's own
    year, the table answers. (A statement page states no date, so its score rows answer
    whatever year is asked: nothing says they are from another one.)"""
    from reportqa.text import years_in

    eng = Engine.load(shared_hash_index)
    row = next(r for r in eng.derived().ratings if r.council_key == "darlington")
    meta = eng.retriever.state().reports[row.report_id].metadata
    own = years_in(" ".join(str(meta.get(k) or "") for k in ("inspection_dates", "published")))
    assert own
    s = eng.settings
    assert answer(f"What was Darlington's overall rating in {own[0]}?", s,
                  engine=eng).answerer == "table"
    assert answer("What was Darlington's overall rating in 2009?", s, engine=eng).answerer != "table"
