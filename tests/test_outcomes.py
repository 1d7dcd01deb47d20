"""Three outcomes: an answer, "the closest passage may answer this" (uncertain), not found."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import one_page_engine

from evals.metrics import word_count
from rag.answer import MAY_ANSWER, ExtractiveAnswerer, answer
from rag.engine import Engine
from rag.evidence import Candidate, with_marker
from rag.extractive import MAY_ANSWER_TWO, within
from reportqa.records import Answer, Chunk, Citation, Hit
from reportqa.settings import Settings

Q = "How many people live in Bradford?"


@pytest.fixture(scope="module")
def eng(shared_hash_index: Settings) -> Engine:
    return Engine.load(shared_hash_index)


def _ask(eng: Engine, threshold: float, uncertain: float,  # type: ignore[no-untyped-def]
         question: str = Q):
    return answer(question, eng.settings, engine=eng,
                  answerer=ExtractiveAnswerer(threshold, 75, uncertain))



def _keyword_answerer(word: str) -> ExtractiveAnswerer:
    """The extractive answerer with a reader sure of every sentence containing ``word``."""
    return ExtractiveAnswerer(0.5, 75, 0.2, KeywordReader(word), (0.5, 0.2))


def _one_exact_citation(eng: Engine, ask: ExtractiveAnswerer, question: str) -> Citation:
    """The answer's one citation, checked to quote the report exactly at its offsets."""
    a = answer(question, eng.settings, engine=eng, answerer=ask)
    assert a.outcome == "answer" and len(a.citations) == 1, a.text
    c = a.citations[0]
    assert eng.retriever.report_text(c.report_id)[c.start:c.end] == c.quote
    return c


def _loosely(eng: Engine, question: str) -> Answer:
    """The answer when every candidate passes both thresholds: only the answerer's own
    checks (a figure, a name) can hold it back."""
    return answer(question, eng.settings, engine=eng, answerer=ExtractiveAnswerer(0.0, 75, 0.0))


def test_between_the_thresholds_the_best_passage_is_quoted_as_uncertain(eng: Engine) -> None:
    # Not "how many ...?": the hash embedder's best passage for it states only an age
    # ("people aged between 18-64"), which no count question takes even as uncertain.
    a = _ask(eng, threshold=1.01, uncertain=0.0, question="What is Bradford's population like?")
    assert a.outcome == "uncertain" and not a.abstained
    # The closest sentence, and the next closest of the same report when it fits.
    n = len(a.citations)
    assert n in (1, 2) and a.text.startswith(MAY_ANSWER if n == 1 else MAY_ANSWER_TWO)
    assert a.text.endswith(f"[{n}].") and len(a.text.split()) <= 75
    assert not any(c.see_also for c in a.citations)
    assert len({c.report_id for c in a.citations}) == 1
    for c in a.citations:
        assert eng.retriever.report_text(c.report_id)[c.start:c.end] == c.quote
    assert a.to_json()["outcome"] == "uncertain"


def test_below_both_thresholds_is_not_found(eng: Engine) -> None:
    a = _ask(eng, threshold=1.01, uncertain=1.0)
    assert a.outcome == "not_found" and a.abstained
    assert a.to_json()["outcome"] == "not_found"
    assert all(c.see_also for c in a.citations)


def test_above_the_answer_threshold_is_an_answer(eng: Engine) -> None:
    a = _ask(eng, threshold=0.0, uncertain=0.0)
    assert a.outcome == "answer" and not a.text.startswith(MAY_ANSWER)


def test_eval_counts_outcomes_and_uncertain_as_an_answer() -> None:
    from evals.metrics import summarise

    rows = [
        {"answerable": True, "answer": MAY_ANSWER + "It has 560,194 people [1].",
         "abstained": False, "outcome": "uncertain", "correct": True},
        {"answerable": True, "answer": "No.", "abstained": True, "outcome": "not_found"},
        {"answerable": False, "answer": "x [1].", "abstained": False, "outcome": "uncertain"},
        {"answerable": False, "answer": "y [1].", "abstained": False, "outcome": "answer"},
    ]
    s = summarise(rows)
    assert s["answerable_outcomes"] == {"answer": 0, "uncertain": 1, "not_found": 1}
    assert s["unanswerable_outcomes"] == {"answer": 1, "uncertain": 1, "not_found": 0}
    assert s["answer_accuracy"] == 0.5 and s["abstention_accuracy"] == 0.0
    assert s["no_confident_answer"] == 0.5


class KeywordReader:
    """A deterministic fake at the reader plug point: the probability that a candidate
    answers is 0.9 when it states the word asked for, else 0.05."""

    def __init__(self, word: str) -> None:
        self.word = word
        self.seen: list[tuple[str, list[str]]] = []

    def score(self, question: str, candidates: list[str]) -> list[float]:
        self.seen.append((question, candidates))
        return [0.9 if self.word in c else 0.05 for c in candidates]


def test_a_reader_reranks_candidates(eng: Engine) -> None:
    reader = KeywordReader("560,194")
    a = answer(Q + ", according to its CQC assessment?", eng.settings, engine=eng,
               answerer=ExtractiveAnswerer(0.5, 75, 0.2, reader, (0.5, 0.2)))
    assert a.outcome == "answer" and "560,194" in a.citations[0].quote
    question, cands = reader.seen[0]
    assert question == "How many people live in Bradford"  # frames removed
    assert 1 < len(cands) <= 20 and all(c.startswith(("Bradford", "City of Bradford")) or ": " in c
                                        for c in cands)
    # The reader, not word overlap, chooses: one that prefers another sentence is followed.
    other = next(c.split(": ", 1)[1] for c in cands if "560,194" not in c)
    figure = next(c for c in cands if "560,194" in c)
    word = max((w for w in other.split() if w not in figure), key=len)  # not in both
    b = answer(Q, eng.settings, engine=eng,
               answerer=ExtractiveAnswerer(0.5, 75, 0.2, KeywordReader(word), (0.5, 0.2)))
    assert word in b.citations[0].quote and "560,194" not in b.citations[0].quote


@pytest.mark.parametrize(("thresholds", "outcome"), [((0.5, 0.2), "answer"),
                                                     ((1.0, 0.5), "uncertain"),
                                                     ((1.0, 1.0), "not_found")])
def test_the_reader_lifts_the_outcome_only_as_far_as_it_is_sure(
        eng: Engine, thresholds: tuple[float, float], outcome: str) -> None:
    """Confidence is the lexical ranker's; a reader probability at or above the first
    threshold makes its pick an answer, at or above the second at least "uncertain"."""
    q = "What colour are the marmalade notices in Bradford?"
    assert answer(q, eng.settings, engine=eng).outcome == "not_found"
    reader = KeywordReader("Bradford")  # 0.9 for every sentence naming Bradford
    a = answer(q, eng.settings, engine=eng,
               answerer=ExtractiveAnswerer(0.5, 75, 0.2, reader, thresholds))
    assert a.outcome == outcome


@pytest.mark.parametrize(("p", "outcome"), [(0.3, "uncertain"), (0.2, "not_found")])
def test_some_word_overlap_and_some_reader_belief_together_may_answer(
        tmp_path, p: float, outcome: str) -> None:  # type: ignore[no-untyped-def]
    """Under both bars, a pick the reader gives at least weak_pair_p (0.25) is quoted as "may
    answer this" when the question's word overlap is also at least weak_pair_confidence (0.2):
    two weak signals that agree. The bars here are set over the overlap confidence (0.95,
    0.9) and over the reader (0.99), so only that pairing can lift the pick."""
    eng = one_page_engine(tmp_path, _DELAYS)
    q = "what is holding up permanence for fenwick children in care"
    ask = ExtractiveAnswerer(0.95, 75, 0.9, WordReader({"permanence": p}), (0.99, 0.99))
    a = answer(q, eng.settings, engine=eng, answerer=ask)
    assert a.outcome == outcome, a.text
    if outcome == "not_found":  # the overlap was enough: the reader's 0.2 decided
        assert a.confidence is not None and 0.2 <= a.confidence < 0.9, a.confidence


def test_a_quantity_question_answered_without_a_figure_is_not_found(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """"How many ...?" is answered by a figure: when the best sentence states none, the
    reports don't say ("one" counts before a unit: "one day a week"). Asked yes or no or to
    compare ("is the number ... higher?", "how does it compare?"), words can answer, so the
    passage is quoted as one that may."""
    eng = one_page_engine(tmp_path,
                   "Fenwick Borough Council: local authority assessment\nAbout Fenwick\n"
                   "Fenwick Borough Council employs social workers in its locality teams, and the "
                   "council said its social workers had manageable caseloads.\n")
    a = _loosely(eng, "How many social workers does Fenwick employ?")
    assert a.outcome == "not_found", a.text
    avg = _loosely(eng, "What is the average caseload of a social worker in Fenwick?")
    assert avg.outcome == "not_found", avg.text
    d = _loosely(eng, "Is the number of social workers Fenwick employs higher than last year?")
    assert d.outcome == "uncertain", d.text
    e = _loosely(eng, "How does the number of social workers in Fenwick compare with other councils?")
    assert e.outcome == "uncertain", e.text
    f = _loosely(eng, "Why do a number of Fenwick's social workers have manageable caseloads?")
    assert f.outcome == "answer", f.text
    (tmp_path / "nurse").mkdir()
    nurse = one_page_engine(tmp_path / "nurse", "Fenwick Borough Council: local authority assessment\n"
                     "About Fenwick\nThe council runs three locality teams for adults across the "
                     "borough. A nurse advises the locality teams one day a week.\n")
    b = _loosely(nurse, "How many locality teams does Fenwick run?")
    assert b.outcome == "answer" and "three locality teams" in b.text
    c = _loosely(nurse, "How much time does the nurse give Fenwick's locality teams?")
    assert c.outcome == "answer" and "one day a week" in c.text, c.text


def test_the_reader_setting_is_checked_and_auto_keeps_fakes_lexical(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rag.extractive import extractive_for
    from reportqa.errors import ReportQAError
    from reportqa.settings import Settings

    assert extractive_for(Settings(embedder="hash")).reader is None
    assert extractive_for(Settings(reader="lexical")).reader is None
    # Weights that are not there leave the lexical order rather than fail.
    assert extractive_for(Settings(reader="cross", reader_dir=str(tmp_path))).reader is None
    with pytest.raises(ReportQAError, match="REPORTQA_READER='bert'"):
        extractive_for(Settings(reader="bert"))


_CAUSE = "Parents report poor communication between the council's services and schools."
_CONSEQUENCE = ("As a result, trust in the council has been lost among many parents of children "
                "with disabilities.")
_FINDING = "Transition plans for young people with disabilities are often late and weak."
_REASON = "This is because the council has no joined-up approach to preparing for adulthood."
_REPEATED = "Some children in Fenwick have repeated child protection plans."
_CURRENT = "Current plans do not consider how well their earlier plans worked."
_WAIT = "Some children in Fenwick wait too long for their life-story books."
_EFFECT = "As a result, they are not helped to understand their early childhood."


@pytest.mark.parametrize("first, second, word, why, what, alone", [
    # "As a result, trust has been lost" restates the why-question; the reason is before it.
    (_CAUSE, _CONSEQUENCE, "trust", "Why has trust in Fenwick council been lost among parents?",
     "What has been lost among parents in Fenwick?", _CONSEQUENCE),
    # "Transition plans are weak" restates it; "This is because ..." after it is the reason.
    (_FINDING, _REASON, "transition", "Why are transition plans in Fenwick late and weak?",
     "What are transition plans in Fenwick like?", _FINDING),
    # "Some children have repeated plans" restates it and states no cause; the reason is the
    # next sentence though it does not point back.
    (_REPEATED, _CURRENT, "repeated", "Why do some Fenwick children have repeated protection plans?",
     "What plans do some Fenwick children have?", _REPEATED),
    # Asked what followed, the consequence is the next sentence ("As a result, ...").
    (_WAIT, _EFFECT, "life-story", "What happens to Fenwick children who wait for life-story books?",
     "What do Fenwick children wait for?", _WAIT),
], ids=["reason before", "reason after", "reason next", "consequence next"])
def test_asked_why_the_sentence_and_its_reason_are_quoted_together(
        tmp_path, first: str, second: str, word: str, why: str, what: str, alone: str) -> None:  # type: ignore[no-untyped-def]
    """The reader picks the sentence that repeats the question (as it often does); asked why,
    it is quoted with the sentence next to it that gives the reason (one citation, exact
    offsets). Asked what, not why, that sentence alone is the answer."""
    eng = one_page_engine(tmp_path, "Fenwick Borough Council: local authority assessment\n"
                             f"About Fenwick\n{first} {second} The council has appointed a new "
                             "lead for disability services.\n")
    ask = _keyword_answerer(word)
    assert _one_exact_citation(eng, ask, why).quote == f"{first} {second}"
    asked_what = answer(what, eng.settings, engine=eng, answerer=ask)
    assert asked_what.citations[0].quote == alone, asked_what.text


@pytest.mark.parametrize(("page", "quoted"), [
    # "This is known as ..." names nothing alone: quoted with what it points back to.
    ("Children are helped while they wait for therapy. This is known as waiting well.\n",
     "Children are helped while they wait for therapy. This is known as waiting well."),
    # Not across a line break (often a heading or a new paragraph), nor a sentence that
    # points at nothing.
    ("Children are helped while they wait for therapy.\nThis is known as waiting well.\n",
     "This is known as waiting well."),
    ("Children are helped while they wait for therapy. Fenwick calls it waiting well.\n",
     "Fenwick calls it waiting well."),
])
def test_a_quote_that_points_back_comes_with_what_it_points_to(
        tmp_path, page: str, quoted: str) -> None:  # type: ignore[no-untyped-def]
    eng = one_page_engine(tmp_path, "Fenwick Borough Council: local authority assessment\n"
                             f"About Fenwick\n{page}")
    c = _one_exact_citation(eng, _keyword_answerer("waiting well"),
                            "What is waiting well in Fenwick?")
    assert " ".join(c.quote.split()) == quoted


def test_asked_why_a_sentence_giving_its_own_cause_is_quoted_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A sentence that states the cause itself ("because ...") answers the why; the
    sentence after it is not added."""
    reason = "Transition plans in Fenwick are late because the council lacks staff."
    eng = one_page_engine(tmp_path, "Fenwick Borough Council: local authority assessment\n"
                             f"About Fenwick\n{reason} The council has appointed a new lead "
                             "for disability services.\n")
    c = _one_exact_citation(eng, _keyword_answerer("transition".title()),
                            "Why are transition plans in Fenwick late?")
    assert c.quote == reason


def test_a_numbered_paragraph_break_ends_the_quote(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Ofsted numbers its paragraphs: "48." on the next line is the start of the next
    paragraph, not a sentence to join to a why-answer ("... planning. 48.")."""
    finding = "Some Fenwick care leavers in custody have no meaningful contact with an adviser."
    eng = one_page_engine(tmp_path, "Fenwick Borough Council: local authority assessment\n"
                             f"About Fenwick\n{finding}\n48. The local offer is detailed and "
                             "accessible to care leavers.\n")
    c = _one_exact_citation(eng, _keyword_answerer("custody"),
                            "Why do some Fenwick care leavers in custody have no contact?")
    assert c.quote == finding


@pytest.mark.parametrize("bullet", ["◼", "\uf02d"], ids=["square", "symbol-font"])
def test_a_sentence_opening_a_list_is_quoted_with_its_items(tmp_path, bullet: str) -> None:  # type: ignore[no-untyped-def]
    """"... with a particular focus on the:" answers nothing alone: its items are quoted with
    it (one citation, exact offsets), and the sentence after the list is not. Older PDFs'
    bullets come through as private-use characters."""
    opening = "Inspectors looked at help for children in Fenwick, with a particular focus on the:"
    items = (f"{bullet} quality of matching for children in care\n"
             f"{bullet} progress of disabled children in care")
    eng = one_page_engine(tmp_path, "Fenwick Borough Council: local authority assessment\nAbout Fenwick\n"
                             f"{opening}\n{items}\nThe visit was carried out under the framework.\n")
    c = _one_exact_citation(eng, _keyword_answerer("focus"),
                            "Which children did the Fenwick visit focus on?")
    assert c.quote == f"{opening}\n{items}"


@pytest.mark.parametrize("question, both", [
    ("What help do family support workers give families in Fenwick?", True),
    ("Do family support workers in Fenwick help families?", False),
])
def test_a_sentence_followed_by_its_examples_is_quoted_with_them(tmp_path, question: str,
                                                                 both: bool) -> None:  # type: ignore[no-untyped-def]
    """"Examples include ..." after the chosen sentence holds the specifics asked for: quoted
    together, unless a yes or no is asked (the sentence itself answers)."""
    first = "Family support workers in Fenwick work with families in a variety of ways."
    examples = "Examples include support with budgeting and parenting skills."
    eng = one_page_engine(tmp_path, "Fenwick Borough Council: local authority assessment\nAbout Fenwick\n"
                             f"{first} {examples} The council also runs two family hubs.\n")
    c = _one_exact_citation(eng, _keyword_answerer("variety"), question)
    assert c.quote == (f"{first} {examples}" if both else first)


def test_a_name_question_answered_by_a_sentence_naming_nothing_is_not_found(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """"What is the app called?" is answered by a name the question does not already use;
    a sentence that only mentions the thing ("they produced an app") or the role by its
    initials ("the director of children's services (DCS) has been in post since March")
    is no answer: the reports don't say."""
    from rag.evidence import states_a_name
    from rag.structured import understand

    eng = one_page_engine(tmp_path,
                   "Fenwick Borough Council: local authority assessment\nAbout Fenwick\n"
                   "Care leavers in Fenwick helped the council produce a care leaver app for phones. "
                   "The carers' hub in Fenwick is called Carers Together and opens every weekday.\n")
    app = _loosely(eng, "What is the care leaver app in Fenwick called?")
    assert app.outcome == "not_found", app.text
    # "Which hospice ...?" asks for one by name: "the local hospice" names none.
    (tmp_path / "hospice").mkdir()
    hospice = one_page_engine(tmp_path / "hospice",
                              "Fenwick Borough Council: local authority assessment\nAbout Fenwick\n"
                              "Social workers in Fenwick have positive relationships with the "
                              "local hospice and with schools.\n")
    which = _loosely(hospice, "Which hospice works with Fenwick's social workers?")
    assert which.outcome == "not_found", which.text
    hub = _loosely(eng, "What is the carers' hub in Fenwick called?")
    assert hub.outcome == "answer" and "Carers Together" in hub.text, hub.text
    who = understand("Who is the director of children's services in Fenwick?", [])
    assert who.asks_name
    assert not states_a_name(who, "The director of children’s services (DCS) has been in "
                                  "post since March 2017.")
    assert states_a_name(who, "The director of children’s services, Ann Smith, started in May.")
    # A post's initials name no one ("chief executive and DCS", "the CEO and lead member").
    ceo = understand("Who is the chief executive of Fenwick Council?", [])
    assert not states_a_name(ceo, "The leader of the council, chief executive and DCS have "
                                  "a relentless focus on children.")
    assert not states_a_name(ceo, "The CEO and lead member are well informed.")
    # A name the report quotes may open its sentence; a quoted sentence is no name.
    forum = understand("whats the name of the parent carer forum in fenwick", [])
    assert states_a_name(forum, "‘Fen2gether’, the local parent carer forum (PCF), is on "
                                "many boards.")
    assert not states_a_name(forum, "“I feel the parent carer forum listens to us.”")
    # The organisation the question names, however its hyphens split it, names no one.
    hyphen = understand("Who is Fenwick-on-Sea's director of children's services?", [])
    assert not states_a_name(hyphen, "The training offer in Fenwick is comprehensive.")
    spaced = understand("who is the director of childrens services in fenwick on sea", [])
    assert not states_a_name(spaced, "Staff in Fenwick-on-Sea are well supported.")
    assert states_a_name(spaced, "Staff in Fenwick-on-Sea are led by Ann Smith.")


def test_a_short_label_line_naming_who_is_asked_is_a_candidate(tmp_path, repo_root: Path) -> None:  # type: ignore[no-untyped-def]
    """"Lead inspector: Gary Lamb" (Hull's 2015 inspection team) is four words, under the
    floor meant for titles and labels, but a label line naming someone answers "who was the
    lead inspector?" when its label is what is asked: it is a candidate the reader can
    choose. It stays none for a question about something else."""
    from ingest.pipeline import ingest
    from rag.evidence import rank_sentences
    from rag.retrieve import Filters
    from rag.structured import understand

    settings = Settings(index_dir=tmp_path / "index", embedder="hash")
    ingest([repo_root / "corpus" / "ofsted" / "ofsted-sif-hull-2015.pdf"], settings)
    eng = Engine.load(settings)

    def candidates(q: str) -> set[str]:
        u = understand(q, eng.derived().councils)
        return {c.text for c in rank_sentences(u, eng.retriever.retrieve(q, Filters(), 8), eng)}

    assert "Lead inspector: Gary Lamb" in candidates("who was the lead inspector for hull")
    assert "Lead inspector: Gary Lamb" not in candidates("who were the team inspectors for hull")


def test_who_does_something_is_answered_by_a_role_who_holds_a_post_by_a_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """"Who carried out the review?" is answered by the body the report names in lower case
    ("a sector-led improvement partnership"); "who is the independent chair?" is not answered
    by a sentence that only mentions the chair."""
    eng = one_page_engine(tmp_path,
                   "Fenwick Borough Council: local authority assessment\nAbout Fenwick\n"
                   "The whole-system review of children's services in Fenwick was carried out by "
                   "a sector-led improvement partnership. "
                   "The independent chair of the Fenwick improvement board meets leaders monthly.\n")
    did = _loosely(eng, "Who carried out the whole-system review of Fenwick's children's services?")
    assert did.outcome == "answer" and "sector-led improvement partnership" in did.text, did.text
    chair = _loosely(eng, "Who is the independent chair of the Fenwick improvement board?")
    assert chair.outcome == "not_found", chair.text


def test_an_uncertain_answer_keeps_to_the_word_limit_with_its_marking(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """"Not certain, but the closest passage may answer this:" counts towards the answer's
    words: a long closest sentence is cut (a verbatim prefix) so the whole answer fits."""
    long = " ".join(f"item{i}" for i in range(40))
    eng = one_page_engine(tmp_path, "Fenwick Borough Council: local authority assessment\nAbout Fenwick\n"
                             f"Fenwick carers listed their support needs as {long}.\n")
    unsure = ExtractiveAnswerer(2.0, 20, 0.0)  # nothing is sure enough; all may answer
    a = answer("What support needs did Fenwick carers list?", eng.settings, engine=eng,
               answerer=unsure)
    assert a.outcome == "uncertain", a.text
    assert len(re.sub(r"\s*\[\d+\]", "", a.text).split()) <= 20, a.text
    c = a.citations[0]
    assert eng.retriever.report_text(c.report_id)[c.start:c.end] == c.quote


@pytest.mark.parametrize("sentence, figures", [
    ("30.Many children in care live in stable homes which meet their needs.", []),
    ("1. Not all children who need help and protection receive a good service.", []),
    ("30 children in care live in stable homes.", ["30"]),
    ("A nurse advises the teams one day a week.", ["one"]),
    ("One of the strengths is the one team approach.", []),
])
def test_a_paragraph_number_is_not_a_figure_and_one_is_only_before_a_unit(
        sentence: str, figures: list[str]) -> None:
    """Ofsted's numbered paragraphs open with a number that the sentence does not state as a
    figure; "one" is a figure only before a unit ("one day a week"), not as a pronoun."""
    from rag.evidence import new_figures

    assert new_figures(sentence, set()) == figures


def test_a_paragraph_number_run_into_its_sentence_is_not_quoted() -> None:
    """One PDF (Cheshire West and Chester's) runs its paragraph numbers into the first word
    ("46.Over-optimism by leaders ..."): the sentence an answer quotes starts after the
    number, as it does after a number standing apart ("45. Leaders ..."); a figure opening a
    sentence ("30 children ...") is the sentence's own."""
    from reportqa.text import quotable_spans

    text = ("45. Leaders know the service well.\n46.Over-optimism by leaders has slowed plans.\n"
            "30 children live in stable homes.")
    assert [text[s:e] for s, e in quotable_spans(text)] == [
        "Leaders know the service well.", "Over-optimism by leaders has slowed plans.",
        "30 children live in stable homes."]


@pytest.mark.parametrize("question, sentence, states", [
    ("How many assessments did Fenwick complete?", "Its actual spend for that year was £386,922,000.", False),
    ("How many assessments did Fenwick complete?", "It completed 1,200 assessments.", True),
    ("How much did Fenwick spend on adult social care?", "Seven of ten embargoes had been removed.", False),
    ("How much did Fenwick spend on adult social care?", "Its actual spend was £94,624,000.", True),
    ("What share of Fenwick's budget went on adult social care?",
     "It would spend £90,572,000 of its total budget.", False),
    ("What share of Fenwick's budget went on adult social care?", "This is 24% of its budget.", True),
    ("How long do children in Fenwick wait for CAMHS?",
     "Care leavers open to CAMHS before their 18th birthday move on smoothly.", False),
    ("How long do children in Fenwick wait for CAMHS?", "Children wait between 5 and 6 months.", True),
    ("How many people are waiting for an assessment in Fenwick?", "Almost 250 people were waiting.", True),
    # Lengths and shares stated without a digit; a count is not.
    ("How long do families in Fenwick wait for early help?", "Some wait for a few weeks.", True),
    ("How long has the party run Fenwick council?", "The party has run the council since 2000.", True),
    ("What share of referrals are declined in Fenwick?", "Approximately half of referrals are declined.", True),
    ("What share of referrals are declined in Fenwick?", "On behalf of the board, few are declined.", False),
    ("How many children in Fenwick have an EHC plan?", "Some are offered a handful of hours for weeks.", False),
    ("How much teaching do Fenwick children out of school get?",
     "Some are offered a handful of hours for weeks.", True),
    ("How much did Fenwick spend on adult social care?", "It spent for a few years.", False),
    # An age is not a count.
    ("How many homeless teenagers did Fenwick house last year?",
     "The response to homeless 16- and 17-year-old children is poor.", False),
    ("How many older people in Fenwick have dementia?",
     "Most people aged 65 and over with dementia live at home.", False),
    ("How many older people in Fenwick have dementia?",
     "There are 3,670 people aged 65 and over with dementia.", True),
    # Nor is a length of time.
    ("How many children does Fenwick look after?",
     "The number of children looked after has risen slightly in the last 12 months.", False),
    ("How many children does Fenwick look after?",
     "Fenwick looked after 235 children in the last 12 months.", True),
    # A school year is no length of time: "40 Year 11 places" counts places.
    ("How many Year 11 places will the Fenwick academy provide?",
     "A local academy will provide 40 Year 11 places.", True),
    ("How long do Fenwick children wait?", "Most wait 1 year 6 months.", True),
    # Nor is an ordinal: a birthday, a date or a place in a ranking counts nothing.
    ("How many care leavers does Fenwick support?",
     "The offer extends beyond their 25th birthday.", False),
    ("How many care leavers does Fenwick support?",
     "Fenwick supports 173 care leavers, up to their 25th birthday.", True),
    ("How many councils are there in the region?", "Fenwick ranked 43rd out of 153.", True),
    # A figure the question states in its unit is that measure only: "the 12 months before"
    # leaves "12 children" a new figure, and "12 months" (or "10 percent" after "10%") none.
    ("How many children got orders in the 12 months before the inspection?",
     "12 children became subject of special guardianship orders.", True),
    ("How many children got orders in the 12 months before the inspection?",
     "Orders were made for some children in the 12 months before.", False),
    ("What share of the 10% most deprived areas are in Fenwick?",
     "Fenwick is among the 10 per cent most deprived areas.", False),
    ("How many children waited more than 12 weeks?", "Children waited up to 12 weeks.", False),
    # "How many are declined?" is answered by the share of them; not by a vague amount.
    ("How many referrals to Fenwick's CAMHS get declined?",
     "Approximately half of referrals to some CAMHS teams are declined.", True),
    ("How many referrals to Fenwick's CAMHS get declined?",
     "A handful of referrals are declined each week.", False),
])
def test_a_figure_answers_only_in_the_unit_asked(question: str, sentence: str, states: bool) -> None:
    """A share is a percentage or fraction, a length a length of time, money is in pounds,
    and neither a sum of money nor an age nor a length of time is a count of anything."""
    from rag.evidence import states_asked_figure
    from rag.structured import understand

    assert states_asked_figure(understand(question, []), sentence) is states


@pytest.mark.parametrize("question, named", [
    ("Who led the Fenwick inspection?", True),
    ("who was the lead inspector for fenwick", True),
    ("Who is the director of children's services in Fenwick?", False),
])
def test_a_label_line_naming_someone_answers_who_its_label_is(tmp_path, question: str,
                                                              named: bool) -> None:  # type: ignore[no-untyped-def]
    """"Lead inspector: Ann Smith, His Majesty's Inspector" is short and unpunctuated like a
    heading, but it answers "who led the inspection?"; asked about another role, it does not."""
    eng = one_page_engine(tmp_path, "Fenwick Borough Council: local authority assessment\nAbout Fenwick\n"
                             "Fenwick council runs three locality teams for adults.\n"
                             "Lead inspector: Ann Smith, His Majesty’s Inspector\n")
    a = _loosely(eng, question)
    quoted = any("Ann Smith" in c.quote for c in a.citations if not c.see_also)
    assert quoted is named, a.text


@pytest.mark.parametrize("since, outcome", [
    ("Since the previous inspection in 2019, leaders have acted to improve services.", "not_found"),
    ("Since the previous inspection in 2019, when services were judged to be good, leaders "
     "have acted to improve services.", "answer"),
])
def test_a_grade_of_another_inspection_needs_a_sentence_that_states_one(tmp_path, since: str,
                                                                        outcome: str) -> None:  # type: ignore[no-untyped-def]
    """Asked what the previous inspection graded, a sentence that mentions that inspection
    but states no grade is no answer; one that says how it was judged is."""
    eng = one_page_engine(tmp_path, "Fenwick Borough Council: local authority assessment\nAbout Fenwick\n"
                             f"{since}\nFenwick council runs three locality teams for adults.\n")
    a = _loosely(eng, "What grade did Fenwick get at its previous inspection in 2019?")
    assert a.outcome == outcome, a.text


class WordReader:
    """A deterministic fake reader: each candidate's probability is that of the first word
    of ``odds`` it contains, else 0.05."""

    def __init__(self, odds: dict[str, float]) -> None:
        self.odds = odds
        self.calls = 0

    def score(self, question: str, candidates: list[str]) -> list[float]:
        self.calls += 1
        return [next((p for w, p in self.odds.items() if w in c), 0.05) for c in candidates]


_DELAYS = ("Fenwick Borough Council: local authority assessment\nAbout Fenwick\n"
           "Fenwick council runs three locality teams for adults.\n"
           "Some children in care in Fenwick have waited a long time for permanence. "
           "Frequent changes of social worker lie behind most of the waiting.\n"
           "Fenwick recruited more foster carers last year.\n")


@pytest.mark.parametrize("odds, quoted, left, calls", [
    # The reader picks the topic sentence and is sure the next one answers too: both.
    ({"permanence": 0.9, "Frequent": 0.6}, ("permanence", "Frequent changes"), "foster", 1),
    # ... and the sentence before, when that is the one it is sure of.
    ({"Frequent": 0.9, "permanence": 0.6}, ("permanence", "Frequent changes"), "foster", 1),
    # Not sure of the neighbour, and the pair reads no better than the pick: the pick alone.
    ({"permanence": 0.9, "Frequent": 0.3}, ("permanence",), "Frequent", 2),
    # Not sure of the neighbour alone, but the pair reads better than the pick: the pair.
    ({"permanence. Frequent": 0.95, "permanence": 0.9, "Frequent": 0.3},
     ("permanence", "Frequent changes"), "foster", 2),
    # A sentence it is sure of in another paragraph is no neighbour.
    ({"permanence": 0.9, "foster": 0.6}, ("permanence",), "foster", 2),
])
def test_the_reader_quotes_the_neighbour_it_is_sure_answers_too(
        tmp_path, odds: dict[str, float], quoted: tuple[str, ...], left: str, calls: int) -> None:  # type: ignore[no-untyped-def]
    """The sentence the reader picks often names the topic while the sentence next to it in
    the paragraph holds the answer; the reader reads both neighbours of its pick and the
    one it gives at least ``neighbour_p`` is quoted with it, as one exact passage; else the
    pick and a neighbour that the reader reads as a better pair than the pick alone. On one
    page every sentence is a candidate the reader has already read: only the pairs are new."""
    eng = one_page_engine(tmp_path, _DELAYS)
    reader = WordReader(odds)
    ask = ExtractiveAnswerer(0.5, 75, 0.2, reader, (0.5, 0.2))
    c = _one_exact_citation(eng, ask, "what is holding up permanence for fenwick children in care")
    assert all(q in c.quote for q in quoted) and left not in c.quote, c.quote
    assert reader.calls == calls


class SeenReader(WordReader):
    """A WordReader that keeps the candidates of each call."""

    def __init__(self, odds: dict[str, float]) -> None:
        super().__init__(odds)
        self.seen: list[list[str]] = []

    def score(self, question: str, candidates: list[str]) -> list[float]:
        self.seen.append(candidates)
        return super().score(question, candidates)


_TEAMS = ("Adder", "Badger", "Crane", "Dove", "Egret", "Finch", "Gull", "Heron", "Ibis", "Jay",
          "Kite", "Lark", "Merlin", "Newt", "Otter", "Puffin", "Quail", "Raven")
_PLANS = ("Fenwick Borough Council: local authority assessment\nPlanning for children\n"
          + "".join(f"The {t} team writes plans for children in care in Fenwick each month. "
                    for t in _TEAMS)
          + "\nA minority of plans lack clear contingencies should circumstances deteriorate.\n")


@pytest.mark.parametrize("odds, quoted, reads", [
    # No sentence of the lexical top 12 reads as an answer: the next ones are read too.
    ({"contingencies": 0.9}, "contingencies", 19),
    # One of the top 12 answers: nothing further down is read (sure of it, over
    # unsure_pick_p, so no runner-up is quoted after it either).
    ({"contingencies": 0.9, "Crane": 0.85}, "Crane", 12),
])
def test_the_reader_reads_further_down_only_when_it_doubts_the_top(
        tmp_path, odds: dict[str, float], quoted: str, reads: int) -> None:  # type: ignore[no-untyped-def]
    """A paraphrase shares few words with its answer, which can then rank below the 12
    sentences the reader reads ("what happens if things get worse" ~ "contingencies should
    circumstances deteriorate"): when the reader gives none of them ``reader_doubt``, it
    reads on to ``reader_top_doubt``; a question it is fairly sure of costs no more."""
    eng = one_page_engine(tmp_path, _PLANS)
    reader = SeenReader(odds)
    ask = ExtractiveAnswerer(0.5, 75, 0.2, reader, (0.5, 0.2))
    c = _one_exact_citation(eng, ask, "do the plans for children in care in fenwick say what "
                                      "happens if things get worse")
    assert quoted in c.quote, c.quote
    first = reader.seen[0]
    assert len(first) == 12 and not any("contingencies" in x for x in first)
    read = first + (reader.seen[1] if reads > 12 else [])
    assert len(read) == reads and len(set(read)) == reads  # none read twice


_SECTIONS = ("Most children in care attend school regularly, but too many others do not.\n"
             "The experiences and progress of care leavers: requires improvement to be good\n"
             "Care leavers benefit from personal advisers who know them well. PAs visit often.\n"
             "Inspection dates: 20 to 24 March 2023\n"
             "Dates of previous inspection: 22 to 26 May 2017\n")


@pytest.mark.parametrize("picked, before, after", [
    # A finding, then a heading on its own line: the heading is no context of the finding.
    ("Most children in care", None, None),
    # The heading picked: the finding before it ends the section before; what follows is
    # the section's first sentence.
    ("The experiences and progress", None, "Care leavers benefit"),
    # A sentence in the section's first paragraph: its neighbours are its own paragraph's.
    ("Care leavers benefit", None, "PAs visit often."),
    # A label line after a label line is the next row of the block, not a heading.
    ("Inspection dates", None, "Dates of previous inspection"),
])
def test_a_heading_line_is_no_neighbour_of_the_finding_before_it(
        picked: str, before: str | None, after: str | None) -> None:
    """The reader quotes a pick with a neighbouring sentence of its paragraph when that reads
    better; a heading on its own line ("The experiences and progress of care leavers: requires
    improvement to be good", after the last finding on children in care in an Ofsted report)
    is no neighbour of the finding before it, either way round: Plymouth's care leavers answer
    quoted the children in care finding with the heading as one passage."""
    from types import SimpleNamespace

    from rag.evidence import Candidate, neighbours

    engine = SimpleNamespace(retriever=SimpleNamespace(report_text=lambda _: _SECTIONS))
    hit = SimpleNamespace(chunk=SimpleNamespace(report_id="r"))
    start = _SECTIONS.index(picked)
    end = _SECTIONS.index("\n", start)
    if picked == "Care leavers benefit":
        end = _SECTIONS.index("well.", start) + len("well.")
    c = Candidate(hit, start, end, _SECTIONS[start:end], 1.0, 1.0)  # type: ignore[arg-type]
    prev, nxt = neighbours(c, engine)  # type: ignore[arg-type]
    assert (prev.text if prev else None) == before
    assert (nxt.text.startswith(after) if nxt and after else nxt is None and after is None), nxt


def test_an_uncertain_answer_quotes_the_pair_the_reader_reads_better(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Too unsure to answer, the closest sentence is quoted as possibly answering, and with
    the neighbour it reads better with, as an answer would be."""
    eng = one_page_engine(tmp_path, _DELAYS)
    reader = WordReader({"permanence. Frequent": 0.45, "permanence": 0.3, "Frequent": 0.1})
    ask = ExtractiveAnswerer(0.9, 75, 0.2, reader, (0.5, 0.2))
    a = answer("what is holding up permanence for fenwick children in care", eng.settings,
               engine=eng, answerer=ask)
    assert a.outcome == "uncertain", a.text
    first = a.citations[0].quote
    assert "permanence" in first and "Frequent changes" in first, a.text


@pytest.mark.parametrize("odds, quoted, left", [
    # The reader is nearly as sure of a sentence in another paragraph: both are quoted.
    ({"permanence": 0.9, "foster": 0.88}, ("permanence", "foster"), "three locality"),
    # Far less sure of it (its log-odds over second_read_gap behind): the pick alone.
    ({"permanence": 0.9, "foster": 0.6}, ("permanence",), "foster"),
    # Sure of it but below second_read_p, however close: the pick alone (a pick sure
    # enough, at or over unsure_pick_p, for no runner-up to follow it either).
    ({"permanence": 0.85, "foster": 0.45}, ("permanence",), "foster"),
])
def test_a_second_sentence_the_reader_reads_nearly_as_well_joins_the_answer(
        tmp_path, odds: dict[str, float], quoted: tuple[str, ...], left: str) -> None:  # type: ignore[no-untyped-def]
    """Where the reader reads two sentences of the report as answering, close in its order
    (weights.toml: second_read_p, second_read_gap), both are quoted, each cited."""
    eng = one_page_engine(tmp_path, _DELAYS)
    ask = ExtractiveAnswerer(0.5, 75, 0.2, WordReader(odds), (0.5, 0.2))
    a = answer("what is holding up permanence for fenwick children in care", eng.settings,
               engine=eng, answerer=ask)
    cited = " ".join(c.quote for c in a.citations if not c.see_also)
    assert a.outcome == "answer" and all(q in cited for q in quoted), a.text
    assert left not in cited, a.text


@pytest.mark.parametrize("odds, quoted, left", [
    # Unsure of its pick (under unsure_pick_p): the next best sentence of the report follows.
    ({"permanence": 0.45, "foster": 0.4}, ("permanence", "foster"), "three locality"),
    # Sure of its pick (at or over unsure_pick_p, 0.8), and not of the next (under
    # second_read_p): the pick alone.
    ({"permanence": 0.85, "foster": 0.4}, ("permanence",), "foster"),
    # Under 0.8 the pick is unsure, even when it reads as answering.
    ({"permanence": 0.7, "foster": 0.4}, ("permanence", "foster"), "three locality"),
])
def test_an_unsure_pick_is_quoted_with_the_next_best_sentence(
        tmp_path, odds: dict[str, float], quoted: tuple[str, ...], left: str) -> None:  # type: ignore[no-untyped-def]
    """Where the reader reads its own pick as more likely not answering, its second choice of
    the same report is quoted after it (weights.toml: unsure_pick_p), each cited."""
    eng = one_page_engine(tmp_path, _DELAYS)
    ask = ExtractiveAnswerer(0.0, 75, 0.0, WordReader(odds), (0.5, 0.2))
    a = answer("what is holding up permanence for fenwick children in care", eng.settings,
               engine=eng, answerer=ask)
    cited = [c.quote for c in a.citations if not c.see_also]
    assert a.outcome == "answer" and all(any(q in c for c in cited) for q in quoted), a.text
    assert not any(left in c for c in cited), a.text
    assert len(cited) == len(quoted)


def test_an_unsure_pick_is_followed_by_the_next_best_sentence_however_weak(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The runner-up of an unsure pick needs no answer bar of its own: the pick has passed it,
    and the runner-up only adds a quote (weights.toml: unsure_pick_p). Here the answer bar
    (0.95) is over the question's word-overlap confidence, so only the reader lifts a sentence
    over it: the pick (0.7) is lifted, the runner-up (0.3) is not, yet it is quoted after it."""
    eng = one_page_engine(tmp_path, _DELAYS)
    ask = ExtractiveAnswerer(0.95, 75, 0.2, WordReader({"permanence": 0.7, "foster": 0.3}),
                             (0.5, 0.2))
    a = answer("what is holding up permanence for fenwick children in care", eng.settings,
               engine=eng, answerer=ask)
    cited = [c.quote for c in a.citations if not c.see_also]
    assert a.outcome == "answer" and len(cited) == 2, a.text
    assert "permanence" in cited[0] and "foster" in cited[1], a.text


@pytest.mark.parametrize("lead_in", [
    "This should include:\n◼ a named social worker for all.",
    "Inspectors looked at Fenwick's work, with a particular focus on:\n◼ children in care."])
def test_a_list_lead_in_is_never_the_quote_after_the_pick(tmp_path, lead_in) -> None:  # type: ignore[no-untyped-def]
    """A sentence that opens a list ("This should include:") says nothing without its items:
    quoted after the pick it was noise (read sets: Bury's "This should include:",
    Worcestershire's "... with a particular focus on the:"). The next sentence that says
    something is quoted instead."""
    eng = one_page_engine(tmp_path, _DELAYS + lead_in + "\n")
    ask = ExtractiveAnswerer(0.95, 75, 0.2,
                             WordReader({"waited": 0.7, "include": 0.5, "focus": 0.5,
                                         "foster": 0.3}), (0.5, 0.2))
    a = answer("what is holding up permanence for fenwick children in care", eng.settings,
               engine=eng, answerer=ask)
    cited = [c.quote for c in a.citations if not c.see_also]
    assert a.outcome == "answer" and "waited" in cited[0], a.text
    assert not any(c.rstrip().endswith(":") for c in cited[1:]), a.text


def test_the_next_best_sentence_never_decides_whether_a_question_is_answered(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """"How many ...?" with an unsure pick that states no figure is not answered because the
    sentence quoted after it states one: the runner-up joins after the outcome's checks."""
    page = ("Fenwick Borough Council: local authority assessment\nAbout Fenwick\n"
            "Fenwick recruited more foster carers last year than the year before.\n"
            "Fenwick has 40 care homes for older people across the borough.\n")
    eng = one_page_engine(tmp_path, page)
    ask = ExtractiveAnswerer(0.0, 75, 0.0, WordReader({"recruited": 0.4, "40 care": 0.3}),
                             (0.5, 0.2))
    a = answer("how many foster carers did fenwick recruit", eng.settings, engine=eng,
               answerer=ask)
    assert a.outcome == "not_found", a.text


def _candidate(text: str, start: int = 0) -> Candidate:
    chunk = Chunk("c1", "r1", text, start, start + len(text))
    return Candidate(Hit(chunk, 1.0, 1), start, start + len(text), text, 1.0, 1.0)


def test_quotes_are_kept_within_the_word_limit_as_a_reader_counts_it() -> None:
    """Each quote's "[n]." full stop reads as a word (evals.metrics.word_count): two quotes
    of 54 and 20 words make a 76-word answer, so the second goes; a 75-word quote alone is
    cut to 74 words. Offsets stay exact."""
    first, second = _candidate("word " * 53 + "end."), _candidate("next " * 19 + "end.", 400)
    assert within([first, second], 75) == [first]
    short = _candidate("next " * 18 + "end.", 400)
    assert within([first, short], 75) == [first, short]
    long_ = _candidate(" ".join(f"w{i}" for i in range(75)) + ".")
    (cut,) = within([long_, second], 75)
    assert len(cut.text.split()) == 74 and cut.text == long_.text[: cut.end - cut.start]
    text = " ".join(with_marker(c.text, i + 1) for i, c in enumerate([first, short]))
    assert word_count(text) <= 75


class _SureOf:
    """A fake reader: each sentence's probability is that of the first key it contains."""

    def __init__(self, sure: dict[str, float]) -> None:
        self.sure = sure

    def score(self, question: str, candidates: list[str]) -> list[float]:
        return [next((p for k, p in self.sure.items() if k in c), 0.01) for c in candidates]


def test_a_count_question_leads_with_the_sentence_counting_what_is_asked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Asked "how many children ...?", of two sentences the reader reads as answering, the
    one that counts children leads the one whose figure is a rise ("risen by 71%"): the
    question was answered either way, only which figure comes first changes."""
    eng = one_page_engine(tmp_path, "Fenwick Borough Council: local authority assessment\n"
                             "About Fenwick\nSince June, the number of children on protection "
                             "plans in Fenwick has risen by 71%.\nCarers in Fenwick are well "
                             "supported by the council.\nIn November, 742 children in "
                             "Fenwick were the subject of a protection plan.\n")
    ask = ExtractiveAnswerer(0.5, 75, 0.2, _SureOf({"risen": 0.98, "742": 0.9}), (0.5, 0.2))
    a = answer("How many children in Fenwick were on protection plans?", eng.settings,
               engine=eng, answerer=ask)
    assert a.outcome == "answer" and a.citations[0].quote.startswith("In November, 742"), a.text
    # Asked about the rise, the rise answers first.
    rise = answer("By how much did protection plans in Fenwick rise?", eng.settings,
                  engine=eng, answerer=ask)
    assert rise.citations[0].quote.startswith("Since June"), rise.text
