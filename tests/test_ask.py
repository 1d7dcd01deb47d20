"""Ask pipeline with the deterministic fake embedder: fusion, recognition, table answers,
abstention, exact citation offsets, bad questions, the number check, report versions."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import ingest
from rag.answer import answer, check_figures
from rag.engine import Engine
from rag.query import council_catalogue
from rag.retrieve import Filters, rrf_fuse, tokenize, with_each_best
from rag.structured import understand
from rag.tables import label_start
from reportqa.errors import IndexNotReadyError, QuestionError
from reportqa.records import Answer, Citation
from reportqa.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def eng(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    settings = Settings(index_dir=tmp_path_factory.mktemp("ask-index"), embedder="hash")
    summary = ingest(sorted((ROOT / "corpus").glob("*.txt")), settings)
    assert summary.reports_total == 36
    return Engine.load(settings)


def ask(eng: Engine, q: str, **kw: object) -> Answer:
    return answer(q, eng.settings, engine=eng, **kw)  # type: ignore[arg-type]


def assert_offsets_exact(eng: Engine, a: Answer) -> None:
    for c in a.citations:
        text = eng.retriever.report_text(c.report_id)
        assert text[c.start : c.end] == c.quote, (c.report_id, c.quote)
        assert c.passage_start <= c.start and c.end <= c.passage_start + len(c.passage) + 200


# --- fusion and recognition ---------------------------------------------------------------

def test_each_rankers_best_chunk_is_kept_among_the_fused_top_k() -> None:
    """A chunk BM25 ranks first and the meaning ranker far down falls below chunks both rank
    middling; it is kept among the top k in place of the lowest fused one, in fused order."""
    bm25 = ["rare", "m1", "m2", "m3", "m4"]
    dense = ["m2", "m1", "m4", "m3", "d5", "d6", "d7", "d8", "d9", "rare"]
    rankings = {"bm25": bm25, "dense": dense}
    fused = rrf_fuse(rankings, k=60)
    plain = [f[0] for f in fused[:4]]
    assert "rare" not in plain
    kept = [f[0] for f in with_each_best(fused, rankings, 4, 1)]
    assert kept == plain[:3] + ["rare"]
    # Nothing to add when every ranker's best is already in the top k.
    assert with_each_best(fused, rankings, 10, 1) == fused[:10]
    # More bests than room: the fused order decides.
    assert [f[0] for f in with_each_best(fused, rankings, 1, 2)] == [fused[0][0]]


def test_rrf_fuse_is_a_pure_rank_fusion() -> None:
    fused = rrf_fuse({"bm25": ["a", "b", "c"], "dense": ["c", "a", "d"]}, k=60)
    ids = [d for d, _, _ in fused]
    assert ids[0] == "a"  # ranks 1 and 2 beat ranks 3 and 1
    assert ids[1] == "c"
    assert set(ids) == {"a", "b", "c", "d"}
    score_a = 1 / 61 + 1 / 62
    assert fused[0][1] == pytest.approx(score_a)
    assert fused[0][2] == {"bm25": 1, "dense": 2}
    # Deterministic tie-break: same scores, order by best rank then id.
    tie = rrf_fuse({"x": ["p", "q"], "y": ["q", "p"]})
    assert [d for d, _, _ in tie] == ["p", "q"]
    assert rrf_fuse({}) == []
    weighted = rrf_fuse({"bm25": ["a"], "dense": ["b"]}, weights={"dense": 2.0})
    assert weighted[0][0] == "b"


def test_figures_and_acronyms_stay_whole_tokens() -> None:
    toks = tokenize("Only 25.19% of carers used SWAP and RIACT (£1,200)")
    assert "25.19%" in toks and "25.19" in toks
    assert "swap" in toks and "riact" in toks and "£1,200" in toks


def test_bm25_documents_are_what_the_embedder_sees(eng: Engine) -> None:
    """The retriever tokenises header and text separately (text once, shared with the idf);
    joined, they must be exactly the tokens of embed_text, the header-then-text the model sees."""
    from ingest.chunk import embed_text

    st = eng.retriever.state()
    assert st.chunks
    for c in st.chunks:
        assert tokenize(c.header()) + tokenize(c.text) == tokenize(embed_text(c)), c.chunk_id
    assert st.df["carer"] == sum("carer" in set(tokenize(c.text)) for c in st.chunks) > 0


def test_councils_and_statements_recognised_from_index_metadata(eng: Engine) -> None:
    cat = eng.derived().councils
    u = understand("How many Stockton carers used a support group?", cat)
    assert u.councils == ("stockton-on-tees",)
    u = understand("What did St Helens score for care provision?", cat)
    assert u.councils == () and u.unknown_councils == ("St Helens",)
    assert u.statements == ("Care provision, integration and continuity",)
    u = understand("Compare Darlington and Staffordshire on safeguarding", cat)
    assert u.intent == "compare" and u.councils == ("darlington", "staffordshire")
    assert understand("What was Ealing's overall rating?", cat).intent == "rating"
    assert understand("Which councils scored 2 for any quality statement?", cat).score_value == 2
    # The possessive typed without its apostrophe names the council; a word that is English
    # with the "s" ("baths") does not.
    assert understand("whats stocktons rating", cat).councils == ("stockton-on-tees",)
    assert understand("what did darlingtons carers say", cat).councils == ("darlington",)
    cat_bath = council_catalogue(["Bath Council", *[c.name for c in cat]])
    assert understand("how many people need help with baths", cat_bath).councils == ()
    # A new council is recognised without code changes: the catalogue comes from the index.
    cat2 = council_catalogue(["Testshire County Council", *[c.name for c in cat]])
    assert understand("What did Testshire score for safeguarding?", cat2).councils == ("testshire",)


# --- structured answers ---------------------------------------------------------------------

def test_score_question_answered_from_metadata_with_exact_citation(eng: Engine) -> None:
    a = ask(eng, "What score did Darlington get for safeguarding?")
    assert not a.abstained
    assert "3 - Evidence shows a good standard" in a.text and "[1]" in a.text
    assert a.citations[0].report_id == "darlington-safeguarding"
    assert_offsets_exact(eng, a)


def test_full_width_letters_and_invisible_characters_ask_the_same_question(eng: Engine) -> None:
    # A phone keyboard or a paste gives "Ｄａｒｌｉｎｇｔｏｎ" or "safe\u200bguarding"; it reads
    # the same, so it is answered the same.
    plain = ask(eng, "What score did Darlington get for safeguarding?")
    typed = ask(eng, "What score did \uff24\uff41\uff52\uff4c\uff49\uff4e\uff47\uff54\uff4f\uff4e "
                     "get for safe\u200bguarding?")
    assert typed.text == plain.text and typed.citations == plain.citations


def test_rating_question_cites_rating_and_percentage_line(eng: Engine) -> None:
    a = ask(eng, "What was Staffordshire's overall rating?")
    assert "Good" in a.text and "75%" in a.text
    assert "75%" in a.citations[0].quote
    assert_offsets_exact(eng, a)


def test_a_table_cell_is_quoted_with_the_labels_above_it(eng: Engine) -> None:
    """A score or rating cell alone ("3 - Evidence shows a good standard") does not say what
    it scores: the citation starts at the label lines above it, never at another cell."""
    quote = ask(eng, "What score did Darlington get for safeguarding?").citations[0].quote
    assert quote.startswith("Safeguarding\nScore: 3\n3 - Evidence shows a good standard")
    a = ask(eng, "What was Westminster's overall rating?")
    assert " ".join(a.citations[0].quote.split()) == (
        "Local authority rating and score \u2022 Westminster City Council Good Score: 75")
    assert_offsets_exact(eng, a)
    # Ealing's overview lists its scores one under another: each cell stops at the one above.
    a = ask(eng, "What did Ealing score for safeguarding?")
    assert " ".join(a.citations[0].quote.split()).startswith("\u2022 Safeguarding Score:")


def label_text() -> tuple[str, set[tuple[int, int]]]:
    text = ("Inspectors met staff.\nQuality statement scores\n\n  \u2022 Assessing needs\n"
            "    Score: 2\n  \u2022 Safeguarding\n    Score: 3\n")
    cells = {(text.index("\u2022 Assessing"), text.index("2\n") + 1),
             (text.index("\u2022 Safeguarding"), len(text) - 1)}
    return text, cells


def test_label_start_stops_at_a_sentence_another_cell_or_the_line_limit() -> None:
    text, cells = label_text()
    first, second = sorted(cells)
    assert label_start(text, *first, cells, 2) == text.index("Quality")  # not the sentence
    assert label_start(text, *first, cells, 0) == first[0]
    assert label_start(text, *second, cells, 2) == second[0]  # the cell above is not a label
    sentence = "Darlington is rated good."
    assert label_start("Heading\n" + sentence, 8, 8 + len(sentence), set(), 2) == 8


def test_a_rating_printed_with_its_words_is_answered_with_them(eng: Engine) -> None:
    """CQC prints an indicative rating as "Good: Evidence shows a good standard": the answer
    says it so, where a rating followed by its score stays bare."""
    a = ask(eng, "What rating did CQC give Birmingham City Council for adult social care?")
    assert "rating is Good: Evidence shows a good standard [1]." in a.text
    assert "rating is Good with an overall score of 75" in ask(
        eng, "What was Westminster's overall rating?").text


def test_a_rating_stated_as_a_sentence_is_quoted_as_worded_after_the_rating(eng: Engine) -> None:
    """Darlington's rating is a press release's sentence ("... has rated Darlington Borough
    Council as good, ..."): named, then quoted; Staffordshire's is a table line, named only."""
    a = ask(eng, "What was Darlington's overall rating?")
    row = " ".join(a.citations[0].quote.split()).rstrip(".")
    assert len(row.split()) > 20 and "rated Darlington Borough Council as good" in row
    assert a.text.startswith("Darlington Borough Council's overall rating is Good, in the report")
    assert f"\u201c{row}\u201d [1]." in a.text
    assert "in the report" not in ask(eng, "What was Staffordshire's overall rating?").text
    assert_offsets_exact(eng, a)


def test_which_councils_scored_2_is_complete_with_one_citation_per_row(eng: Engine) -> None:
    a = ask(eng, "Which councils scored 2 for any quality statement?")
    for council in ("Birmingham City Council", "Darlington Borough Council", "London Borough of Ealing"):
        assert council in a.text
    assert "Staffordshire" not in a.text and "Westminster" not in a.text
    # every stated 2 in the corpus is a row: Birmingham 2, Darlington 1, Ealing 7
    assert len(a.citations) == 10
    assert all("2" in c.quote for c in a.citations)
    assert_offsets_exact(eng, a)


def test_compare_draws_evidence_from_each_named_council(eng: Engine) -> None:
    a = ask(eng, "Compare Darlington and Staffordshire on assessing needs")
    reports = {c.report_id for c in a.citations}
    assert any(r.startswith("darlington") for r in reports)
    assert any(r.startswith("staffordshire") for r in reports)
    assert len(a.text.split()) <= 75
    assert_offsets_exact(eng, a)


def test_unindexed_council_abstains(eng: Engine) -> None:
    for q in ("What did Leeds score for safeguarding?", "What was Sunderland's overall rating?"):
        a = ask(eng, q)
        assert a.abstained and "don't cover" in a.text


def test_a_city_region_is_not_the_council_of_that_name() -> None:
    """"NHS Greater Manchester" names a city region: the question is about Bury, not an
    unindexed Manchester City Council (it was refused as "the reports don't cover Manchester")."""
    from rag.query import org_mentions

    named = [m.typed for m in org_mentions("Who is the place lead for NHS Greater Manchester in "
                                           "Bury?", [])]
    assert named == ["Bury"]
    assert [m.typed for m in org_mentions("what did ofsted say about manchester", [])] == [
        "manchester"]


def test_score_not_stated_abstains_naming_what_is_missing(eng: Engine) -> None:
    a = ask(eng, "What did Gateshead score for safeguarding?")
    assert a.abstained
    assert "Gateshead" in a.text and "Safeguarding" in a.text


def test_every_answer_sentence_ends_with_a_marker_and_offsets_are_exact(eng: Engine) -> None:
    qs = ["How many Stockton carers accessed a support group?",
          "What is the population of Bradford?",
          "Which councils were rated Good?",
          "What did Staffordshire score across all quality statements?",
          "Where is carer support below the England average?"]
    for q in qs:
        a = ask(eng, q)
        assert_offsets_exact(eng, a)
        if not a.abstained:
            for sent in re.split(r"(?<=[.!?])\s+(?=[A-Z])", a.text):
                assert re.search(r"\[\d+\][.!?\"”’)]*$", sent), (q, sent)
            assert {int(n) for n in re.findall(r"\[(\d+)\]", a.text)} <= {c.n for c in a.citations}


def test_which_councils_were_not_rated_a_grade_lists_the_others(eng: Engine) -> None:
    """"Which councils were not rated Good?" is every rated council the "rated Good" list
    leaves out, each with its own rating and citation."""
    good = ask(eng, "Which councils were rated Good?")
    other = ask(eng, "Which councils weren't rated Good?")
    assert other.answerer == "table" and other.text.startswith("Indexed councils not rated Good")
    rated = {r.council for r in eng.derived().ratings}
    named = {c.council for c in other.citations} | {c.council for c in good.citations}
    assert named == rated and not {c.council for c in other.citations} & {
        c.council for c in good.citations}
    assert ": Good [" not in other.text and len(other.citations) >= 1
    assert_offsets_exact(eng, other)


@pytest.mark.parametrize("question, statement, low", [
    ("Which council has the lowest score for safeguarding?", "Safeguarding", True),
    ("which council scored highest on assessing needs", "Assessing needs", False),
    # as analysts say it (fresh cross-council questions)
    ("top scorer for equity in experience and outcomes?", "Equity in experience and outcomes",
     False),
    ("bottom of the table for governance management and sustainability?",
     "Governance, management and sustainability", True),
])
def test_the_councils_at_the_bottom_or_top_of_one_statements_scores(
        eng: Engine, question: str, statement: str, low: bool) -> None:
    """Every council sharing the lowest (highest) stated score of the statement is listed,
    each cited on its score line; no other council is."""
    a = ask(eng, question)
    rows = [r for r in eng.derived().scores if r.statement == statement]
    end = (min if low else max)(r.score for r in rows)
    assert a.answerer == "table" and f"is {end} (" in a.text, a.text
    assert {c.council for c in a.citations} == {r.council for r in rows if r.score == end}
    assert all(str(end) in c.quote for c in a.citations)
    assert_offsets_exact(eng, a)


@pytest.mark.parametrize("typed, council", [
    ("What did Stafordshire score for safeguarding?", "Staffordshire County Council"),
    ("what did darlinton score for safeguarding", "Darlington Borough Council"),
])
def test_a_council_typed_one_slip_away_is_that_council(eng: Engine, typed: str,
                                                         council: str) -> None:
    """A council name the index lacks as typed, one edit from a word it has, is read as that
    council: its score comes from the tables, and the answer keeps the question as typed."""
    a = ask(eng, typed)
    assert a.answerer == "table" and [c.council for c in a.citations] == [council], a.text
    assert a.question == typed


def test_a_misspelling_nearer_a_report_word_is_not_read_as_a_council_word(eng: Engine) -> None:
    """"comunity" is one edit from the reports' "community", two from "county" (of
    Staffordshire County Council): it is the report word, and no council filter follows."""
    from rag.answer import understand_and_filter

    u, _ = understand_and_filter("how do darlington support their comunity groups", eng)
    assert "community groups" in u.content and "county" not in u.content


def test_filters_always_apply(eng: Engine) -> None:
    a = ask(eng, "What do carers say about support?", filters=Filters(councils=("Stockton",)))
    assert all(c.council and "Stockton" in c.council for c in a.citations)
    with pytest.raises(QuestionError, match="no indexed council"):
        ask(eng, "carers", filters=Filters(councils=("Atlantis",)))


def test_a_report_filter_that_leaves_out_every_report_of_the_council_named_says_so(
        eng: Engine) -> None:
    # The app's year filter: Darlington's pages are 2025's, so under 2024 its score is "not
    # stated" of the filtered reports only (a browser review read it as a false "don't say").
    staffs = tuple(r.report_id for r in eng.store.reports() if r.report_id.startswith("staff"))
    a = ask(eng, "What score did Darlington get for safeguarding?",
            filters=Filters(report_ids=staffs))
    assert a.notes == ("The report filters (family, year) leave out every report of Darlington "
                       "Borough Council, which the question names: answered from the filtered "
                       "reports only.",)
    kept = ask(eng, "What score did Staffordshire get for safeguarding?",
               filters=Filters(report_ids=staffs))
    assert not kept.notes and "Safeguarding is 3" in kept.text


def test_a_council_filter_narrows_a_list_across_councils(eng: Engine) -> None:
    # The API's and the CLI's council filter: a list across councils is the filtered ones'
    # (an API review got every council's rating, with no note, under a Darlington filter).
    every = ask(eng, "Which councils were rated good?")
    assert {c.report_id.split("-")[0] for c in every.citations} >= {"darlington", "staffordshire"}
    one = ask(eng, "Which councils were rated good?", filters=Filters(councils=("Darlington",)))
    assert one.citations and {c.report_id.split("-")[0] for c in one.citations} == {"darlington"}
    assert "Darlington" in one.text and "Staffordshire" not in one.text


def test_a_filter_that_leaves_out_what_the_question_names_says_so(eng: Engine) -> None:
    from ui.render import answer_text

    q = "What score did Darlington get for safeguarding?"
    a = ask(eng, q, filters=Filters(councils=("Staffordshire",)))
    # The filter decides what is searched; the note says why the answer is not Darlington's.
    assert all(c.report_id.startswith("staffordshire") for c in a.citations)
    assert len(a.notes) == 1 and "Darlington" in a.notes[0] and "Staffordshire" in a.notes[0]
    assert a.to_json()["notes"] == list(a.notes) and f"Note: {a.notes[0]}" in answer_text(a)
    s = ask(eng, q, filters=Filters(statements=("Assessing needs",)))
    assert len(s.notes) == 1 and "Safeguarding" in s.notes[0] and "Assessing needs" in s.notes[0]
    # Nothing to say when the filter keeps what the question names, or the question names none.
    assert not ask(eng, q, filters=Filters(councils=("Darlington", "Staffordshire"))).notes
    assert not ask(eng, "What score did they get for safeguarding?",
                   filters=Filters(councils=("Staffordshire",))).notes


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """Darlington's CQC pages beside two Ofsted PDFs (Doncaster's children's services, Bury's
    joint Ofsted and CQC SEND inspection)."""
    settings = Settings(index_dir=tmp_path_factory.mktemp("mixed-index"), embedder="hash")
    files = [*sorted((ROOT / "corpus").glob("darlington__*.txt")),
             *(ROOT / "corpus" / "ofsted" / f for f in ("ofsted-ilacs-doncaster-2025.pdf",
                                                      "ofsted-send-bury-2024.pdf"))]
    assert not ingest(files, settings).failed
    return Engine.load(settings)


def test_a_question_naming_an_inspectorate_is_answered_from_its_reports(mixed: Engine) -> None:
    def ask_(q: str) -> Answer:
        return answer(q, mixed.settings, engine=mixed)

    # Not a CQC score for "Ofsted", nor an Ofsted grade for "CQC": the council has none.
    none = ask_("What did Ofsted rate Darlington?")
    assert none.abstained and "no Ofsted report for Darlington" in none.text
    none = ask_("What CQC rating did Doncaster get?")
    assert none.abstained and "no CQC report for Doncaster" in none.text
    # A joint inspection is by both; a question naming neither searches everything.
    send = ask_("What did CQC say about health visitors in Bury?")
    assert not send.abstained and send.citations[0].report_id == "ofsted-send-bury-2024"
    assert not ask_("What rating did Darlington get?").abstained
    ofsted = ask_("What did Ofsted say about waiting times?")
    assert ofsted.citations and all(c.report_id.startswith("ofsted-") for c in ofsted.citations)
    # Of two councils named, the one with no such report is said, not silently dropped.
    both = ask_("What did Ofsted say about Bury and Darlington?")
    assert all(c.report_id.startswith("ofsted-") for c in both.citations)
    assert both.notes == ("The indexed reports include no Ofsted report for Darlington Borough "
                          "Council: answered from the others.",)
    filtered = answer("What did Ofsted say about care leavers?", mixed.settings,
                      Filters(councils=("Darlington",)), engine=mixed)
    assert filtered.abstained and "no Ofsted report for Darlington" in filtered.text


def test_a_grade_only_another_kind_of_report_gives_names_that_report(mixed: Engine) -> None:
    def ask_(q: str) -> Answer:
        return answer(q, mixed.settings, engine=mixed)

    # Care leavers are graded by an inspection of children's services: Darlington has only
    # CQC pages, Bury only its SEND inspection.
    for q, council, has in (("What grade did Darlington get for care leavers?",
                             "Darlington Borough Council", "adult social care (CQC)"),
                            ("how was bury rated for children in care", "Bury",
                             "SEND (Ofsted and CQC)")):
        a = ask_(q)
        assert a.abstained and a.text.startswith(
            f"The indexed reports include no children's services (Ofsted) report for {council}")
        assert a.text.endswith(f"its indexed reports: {has}."), a.text
    # A CQC score asked of a council with no CQC assessment indexed says so too.
    score = ask_("what score did bury get for safeguarding?")
    assert score.abstained and score.text.endswith(
        "Scores are given by CQC's assessments of adult social care, and none is indexed for "
        "it; its indexed reports: SEND (Ofsted and CQC)."), score.text
    assert "Scores are given" not in ask_("what score did darlington get for wellbeing?").text
    # Doncaster has one; "leadership" is CQC's theme as much as Ofsted's: searched as before.
    assert ("The experiences and progress of care leavers: Requires improvement to be good"
            in ask_("What grade did Doncaster get for care leavers?").text)
    assert "no children's services" not in ask_("How did Darlington do for leadership?").text


def test_when_a_report_states_no_inspection_dates_its_publication_date_answers(
        mixed: Engine) -> None:
    def ask_(q: str) -> Answer:
        return answer(q, mixed.settings, engine=mixed)

    # A CQC local authority page states when it was published, not when CQC assessed.
    a = ask_("When was Darlington assessed by CQC?")
    assert a.text.startswith("The indexed reports don't state when the inspection or "
                             "assessment took place, only when the report was published: "
                             "Darlington Borough Council's report was published on "), a.text
    assert a.citations[0].quote in a.text and a.citations[0].report_id.startswith("darlington")
    # An Ofsted report states its inspection's dates: those answer.
    assert ask_("When was Doncaster inspected?").text.startswith("Doncaster")


def test_a_page_that_states_when_the_assessment_started_answers_when(eng: Engine) -> None:
    a = ask(eng, "When was Lincolnshire assessed?")
    assert a.text == "Lincolnshire County Council's assessment started on 11 May 2023 [1]."
    assert a.citations[0].quote == "11 May 2023"
    assert_offsets_exact(eng, a)


@pytest.mark.parametrize("claim, rating", [
    ("Westminster was rated good, right?", "Westminster City Council's overall rating is Good"),
    ("Ealing was rated good, right?", "London Borough of Ealing's overall rating is Requires "
                                      "improvement"),
    ("is it true that Ealing requires improvement?", "London Borough of Ealing's overall "
                                                     "rating is Requires improvement"),
])
def test_a_claim_about_a_councils_rating_is_answered_with_its_rating(
        eng: Engine, claim: str, rating: str) -> None:
    # Put council first, as journalists check claims, it got Westminster's deprivation rank
    # and "don't say"; asked "was Westminster rated good?" it was answered (second CLI review).
    assert ask(eng, claim).text.startswith(rating)


def test_an_inspectorate_with_no_report_indexed_is_named(eng: Engine) -> None:
    a = answer("What did Ofsted say about safeguarding?", eng.settings, engine=eng)
    assert a.abstained and a.text.startswith("The indexed reports include no Ofsted report:")


def test_a_waiting_time_is_answered_by_a_length_of_time(tmp_path: Path) -> None:
    from conftest import one_page_engine

    page = ("Fenwick Borough Council: local authority assessment\n"
            "Key findings for this quality statement\n"
            "People waiting for a Care Act assessment told us they were kept informed while "
            "they waited, and 64.84% of people were satisfied with their care and support.\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    e = one_page_engine(tmp_path / "a", page)
    q = "What is the average waiting time for a Care Act assessment in Fenwick?"
    # A share is no waiting time: the report does not state one.
    assert answer(q, e.settings, engine=e).abstained
    timed = page.replace("they waited,", "they waited an average of 11 days,")
    e = one_page_engine(tmp_path / "b", timed)
    assert "11 days" in answer(q, e.settings, engine=e).text


def test_a_small_k_that_finds_nothing_says_more_passages_may(eng: Engine) -> None:
    q = "How many llamas does Darlington keep?"
    few = answer(q, eng.settings, engine=eng, k=1)
    assert few.abstained and few.notes == (
        f"Only 1 passage was read (k=1; the default is {eng.settings.k}): a larger k may find "
        "the answer.",)
    assert not answer(q, eng.settings, engine=eng).notes  # the default k: nothing to add


def test_answers_are_deterministic(eng: Engine) -> None:
    q = "What did people say about safeguarding in Birmingham?"
    assert ask(eng, q).to_json()["answer"] == ask(eng, q).to_json()["answer"]


# --- bad questions and indexes -------------------------------------------------------------

@pytest.mark.parametrize("q, match", [
    ("", "empty"), ("   ", "empty"), ("x" * 10_000, "10,000 characters"),
    ("日本語の質問ですか", "English"), ("?!?! $$$ ### 123", "English"),
])
def test_bad_questions_get_clear_errors(eng: Engine, q: str, match: str) -> None:
    with pytest.raises(QuestionError, match=match):
        ask(eng, q)


def test_missing_or_empty_index_says_run_ingest(tmp_path: Path) -> None:
    with pytest.raises(IndexNotReadyError, match="reportqa ingest corpus/"):
        Engine.load(Settings(index_dir=tmp_path / "nope", embedder="hash"))
    empty = Settings(index_dir=tmp_path / "empty", embedder="hash")
    ingest([], empty)
    with pytest.raises(IndexNotReadyError, match="reportqa ingest corpus/"):
        answer("anything at all?", empty, engine=Engine.load(empty))


# --- number check ---------------------------------------------------------------------------

def test_number_check_drops_a_fabricated_figure(eng: Engine) -> None:
    good = ask(eng, "What score did Darlington get for safeguarding?")
    c = good.citations[0]
    forged = replace(good, text=good.text + " It also scored 97% on everything [1].")
    checked = check_figures(forged)
    assert "97%" not in checked.text and checked.notes
    assert "3 - Evidence shows a good standard" in checked.text
    only_forged = replace(good, text="Darlington scored 4 - Evidence shows an exceptional standard [1].",
                          citations=(c,))
    assert check_figures(only_forged).abstained


# --- versions of the same page ------------------------------------------------------------

def test_same_page_from_two_sources_counts_once_and_newer_assessment_wins(tmp_path: Path) -> None:
    src = (ROOT / "corpus" / "darlington__safeguarding.txt").read_text(encoding="utf-8")
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "dar-safeguarding.txt").write_text(src, encoding="utf-8")
    # An excerpt of the same page from another source: not counted twice.
    lines = src.splitlines()
    (folder / "dar-safeguarding-excerpt.md").write_text("\n".join(lines[: max(12, len(lines) - 3)]),
                                                        encoding="utf-8")
    # Two dated assessments of another council's overview: the newer is the default.
    ov = (ROOT / "corpus" / "staffordshire__overview.txt").read_text(encoding="utf-8")
    (folder / "sta-2025.txt").write_text(ov, encoding="utf-8")
    old = ov.replace("30 May 2025", "12 March 2023").replace("Safeguarding\n    Score: 3",
                                                             "Safeguarding\n    Score: 2")
    (folder / "sta-2023.txt").write_text(old, encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "idx", embedder="hash")
    assert ingest([folder], settings).reports_total == 4
    e = Engine.load(settings)
    d = e.derived()
    status = {rid: v.status for rid, v in d.versions.items()}
    assert sorted(status.values()) == ["current", "current", "duplicate", "superseded"]
    assert status["sta-2023"] == "superseded" and status["sta-2025"] == "current"
    dar_rows = [r for r in d.scores if r.council_key == "darlington" and r.statement == "Safeguarding"]
    assert len(dar_rows) == 1
    sta = [r for r in d.scores if r.council_key == "staffordshire" and r.statement == "Safeguarding"]
    assert [r.score for r in sta] == [3]
    a = answer("What did Staffordshire's assessment say about people's experiences?", settings, engine=e)
    assert all(c.report_id != "sta-2023" for c in a.citations)
    a = answer("What did Staffordshire's 2023 assessment say about people's experiences?",
               settings, engine=e)
    assert all(c.report_id != "sta-2025" for c in a.citations)


def test_an_edited_copy_of_a_page_replaces_it_and_ingest_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.cli import main

    monkeypatch.setenv("REPORTQA_EMBEDDER", "hash")
    src = (ROOT / "corpus" / "darlington__about.txt").read_text(encoding="utf-8")
    assert "110,562" in src
    (tmp_path / "first").mkdir()
    (tmp_path / "first" / "darlington__about.txt").write_text(src, encoding="utf-8")
    (tmp_path / "fixed").mkdir()
    (tmp_path / "fixed" / "darlington__about.txt").write_text(src.replace("110,562", "120,999"),
                                                              encoding="utf-8")
    index = str(tmp_path / "idx")
    assert main(["ingest", str(tmp_path / "first"), "--index", index]) == 0
    assert "note:" not in capsys.readouterr().out  # nothing else of that page yet
    assert main(["ingest", str(tmp_path / "fixed"), "--index", index, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    [new] = out["added"]
    assert out["notes"] == {new: f"{new} now stands in for darlington-about, a copy of the "
                                 f"same page: answers use {new}"}
    settings = Settings(index_dir=Path(index), embedder="hash")
    a = answer("What is the population of Darlington?", settings, engine=Engine.load(settings))
    assert "120,999" in a.text and a.citations[0].report_id == new
    # A parser upgrade re-reads both files in one run: the edited copy stays the newer.
    from ingest import pipeline

    monkeypatch.setattr(pipeline, "PARSER_VERSION", pipeline.PARSER_VERSION + 1)
    assert main(["ingest", str(tmp_path / "first"), str(tmp_path / "fixed"), "--index", index]) == 0
    assert "updated 2" in capsys.readouterr().out
    a = answer("What is the population of Darlington?", settings, engine=Engine.load(settings))
    assert "120,999" in a.text and a.citations[0].report_id == new


# --- CLI: scores table covers every stated score -------------------------------------------

def _stated_scores() -> set[tuple[str, str]]:
    """(file, score) pairs read from the pages with independent regexes."""
    out = set()
    for f in sorted((ROOT / "corpus").glob("*.txt")):
        text = f.read_text(encoding="utf-8")
        for m in re.finditer(r"^(?:Score: ?([1-4])|([1-4]) - Evidence shows.*|\s*\d\..*[–-] ?([1-4]))\s*$",
                             text, re.M):
            out.add((f.name, next(g for g in m.groups() if g)))
    return out


def test_scores_csv_lists_every_stated_score(eng: Engine, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.cli import main

    monkeypatch.setenv("REPORTQA_EMBEDDER", "hash")
    assert main(["scores", "--csv", "--index", str(eng.settings.index_dir)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    by_report: dict[str, set[str]] = {}
    for r in rows:
        if r["quality_statement"] != "(overall rating)":
            by_report.setdefault(r["report_id"], set()).add(r["score"])
            text = eng.retriever.report_text(r["report_id"])
            assert text[int(r["start"]) : int(r["end"])] == r["quote"]
            assert r["score"] in r["quote"]
    for fname, score in _stated_scores():
        rid = re.sub(r"[^a-z0-9]+", "-", Path(fname).stem.lower()).strip("-")
        assert score in by_report.get(rid, set()), (fname, score)
    # 9 + 9 + 9 overview/press rows + Darlington 8, Staffordshire 5, Birmingham 4, others
    assert len([r for r in rows if r["quality_statement"] != "(overall rating)"]) >= 40


def test_stats_extracts_figure_comparator_direction_source(eng: Engine) -> None:
    stats = [s for s in eng.derived().stats if s.raw == "25.19%"]
    assert len(stats) == 1
    s = stats[0]
    assert s.council == "Stockton-on-Tees Borough Council"
    assert s.comparator == "England average" and s.comparator_value == pytest.approx(32.98)
    assert s.direction == "below" and s.source == "SACE" and s.date == "June 2024"
    assert "support group" in s.subject
    text = eng.retriever.report_text(s.report_id)
    assert text[s.figure_start : s.figure_end] == "25.19%"


def test_csv_export_rows(eng: Engine, tmp_path: Path) -> None:
    from ui.render import write_csv

    a = ask(eng, "Which councils scored 2 for any quality statement?")
    out = tmp_path / "evidence.csv"
    write_csv(a, out)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == len(a.citations)
    assert {"council", "quality_statement", "claim", "quote", "source", "start", "end"} <= set(rows[0])
    assert all(r["source"] for r in rows)


def test_citation_records_round_trip() -> None:
    c = Citation(1, "r", "C", "quality_statement", "S", "Sec", 3, "q", "p q", 2, 3, "http://x")
    assert c.to_json()["start"] == 2 and c.to_json()["source"] == "http://x"


def test_ask_to_a_csv_path_that_cannot_be_written_still_prints_the_answer(
        eng: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """The answer is printed first; the CSV failure is one clear line naming the file and
    the fix (it was a traceback, and the answer was lost)."""
    from ui.cli import main

    monkeypatch.setenv("REPORTQA_EMBEDDER", "hash")
    index = str(eng.settings.index_dir)
    for bad in (tmp_path / "missing" / "x.csv", tmp_path):
        assert main(["ask", "What score did Darlington get for safeguarding?", "--index", index,
                     "--csv", str(bad)]) == 1
        out, err = capsys.readouterr()
        assert "Safeguarding is 3" in out
        assert err.startswith(f"error: cannot write the CSV to {bad}") and "--csv" in err, err


def test_chat_in_the_terminal_reads_commands_and_follow_ups(
        eng: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`reportqa chat`: "/help" and a mistyped command answer with the commands (they were
    searched as questions), a follow-up is read against the turn before, "/quit" ends."""
    from ui.cli import main

    monkeypatch.setenv("REPORTQA_EMBEDDER", "hash")
    # A bare "why?" first: nothing before it, so no "(read as: ; ...)" line with nothing read.
    monkeypatch.setattr("sys.stdin", io.StringIO("why?\n"))
    assert main(["chat", "--index", str(eng.settings.index_dir)]) == 0
    out = capsys.readouterr().out
    assert "There is no earlier answer" in out and "read as" not in out, out
    lines = ["/help", "/bogus", "/literal", "What score did Darlington get for safeguarding?",
             "????", "and Staffordshire?", "/new", "and Staffordshire?"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join([*lines, "/quit",
                                                              "What score did Bury get?"])))
    assert main(["chat", "--index", str(eng.settings.index_dir)]) == 0
    out, err = capsys.readouterr()
    assert err.count("commands: /new") == 3 and "unknown command /bogus" in err
    assert "/literal needs a question" in err and "English" in err
    assert "Staffordshire County Council's score for Safeguarding" in out and "Bury" not in out
    # How the follow-up was read, and how to ask the words alone, in plain words.
    assert ("(read as: What score did Staffordshire get for safeguarding? — to ask only the "
            "words you typed: /literal and Staffordshire?)") in out, out
    # With --json, one line back for every message typed: a script can pair them up.
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines)))
    assert main(["chat", "--json", "--index", str(eng.settings.index_dir)]) == 0
    replies = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(replies) == len(lines)
    assert [r.get("command") or r.get("error") for r in replies if "input" in r] == [
        "help", "command", "command", "question", "new"]
    answers = [r for r in replies if "input" not in r]
    assert [a["read_as"] for a in answers] == ["What score did Darlington get for safeguarding?",
                                               "What score did Staffordshire get for safeguarding?",
                                               "and Staffordshire?"]
    assert "Staffordshire County Council's score for Safeguarding" in answers[1]["answer"]


def test_the_csv_of_a_not_found_answer_claims_nothing_for_its_closest_passages(
        eng: Engine) -> None:
    from ui.render import csv_rows

    a = answer("How many llamas does Darlington keep?", eng.settings, engine=eng)
    assert a.abstained and a.citations
    assert [r["claim"] for r in csv_rows(a)] == [""] * len(a.citations)
    assert [r["see_also"] for r in csv_rows(a)] == ["yes"] * len(a.citations)
    quoted = answer("What score did Darlington get for safeguarding?", eng.settings, engine=eng)
    assert [r["see_also"] for r in csv_rows(quoted)] == [""] * len(quoted.citations)


@pytest.mark.parametrize("k", ["0", "-3", "101", "many"])
def test_ask_refuses_a_number_of_passages_the_api_would(k: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from ui.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["ask", "What score did Darlington get for safeguarding?", "--k", k])
    assert exit_.value.code == 2
    assert "is not a number of passages from 1 to 100" in capsys.readouterr().err


def test_the_cli_text_and_csv_name_a_pdf_quotes_page() -> None:
    """A user with a 50-page PDF looks for "p. 12": the terminal answer and the CSV export say
    the page (a range when the quote crosses a page break; nothing for a web page)."""
    from ui.render import answer_text, csv_rows

    def cite(n: int, page: int | None, page_end: int | None) -> Citation:
        return Citation(n, "r", "Bury", None, None, "Health", None, "Waits are long.",
                        "Waits are long.", 10, 25, "/c/ofsted-send-bury.pdf", page=page,
                        page_end=page_end)

    a = Answer("q", "Waits are long [1][2][3][4].", False,
               (cite(1, 7, None), cite(2, 7, 7), cite(3, 7, 8), cite(4, None, None)))
    shown = [ln.strip() for ln in answer_text(a).splitlines() if "(chars" in ln]
    assert shown == ["/c/ofsted-send-bury.pdf, p. 7 (chars 10-25)",
                     "/c/ofsted-send-bury.pdf, p. 7 (chars 10-25)",
                     "/c/ofsted-send-bury.pdf, p. 7-8 (chars 10-25)",
                     "/c/ofsted-send-bury.pdf (chars 10-25)"]
    assert [r["page"] for r in csv_rows(a)] == ["7", "7", "7-8", ""]


def _about_page_engine(tmp_path: Path, council: str, section: str, body: str) -> Engine:
    """An index (hash embedder) of one fictional about-page of "<council> Borough Council"."""
    page = (f"{council} Borough Council: local authority assessment\n\nAbout {council}\n\n"
            f"{section}\n{body}\n")
    f = tmp_path / f"{council.lower()}__about.txt"
    f.write_text(page, encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index", embedder="hash")
    ingest([f], settings)
    return Engine.load(settings)


def _ranked(eng: Engine, q: str) -> list[Any]:
    """The extractive answerer's scored candidate sentences for ``q`` (lexical stage)."""
    from rag.evidence import rank_sentences

    u = understand(q, eng.derived().councils)
    return rank_sentences(u, eng.retriever.retrieve(q, Filters(), 4), eng)


def _best(eng: Engine, q: str) -> str:
    return max(_ranked(eng, q), key=lambda c: c.score).text


def test_count_questions_prefer_a_count_over_a_share(tmp_path: Path) -> None:
    """Sentence ranking: "what is X's population?" prefers the sentence that states a count
    over an equally matching (and shorter) one about population shares, as percentage
    questions prefer a percentage."""
    eng = _about_page_engine(
        tmp_path, "Fenwick", "Demographics",
        "The Fenwick population is older than average (24.1%). Fenwick Borough Council is a "
        "unitary authority serving a mixed urban and rural population of around 210,400 people.")

    def scores(q: str) -> tuple[float, float]:
        cands = _ranked(eng, q)
        count = max(c.score for c in cands if "210,400" in c.text)
        share = max(c.score for c in cands if "24.1%" in c.text)
        return count, share

    for q in ("What is Fenwick's population?", "What is the population of Fenwick?"):
        count, share = scores(q)
        assert count > share, (q, count, share)
    count, share = scores("What percentage of Fenwick's population is older?")
    assert share > count


def test_a_short_whole_sentence_is_a_candidate_but_a_fragment_or_label_is_not(
        tmp_path: Path) -> None:
    """Inspectors state some findings in three words ("Morale is high."): a whole sentence
    that short is a candidate answer. A fragment a PDF line break leaves alone ("...
    passed to Fenwick\nHeartlands and Frimley ICBs."), a label ("Score: 3.") and a heading
    question are not."""
    eng = _about_page_engine(
        tmp_path, "Fenwick", "Workforce",
        "Social workers feel well supported by their managers in Fenwick. Morale is high.\n"
        "In 2022 responsibility for health services in Fenwick passed to Fenwick\n"
        "Heartlands and Frimley ICBs.\nScore: 3.\nWhat needs to improve?\n")
    texts = {c.text for c in _ranked(eng, "is morale high among fenwick social workers "
                                          "and how are the icbs and score")}
    assert "Morale is high." in texts
    assert not texts & {"Heartlands and Frimley ICBs.", "Score: 3.", "What needs to improve?"}


def test_difference_questions_prefer_the_sentence_stating_the_difference(tmp_path: Path) -> None:
    """"By how much did spend exceed the estimate?" is answered by "... £8,502,000 more than
    estimated", not by the sentence that states the estimate and repeats the question's words."""
    eng = _about_page_engine(
        tmp_path, "Ashby", "Financial facts",
        "The local authority estimated that it would spend £114,794,000 of its total budget on "
        "adult social care in 2022/23. Its actual spend was £123,296,000, which is £8,502,000 "
        "more than estimated.")
    for q in ("By how much did Ashby's adult social care spend exceed its estimate in 2022/23?",
              "How much did Ashby overspend against its adult social care estimate?"):
        assert understand(q, eng.derived().councils).asks_difference
        best = _best(eng, q)
        assert "£8,502,000 more than estimated" in best, (q, best)
    assert not understand("How much did Ashby estimate it would spend?",
                          eng.derived().councils).asks_difference


def test_counts_written_as_words_are_figures(tmp_path: Path) -> None:
    """"How many areas ...?" is answered by "nine areas": a count in words states a figure,
    so it gets the figure-question preference (while "one of", a pronoun, does not)."""
    from rag.evidence import new_figures

    assert new_figures("CQC looked at nine areas spread across four themes.", set()) == [
        "nine", "four"]
    assert new_figures("This was one of the reasons given.", set()) == []
    eng = _about_page_engine(
        tmp_path, "Cartmel", "How we assess",
        "CQC assessed Cartmel Borough Council across the areas set out in its framework. CQC "
        "looked at nine areas spread across four themes.")
    best = _best(eng, "Across how many areas did CQC assess Cartmel?")
    assert "nine areas" in best, best


def test_shorthand_is_read_but_the_answer_keeps_the_question_as_typed(eng: Engine) -> None:
    """"r" and "ppl" are read as "are" and "people" (rag/vocab/frames.toml), as a misspelt
    council is read as the council; the answer still carries the question as typed."""
    typed = "what did Staffordshire score for safeguarding, r ppl safe there"
    a = ask(eng, typed)
    assert a.question == typed, a.question
