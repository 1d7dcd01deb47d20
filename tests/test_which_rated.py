""""Which councils were rated X?" across report families: CQC's adult social care ratings and
Ofsted's grades in one index, asked in several wordings, scoped by the family the question
names, each grade matched as each family names it (rag/grades.py, `_which_rated`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.pipeline import ingest
from ingest.profiles import scopes
from rag.answer import answer
from rag.engine import Engine
from rag.grades import asked_grade, grades_match, named_families
from rag.structured import understand
from reportqa.records import Answer
from reportqa.settings import Settings
from reportqa.text import date_range

ROOT = Path(__file__).resolve().parent.parent
CQC_PAGES = ["birmingham__overview.txt", "ealing__overview.txt",
             "staffordshire__overview.txt", "westminster__overview.txt"]
PDFS = ["ofsted-ilacs-cumberland-2024.pdf", "ofsted-ilacs-cambridgeshire-2024.pdf",
        "ofsted-ilacs-short-harrow-2025.pdf", "ofsted-ilacs-leicestershire-2024.pdf",
        "ofsted-sif-hull-2015.pdf", "ofsted-send-bury-2024.pdf", "ofsted-send-dorset-2024.pdf"]


@pytest.fixture(scope="module")
def eng(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    settings = Settings(index_dir=tmp_path_factory.mktemp("rated-index"), embedder="hash")
    files = [ROOT / "corpus" / f for f in CQC_PAGES] + [ROOT / "corpus" / "ofsted" / f for f in PDFS]
    assert ingest(files, settings).reports_total == len(files)
    return Engine.load(settings)


def ask(eng: Engine, q: str) -> Answer:
    a = answer(q, eng.settings, engine=eng)
    assert a.answerer == "table" and not a.abstained, (q, a.text)
    return a


def councils(a: Answer) -> set[str]:
    return {c.council or "" for c in a.citations}


def test_a_list_that_mixes_families_groups_them_and_cites_each_grade(eng: Engine) -> None:
    a = ask(eng, "Which councils were rated good?")
    assert councils(a) == {"Birmingham City Council", "Staffordshire County Council",
                           "Westminster City Council", "Cumberland"}
    assert "adult social care (CQC): Birmingham" in a.text
    assert "children's services (Ofsted): Cumberland" in a.text
    assert all("Good" in c.quote for c in a.citations)


@pytest.mark.parametrize("question, expected", [
    ("which councils were rated good by ofsted?", {"Cumberland"}),
    ("Which councils were rated Good by CQC for adult social care?",
     {"Birmingham City Council", "Staffordshire County Council", "Westminster City Council"}),
    ("which councils' children's services were judged inadequate", {"Harrow"}),
])
def test_the_family_a_question_names_is_the_only_one_listed(
        eng: Engine, question: str, expected: set[str]) -> None:
    a = ask(eng, question)
    assert councils(a) == expected, a.text
    assert " for " in a.text.split(":")[0]  # the lead says which service it listed


@pytest.mark.parametrize("question, expected", [
    # CQC and the older Ofsted framework say "Requires improvement", the current one "...
    # to be good": the same grade.
    ("which councils got requires improvement?",
     {"London Borough of Ealing", "Cambridgeshire", "Kingston upon Hull"}),
    ("list the councils with an outstanding rating", {"Leicestershire"}),
    ("which local authorities got inadequate", {"Harrow"}),
    ("which councils were rated as good?", {"Birmingham City Council", "Cumberland",
                                            "Staffordshire County Council",
                                            "Westminster City Council"}),
    ("which councils did CQC rate requires improvement?", {"London Borough of Ealing"}),
    ("which areas had widespread or systemic failings?", {"Bury"}),
])
def test_a_grade_asked_in_other_words_lists_the_same_councils(
        eng: Engine, question: str, expected: set[str]) -> None:
    assert councils(ask(eng, question)) == expected


def test_not_rated_good_leaves_out_families_whose_scale_has_no_good(eng: Engine) -> None:
    """Area SEND states one of three outcomes, not grades: "not rated good" is not true of
    an outcome, so it lists the councils a graded family gave another grade."""
    a = ask(eng, "Which councils were not rated good?")
    assert "Bury" not in councils(a) and "Dorset" not in councils(a)
    assert {"London Borough of Ealing", "Harrow", "Leicestershire"} <= councils(a)


def test_a_grade_with_other_words_after_got_is_no_grade(eng: Engine) -> None:
    assert understand("which councils got good feedback from carers?",
                      eng.derived().councils).intent != "which_rated"
    assert asked_grade("which councils received good feedback") is None
    assert asked_grade("which councils received a good rating from ofsted") == "Good"


def test_grades_match_across_family_names_and_one_word_grades_only_when_equal() -> None:
    assert grades_match("Requires improvement", "Requires improvement to be good")
    assert grades_match("Widespread and/or systemic failings", "widespread or systemic failings")
    assert not grades_match("Good", "Requires improvement to be good")
    assert not grades_match("Inconsistent experiences and outcomes",
                            "Typically positive experiences and outcomes")


def test_every_family_has_a_label_and_words_that_name_it() -> None:
    """Each scope row (a profile file, or CQC's assessment vocabulary) labels its family in
    a mixed list and names it by words no other inspectorate's family uses."""
    for s in scopes():
        assert s.service and s.asked_by, s.family
        assert s.family in named_families(f"which councils did {s.asked_by[-1]} rate good")
        others = {o.family for o in scopes() if o.inspectorate not in s.inspectorate
                  and s.inspectorate not in o.inspectorate}
        assert not named_families(s.asked_by[-1]) & others, s.family


def test_comparing_councils_by_name_alone_sets_their_overall_grades_side_by_side(
        eng: Engine) -> None:
    a = ask(eng, "compare cumberland and harrow")
    assert [c.council for c in a.citations] == ["Cumberland", "Harrow"]
    assert "Cumberland, children's services (Ofsted): Good [1]" in a.text
    assert "Harrow, children's services (Ofsted): Inadequate [2]" in a.text
    mixed = ask(eng, "how does westminster compare with cumberland?")
    assert "adult social care (CQC): Good [1]" in mixed.text
    assert "children's services (Ofsted): Good [2]" in mixed.text


def test_a_comparison_that_names_a_topic_is_still_searched(eng: Engine) -> None:
    a = answer("compare cumberland and harrow on care leavers", eng.settings, engine=eng)
    assert "children's services (Ofsted):" not in a.text


@pytest.mark.parametrize("question, expected", [
    ("Which councils were inspected by Ofsted in 2024?",
     {"Cumberland", "Cambridgeshire", "Leicestershire", "Bury", "Dorset"}),
    ("which councils had a SEND inspection in 2024", {"Bury", "Dorset"}),
    ("which local authorities were visited by ofsted in 2025?", {"Harrow"}),
    # The plural with a year asks the list without "which"; "ofsted in" is inspecting.
    ("area SEND inspections carried out during 2024?", {"Bury", "Dorset"}),
    ("which council was ofsted in in 2025", {"Harrow"}),
    # Half a year is its six months: Cambridgeshire (March) and Leicestershire (April to
    # May), not Cumberland (October).
    ("which councils had a full childrens services inspection in the first half of 2024?",
     {"Cambridgeshire", "Leicestershire"}),
    ("ILACS inspections carried out in the second half of 2024?", {"Cumberland"}),
])
def test_which_councils_were_inspected_in_a_year_lists_the_dates_each_report_states(
        eng: Engine, question: str, expected: set[str]) -> None:
    a = ask(eng, question)
    assert councils(a) == expected, a.text
    year = question.rstrip("?")[-4:]
    assert all(year in c.quote and c.page == 1 for c in a.citations)


def test_inspections_of_a_year_asked_with_a_grade_or_a_topic_are_not_the_list(eng: Engine) -> None:
    """"ILACS inspections done in 2024 that came out good?" asks a grade of them, "what did
    the 2024 inspections say about care leavers?" what they found: not when they were."""
    for q in ("ilacs inspections done in 2024 that came out good?",
              "what did the 2024 inspections say about care leavers?"):
        a = answer(q, eng.settings, engine=eng)
        assert not a.text.startswith("Indexed councils inspected"), (q, a.text)


def test_what_the_index_holds_is_listed_by_family(eng: Engine) -> None:
    """"What reports do you have?" lists every indexed report's council under its family;
    "which Ofsted reports ..." only Ofsted's; nothing is quoted (it is about the index)."""
    a = answer("what reports do you have?", eng.settings, engine=eng)
    assert a.answerer == "table" and not a.abstained and not a.citations
    assert "adult social care (CQC) (4 reports): Birmingham City Council" in a.text, a.text
    assert "SEND (Ofsted and CQC) (2 reports): Bury, Dorset" in a.text
    ofsted = answer("Which Ofsted reports are in the index?", eng.settings, engine=eng)
    assert "Cumberland" in ofsted.text and "Westminster" not in ofsted.text
    assert understand("which councils are covered by the local offer?",
                      eng.derived().councils).intent != "indexed_reports"


@pytest.mark.parametrize("question, judgement, expected", [
    ("Which councils got good for care leavers?", "care leavers", {"Cumberland"}),
    ("which councils got inadequate for their care leavers", "care leavers", {"Harrow"}),
    # The older framework names children in care "children looked after" (its profile's
    # asked_as row).
    ("which councils were not rated good by ofsted for children in care", "children in care",
     {"Cambridgeshire", "Leicestershire", "Kingston upon Hull"}),
])
def test_a_grade_for_a_topic_lists_the_councils_whose_judgement_of_it_has_that_grade(
        eng: Engine, question: str, judgement: str, expected: set[str]) -> None:
    """Not the overall grades: the judgement that covers what the question names, per
    council, each cited on its own row of the judgement table."""
    a = ask(eng, question)
    assert councils(a) == expected, a.text
    assert all(judgement in c.quote.lower() or "children looked after" in c.quote.lower()
               for c in a.citations), [c.quote for c in a.citations]


@pytest.mark.parametrize("question, quoted", [
    ("How did Cumberland do?", "Good"),
    ("how has harrow done overall", "Inadequate"),
    ("how did bury get on in its inspection?", "widespread and/or systemic failings"),
    # "overall" and the inspection both named, in either order.
    ("how did leicestershire do overall in its 2024 ofsted inspection", "Outstanding"),
    ("how did cumberland do in its inspection overall?", "Good"),
    ("How did Ealing do?", "Requires improvement"),
])
def test_how_did_a_council_do_is_its_overall_grade(eng: Engine, question: str, quoted: str) -> None:
    """Its overall grade, cited first; an inspection report's own first word on it may follow
    (the opening sentence of its summary), never a second grade."""
    a = ask(eng, question)
    assert quoted in a.citations[0].quote and len(a.citations) <= 2, a.text
    for said in a.citations[1:]:  # below the grades, in the same report
        assert said.report_id == a.citations[0].report_id
        assert said.start >= a.citations[0].end, a.text


@pytest.mark.parametrize("question, grade", [
    ("Summarise Cumberland's report", "Overall effectiveness Good"),
    ("give me an overview of the Bury SEND inspection", "widespread and/or systemic failings"),
    ("what were the key findings for Ealing?", "Requires improvement"),
])
def test_a_summary_is_the_overall_grade_then_the_opening_of_the_findings(
        eng: Engine, question: str, grade: str) -> None:
    a = ask(eng, question)
    assert grade in a.citations[0].quote and len(a.citations) >= 3, a.text
    assert len({c.report_id for c in a.citations}) == 1
    # Findings follow the grade in the report's order, and the answer stays short.
    assert [c.start for c in a.citations[1:]] == sorted(c.start for c in a.citations[1:])
    assert len(a.text.split()) <= 120


def test_the_cross_council_score_wants_exactly_the_councils_expected(eng: Engine) -> None:
    """evals/cross_councils.py: a list naming one council too many, or one too few, is
    wrong; a one-council answer must hold every expected word; an abstention names none."""
    from evals.cross_councils import judge

    a = ask(eng, "which councils were rated good by ofsted?")  # Cumberland only
    assert judge({"expected_councils": ["Cumberland"]}, a, eng)["right"]
    assert not judge({"expected_councils": ["Cumberland", "Harrow"]}, a, eng)["right"]
    assert judge({"expected_councils": []}, a, eng)["extra"] == ["cumberland"]
    assert judge({"expected_text": ["good"]}, a, eng)["right"]
    none = answer("which councils did cqc rate outstanding", eng.settings, engine=eng)
    assert none.abstained and judge({"expected_councils": []}, none, eng)["right"]


@pytest.mark.parametrize("question, expected", [
    ("which councils did ofsted inspect in march 2024?", {"Cambridgeshire", "Dorset"}),
    ("ofsted inspections in octobr 2024 - which councils", {"Cumberland"}),
    ("which councils were rated inadequate by ofsted in inspections carried out in 2025?",
     {"Harrow"}),
])
def test_a_month_or_a_year_keeps_to_the_inspections_whose_dates_name_it(
        eng: Engine, question: str, expected: set[str]) -> None:
    """The dates the report prints decide, not its publication a year later."""
    assert councils(ask(eng, question)) == expected


@pytest.mark.parametrize("question, expected, said", [
    # every month from the first named to the last, not only those two
    ("which councils did ofsted inspect between july and december 2024?", {"Cumberland"},
     "between July and December 2024"),
    ("Which councils had an Ofsted inspection or visit before 2023?", {"Kingston upon Hull"},
     "before 2023"),
    ("which councils has ofsted inspected since 2024?",
     {"Cambridgeshire", "Cumberland", "Harrow", "Leicestershire", "Bury", "Dorset"}, "since 2024"),
    # a season is its three months; winter runs over the new year
    ("ofsted inspections in spring 2024?", {"Cambridgeshire", "Leicestershire", "Dorset"},
     "spring 2024 (March to May)"),
    ("which councils did Ofsted look at over the winter of 2024/25?", {"Harrow"},
     "winter 2024 (December to February)"),
    ("ofsted visits 2025?", {"Harrow"}, "in 2025"),
    # the earliest or the most recent by the dates printed
    ("which area had the earliest of the SEND inspections?", {"Bury"}, "earliest"),
    ("What's the most recent Ofsted inspection in the reports, and which council was it?",
     {"Harrow"}, "most recent"),
])
def test_a_stretch_of_dates_keeps_to_the_inspections_that_overlap_it(
        eng: Engine, question: str, expected: set[str], said: str) -> None:
    """Ranges, open ends, seasons and extremes are read as dates (rag/when.py), compared
    with the first and last day each report prints; the answer says what it was asked."""
    a = ask(eng, question)
    assert councils(a) == expected, a.text
    assert said in a.text and all(c.page == 1 for c in a.citations), a.text


@pytest.mark.parametrize("printed, first, last", [
    ("22 January to 2 February 2024", "2024-01-22", "2024-02-02"),
    ("7 and 8 October 2025", "2025-10-07", "2025-10-08"),
    ("18 November – 10 December 2014", "2014-11-18", "2014-12-10"),
    ("12/09/2016 to 06/10/2016", "2016-09-12", "2016-10-06"),
    ("30 September 2024 to 4 October 2024", "2024-09-30", "2024-10-04"),
    ("3 Sept 2024", "2024-09-03", "2024-09-03"),
])
def test_printed_inspection_dates_read_as_a_first_and_last_day(printed: str, first: str,
                                                              last: str) -> None:
    span = date_range(printed)
    assert span is not None and (span[0].isoformat(), span[1].isoformat()) == (first, last)
    assert date_range("dates to be confirmed") is None


@pytest.mark.parametrize("question, expected", [
    ("help & protection inadequate: which councils?", set()),
    ("which councils childrens services were graded below good by ofsted (RI or inadequate)?",
     {"Cambridgeshire", "Harrow", "Kingston upon Hull"}),
    ("which councils got good or better for care leavers", {"Cumberland", "Leicestershire"}),
    ("children in care judged outstandng - which LAs?", {"Leicestershire"}),
    # an area SEND outcome named by its own word ("the positive one"), not its whole name
    ("SEND inspections where the outcome was the good/positive one - which areas?", {"Dorset"}),
    ("which areas had systemic failings?", {"Bury"}),
    # every grade named is left out: the others are asked for
    ("which local areas avoided the worst SEND verdict - i.e. no widespread/systemic failings "
     "found?", {"Dorset"}),
    # "which ... inspections" asks across councils as "which councils" does
    ("which full childrens services inspections came out below good overall?",
     {"Cambridgeshire", "Harrow", "Kingston upon Hull"}),
    ("which councils got good overall from ofsted (good, not outstanding)?", {"Cumberland"}),
    ("Under the current ILACS framework (not the old SIF ones), which councils were judged "
     "requires improvement overall?", {"Cambridgeshire"}),
])
def test_list_questions_in_analysts_words(eng: Engine, question: str, expected: set[str]) -> None:
    a = answer(question, eng.settings, engine=eng)
    assert a.answerer == "table", a.text
    assert councils(a) == expected, a.text


def test_a_comparison_asked_as_which_did_better(eng: Engine) -> None:
    a = ask(eng, "cumberland or harrow - which did better with ofsted?")
    assert "Cumberland, children's services (Ofsted): Good" in a.text
    assert "Harrow, children's services (Ofsted): Inadequate" in a.text


@pytest.mark.parametrize("question, grade", [
    ("harrow childrens services verdict pls", "Inadequate"),
    ("give me the headline on leicestershire's childrens services report", "Outstanding"),
    ("can u sum up cambridgeshire's ofsted ILACS report in a line",
     "Requires improvement to be good"),
    ("bury send inspection result", "Widespread and/or systemic failings"),
    ("how did cumberland come out of its ofsted inspection in 2024", "Good"),
])
def test_how_a_council_did_asked_in_other_words_is_its_overall_grade(
        eng: Engine, question: str, grade: str) -> None:
    """Cross-council questions worded as people type them: "verdict pls", "the headline on",
    "in a line", an inspection's "result", "come out of": the overall grade, cited."""
    a = ask(eng, question)
    assert grade in a.text and a.citations[0].page == 1, a.text


def test_the_older_frameworks_leadership_judgement_is_asked_by_leadership(eng: Engine) -> None:
    """"Leadership, management and governance" (2015) is what "leadership" asks of Hull, as
    "The impact of leaders ..." is of a current report (the profiles' asked_as rows)."""
    a = ask(eng, "what did ofsted rate hull for leadership?")
    assert "Leadership, management and governance" in a.citations[0].quote, a.text


@pytest.mark.parametrize("question, refusal", [
    ("which council got a 1 for safeguarding from cqc", "No indexed council scored 1 on Safeguarding"),
    ("any councils scoring 4 (exceptional standard) on a cqc quality statement?",
     "No indexed council scored 4 on any quality statement"),
])
def test_a_score_asked_of_any_council_however_worded_is_looked_up_in_the_table(
        eng: Engine, question: str, refusal: str) -> None:
    """"Which council got a 1", "any councils scoring 4": the score table answers, here that
    no council has it, not a passage that mentions scores."""
    a = answer(question, eng.settings, engine=eng)
    assert a.answerer == "table" and a.abstained and a.text.startswith(refusal), a.text


def test_which_councils_cqc_assessed_in_a_year_is_when_their_assessments_were_published(
        eng: Engine) -> None:
    """CQC's pages print when an assessment was published, not when it was made: asked which
    councils CQC assessed in a year, the answer says so and lists those published in it, each
    cited on its own "Published:" line; a year with none says none was."""
    a = answer("which councils did cqc assess in 2024?", eng.settings, engine=eng)
    assert a.answerer == "table" and not a.abstained, a.text
    assert a.text.startswith("The indexed CQC assessments state when they were published")
    assert councils(a) == {"Westminster City Council"}
    for c in a.citations:
        text = eng.retriever.report_text(c.report_id)
        assert c.quote == "8 November 2024" and text[:c.start].endswith("Published: ")
    none = answer("which councils did cqc assess in 2022?", eng.settings, engine=eng)
    assert none.answerer == "table" and none.abstained and "none was published in 2022" in none.text
    # the earliest or the most recent is asked by its publication date too
    latest = answer("which council had the most recent cqc assessment?", eng.settings, engine=eng)
    assert councils(latest) == {"Staffordshire County Council"}, latest.text
    assert "The most recent published: Staffordshire" in latest.text
    since = answer("which councils did cqc assess since 2025?", eng.settings, engine=eng)
    assert councils(since) == {"London Borough of Ealing", "Staffordshire County Council"}, since.text


def test_the_judgements_table_holds_every_cqc_overall_rating_the_scores_table_does(
        eng: Engine) -> None:
    """`reportqa judgements` restates the score table's overall ratings: a CQC page stating
    its rating beside its scores kept only the scores (Ealing, Staffordshire, Westminster
    were missing while `reportqa scores` and "which councils were rated good?" had them)."""
    from rag.listing import judgement_rows, score_rows

    rated = {(r["report_id"], r["label"]) for r in score_rows(eng)
             if r["quality_statement"] == "(overall rating)"}
    judged = [(r["report_id"], r["grade"]) for r in judgement_rows(eng)]
    assert len(rated) >= len(CQC_PAGES) and rated <= set(judged)
    cqc = [j for j in judged if j[0].removesuffix("-overview") + "__overview.txt" in CQC_PAGES
           and j in rated]
    assert len(cqc) == len(set(cqc)) == len(CQC_PAGES)  # each council's rating once


@pytest.mark.parametrize("question", ["What did Harrow get?", "What did Ofsted give Harrow?",
                                      "what did harrow receive"])
def test_what_a_council_got_with_nothing_after_asks_its_overall_grade(eng: Engine,
                                                                      question: str) -> None:
    """"What did Harrow get?" got two care-leaver sentences and "What did Ofsted give
    Harrow?" "not in the reports" (browser review): nothing after the verb, it asks how the
    council was graded overall, as "how did Harrow do?" does."""
    a = ask(eng, question)
    assert "Overall effectiveness Inadequate" in a.text, a.text


def test_a_year_alone_asks_the_list_before_of_that_year(eng: Engine) -> None:
    """"and 2025?" after a list across councils that named no year asks it of 2025 (it was
    read alone: "not in the reports", closest passages from Bradford's finances); after one
    that named a year it changes the year."""
    from rag.chat import answer_in_chat
    from reportqa.records import Turn

    history: list[Turn] = []
    out = []
    for m in ("which councils got inadequate", "and 2025?", "and 2024?"):
        a = answer_in_chat(m, history, eng.settings, engine=eng)
        history.append(Turn.of(a))
        out.append(a)
    first, later, earlier = out
    assert later.read_as == "which councils got inadequate in 2025?"
    assert earlier.read_as == "which councils got inadequate in 2024?"
    assert "Harrow" in first.text and "Hull" not in first.text  # Hull: requires improvement
    assert not later.abstained and "Harrow" in later.text, later.text
    assert "Harrow" not in earlier.text, earlier.text
