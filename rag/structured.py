"""Question types, and the answers read from the structured tables, one citation per row.
Public: `understand` (a question parsed and typed), `route` (its table answer, if any) and
`QUESTION_TYPES`, the one ordered table of detector and handler per type.

Top-k retrieval cannot count or compare ("which councils scored 1 on safeguarding?"); the
score and rating tables read at ingest can, completely over the index. The answers from a
report's own facts (its dates, judgements and lists) are in rag/judgement_answers.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, TypeVar

from rag import across
from rag.cite_rows import cite_row, cite_score, in_its_words, refused
from rag.engine import Engine
from rag.evidence import (
    W,
    cite,
    rank_sentences,
    rerank_dense,
    trim_to,
    with_marker,
)
from rag.grades import (
    listed_grades,
    named_families,
    unshorten,
    without_families,
)
from rag.judgement_answers import (
    dates_or_publication,
    family_not_indexed,
    inspected_in,
    judgement_extreme,
    judgements,
    kinds_without_cqc,
    publication_dates,
    report_list,
    report_metadata,
    report_summary,
    visit_findings,
)
from rag.letters import letter_addressee, partnership_post_holder
from rag.lexicon import pattern, words
from rag.query import (
    Council,
    Understanding,
    asks,
    asks_rating,
    normalise,
    parse_question,
)
from rag.retrieve import Filters, tokenize
from rag.stat_answers import superlative, versus_england
from rag.tables import RatingRow, ScoreRow, best_per_key
from rag.team import inspection_team_answer
from rag.when import asked_extreme
from reportqa.records import Answer, Citation
from reportqa.text import clean_quote

# --- question types: one ordered table ----------------------------------------------------

@dataclass(frozen=True)
class Parsed:
    """What a detector sees: the question normalised (lower case, dashes as spaces), the
    councils and statements in play, and the question's parsed slots."""

    q: str
    councils: tuple[str, ...]
    stmts: tuple[str, ...]
    u: Understanding


Slots = dict[str, Any]
Row = TypeVar("Row", ScoreRow, RatingRow)
Handler = Callable[[Understanding, tuple[str, ...], tuple[str, ...], Engine], Answer | None]


@dataclass(frozen=True)
class QuestionType:
    """One type of question: its detector (the slots it reads from the question, or None
    when the question is not of this type) and its handler (the answer from the tables, or
    None when no table row fits).

    The first row whose detector matches the question is its type (`Understanding.intent`;
    none: "search"). An ``overlay`` row is never a question's type: it is tried, in its place
    in the table, whenever its detector matches, whatever the type (a council's judgement or
    a report's list can answer a question of several types). When a handler returns None,
    ``falls_through`` says whether the later rows that match are tried or the question goes
    to search; ``this_inspection`` rows answer from the indexed inspection's own facts, so a
    question about the inspection before it skips them."""

    name: str
    detect: Callable[[Parsed], Slots | None]
    handler: Handler
    falls_through: bool = False
    overlay: bool = False
    this_inspection: bool = False


def _own(u: Understanding) -> Parsed:
    """What detectors see of the question itself: the councils and statements it names."""
    return Parsed(u.normalised, u.councils, u.statements, u)


def understand(question: str, councils: list[Council]) -> Understanding:
    """The question parsed once (rag/query.py) and typed by the first row of QUESTION_TYPES
    whose detector matches, with that row's slots."""
    u = parse_question(question, councils)
    p = _own(u)
    for t in QUESTION_TYPES:
        slots = None if t.overlay else t.detect(p)
        if slots is not None:
            return replace(u, intent=t.name, **slots)
    return u


def plan(u: Understanding, councils: tuple[str, ...], stmts: tuple[str, ...]
         ) -> list[tuple[QuestionType, Understanding]]:
    """The rows route() tries for a typed question, in table order, each with its slots, until
    one that does not fall through: the overlays that match the councils and statements in
    play, the question's own type, and the later types its wording also matches. (The rows
    before its type are not asked again: `understand` found that none of them matches.)"""
    own = _own(u)
    in_play = replace(own, councils=councils, stmts=stmts)
    typed = False  # reached the question's own type (never, when it has none: "search")
    out = []
    for t in QUESTION_TYPES:
        typed = typed or t.name == u.intent
        if (u.other_inspection and t.this_inspection) or not (t.overlay or typed):
            continue
        slots = t.detect(in_play if t.overlay else own)
        if slots is not None:
            out.append((t, replace(u, **slots)))
            if not t.falls_through:  # its handler's answer, or None, is the last word
                break
    return out


def route(u: Understanding, f: Filters, eng: Engine) -> Answer | None:
    """Answer from the tables when the question is of a table type, else None (search)."""
    councils = f.councils or u.councils
    stmts = f.statements or u.statements
    if f.report_ids:  # filtered to some reports (family, year): so are the tables
        eng = eng.scoped(f.report_ids)
    for t, typed in plan(u, councils, stmts):
        ans = t.handler(typed, councils, stmts, eng)
        if ans is not None:
            return ans
    return None


_WHICH = pattern("questions", "which_group")
_SCORE_VALUE = pattern("questions", "score_value")
_LIST_GROUP = pattern("questions", "list_group")
_WHOLE_SERVICE = pattern("questions", "whole_service")


def _detect_addressee(p: Parsed) -> Slots | None:
    # Only of a named council: the handler reads that council's letters, if it has any.
    if p.councils and (asks("asks_addressee", p.q) or asks("asks_post_holder", p.q)):
        return {}
    return None


def _detect_inspector(p: Parsed) -> Slots | None:
    # Only of a named council: the handler reads that council's reports' inspection teams.
    return {} if p.councils and asks("asks_inspector", p.q) else None


def _detect_publication_date(p: Parsed) -> Slots | None:
    return {} if asks("asks_when", p.q) and (asks("asks_published", p.q)
                                             or asks("letter_date", p.q)) else None


def _detect_inspection_date(p: Parsed) -> Slots | None:
    # Only a question that opens by asking when: "how many children ... when Ofsted visited"
    # asks a count, not a date.
    if asks("inspection_dates", p.q) or (asks("asks_when", p.q) and asks("inspection_word", p.q)
                                         and not asks("next_inspection", p.q)):
        return {}
    return None


def _detect_judgement(p: Parsed) -> Slots | None:
    # Not "why was it graded ...?": the reason is in the text. What the question asks a
    # grade of is its words less the phrase that names the whole service.
    if p.councils and p.u.asks_grade and not p.u.asks_reason:
        return {"topic_terms": tuple(tokenize(_WHOLE_SERVICE.sub(" ", p.q)))}
    return None


def _detect_compare(p: Parsed) -> Slots | None:
    if len(p.councils) >= 2 and (asks("compare", p.q) or asks("which_of_two", p.q)):
        return {}
    return None


def _detect_versus_england(p: Parsed) -> Slots | None:
    if asks("below_england", p.q):
        return {"direction": "below"}
    if asks("above_england", p.q):
        return {"direction": "above"}
    return None


def _detect_which_scored(p: Parsed) -> Slots | None:
    m_val = _SCORE_VALUE.search(p.q)
    listed = _WHICH.search(p.q) or _LIST_GROUP.search(p.q)
    return {"score_value": int(m_val.group(1))} if listed and m_val else None


def _which_end(p: Parsed) -> Slots:
    """Which end of one council's scale an extreme question asks for: its lowest or highest."""
    return {"direction": "min" if asks("statement_low", p.q) else "max"}


def _detect_statement_extreme(p: Parsed) -> Slots | None:
    if len(p.councils) == 1 and not p.stmts and asks("statement_extreme", p.q):
        return _which_end(p)
    return None


def _detect_judgement_extreme(p: Parsed) -> Slots | None:
    if len(p.councils) == 1 and (asks("judgement_extreme", p.q) or asks("statement_extreme", p.q)):
        return _which_end(p)
    return None


def _detect_top_rating(p: Parsed) -> Slots | None:
    return {} if not p.stmts and asks("top_rating", p.q) else None


def _detect_statement_top(p: Parsed) -> Slots | None:
    """"Which council has the lowest score for safeguarding?": a quality statement named, no
    council, and a top or bottom score asked across councils."""
    # With a statement named and no council, a top or bottom score is across councils
    # whatever the wording ("lowest scoring council for ...", "highest score for ... - who?").
    if p.stmts and not p.councils and asks("top_rating", p.q):
        return {"direction": "min" if asks("statement_low", p.q) else "max"}
    return None


def _detect_superlative(p: Parsed) -> Slots | None:
    m_sup = pattern("questions", "superlative").search(p.q)
    across = len(p.councils) >= 2 or (not p.councils and asks("across_councils", p.q))
    # "the most recent Ofsted visit": the latest inspection by its dates (which_inspected).
    if m_sup and across and asks("which_what", p.q) and not asks("not_superlative", p.q) \
            and not asked_extreme(p.q):
        low = m_sup.group(1) in words("questions", "superlative_low")
        return {"direction": "min" if low else "max"}
    return None


def _detect_which_rated(p: Parsed) -> Slots | None:
    """"Which councils were rated good?", "help & protection inadequate: which councils?",
    "graded below good (RI or inadequate)": a list across councils and the grades it asks
    (" or " between several), with the side of them asked (``direction``: "below" or
    "at_least"), and the words left for a judgement to cover."""
    if p.councils or not (_WHICH.search(p.q) or _LIST_GROUP.search(p.q)):
        return None
    grades, side = listed_grades(normalise(unshorten(p.u.question)))  # "RI" is upper case
    if not grades:
        return None
    topic = tuple(tokenize(without_families(_WHOLE_SERVICE.sub(" ", p.q))))
    return {"rating_value": " or ".join(grades), "topic_terms": topic, "direction": side or None,
            "negated": side == "not"}


def _detect_indexed_reports(p: Parsed) -> Slots | None:
    return {} if not p.councils and asks("index_contents", p.q) else None


def _detect_summary(p: Parsed) -> Slots | None:
    """"Summarise Plymouth's report": one council, a summary word, and no topic of its own."""
    if len(p.councils) != 1 or not asks("asks_summary", p.q):
        return None
    rest = set(tokenize(without_families(p.q))) - _summary_words() - set(
        tokenize(p.councils[0].replace("-", " ")))
    return None if rest else {}


@cache
def _summary_words() -> frozenset[str]:
    return frozenset(tokenize(" ".join([*words("questions", "summary_only"),
                                        *words("questions", "grade_asking")])))


def _detect_which_inspected(p: Parsed) -> Slots | None:
    """"Which councils were inspected by Ofsted in 2024?": a list across councils of when
    they were inspected, for a year or a family named."""
    listed = _WHICH.search(p.q) or _LIST_GROUP.search(p.q)
    if listed and not p.councils and asks("inspection_word", p.q) and (
            p.u.years or named_families(p.q)):
        return {}
    # "area SEND inspections carried out during 2023?": the plural and a year ask the list;
    # "... that came out outstanding?" asks a grade of them (which_rated).
    if not p.councils and p.u.years and asks("inspections_plural", p.q) \
            and not (p.u.asks_grade or asks("names_grade", p.q) or asks("rated_as", p.q)):
        return {}
    return None


def _detect_all_scores(p: Parsed) -> Slots | None:
    asked = asks("all_statements", p.q) or (not p.stmts and asks("scores_plural", p.q))
    return {} if p.councils and asked else None


def _detect_rating(p: Parsed) -> Slots | None:
    rated = asks_rating(p.q) and (asks("asks_rating", p.q) or _only_how_it_did(p))
    return {} if (rated or _only_its_score(p)) and not p.stmts else None


def _only_how_it_did(p: Parsed) -> bool:
    """"How did Doncaster do?" says nothing but how it did: not "how did newham's young
    commissioners do", which asks about the commissioners. Words as typed, less the report
    families' names ("send inspection") and any year."""
    rest = set(re.findall(r"[a-z]+", without_families(p.q))) - _how_words()
    for c in p.councils:
        rest -= set(re.findall(r"[a-z]+", c))
    return not rest


@cache
def _how_words() -> frozenset[str]:
    return frozenset(words("questions", "how_did_words"))


def _only_its_score(p: Parsed) -> bool:
    """"What score did Birmingham get?": one council, a score asked, and not one word more
    (no statement, topic, time or pointing back: "which statement did it score most on?",
    "what score did they get for that?"): its overall rating and percentage, not a search
    that quotes some statement's bare "Score: 2" line. Words as typed: the search's
    tokenizer drops "when", "which", "that" and "not"."""
    if len(p.councils) != 1 or not asks("asks_score", p.q):
        return False
    rest = set(re.findall(r"[a-z0-9]+", p.q)) - _score_words() - set(
        re.findall(r"[a-z0-9]+", p.councils[0]))
    return not rest


@cache
def _score_words() -> frozenset[str]:
    return frozenset(words("questions", "score_asking"))


def _detect_score(p: Parsed) -> Slots | None:
    # Not "why did Darlington only get a 2 for equity?": the reason is in the text.
    return {} if asks("asks_score", p.q) and p.stmts and not p.u.asks_reason else None


def _detect_which_councils(p: Parsed) -> Slots | None:
    if _WHICH.search(p.q) and not p.councils and asks("which_councils", p.q):
        return {}
    return None


def _detect_list(p: Parsed) -> Slots | None:
    # A report's list answers "what/which/list ..." questions, not "why ...?", "is it true
    # that ...?", "how much ...?", "who is ...?" or "what happens to ...?" ones that happen
    # to use the word "improve", "recommended" or "good at".
    u = p.u
    if len(p.councils) == 1 and u.list_kind and not (
            u.asks_reason or u.yes_no or u.asks_quantity or u.asks_name or u.asks_effect):
        return {}
    return None


def _one(handler: Callable[[Understanding, str, Engine], Answer | None]) -> Handler:
    """A handler about exactly one council: None (not this row) for any other number."""
    return lambda u, c, s, e: handler(u, c[0], e) if len(c) == 1 else None


def _some(handler: Callable[[Understanding, tuple[str, ...], Engine], Answer | None]) -> Handler:
    """A handler about the named councils: None (not this row) when none is named."""
    return lambda u, c, s, e: handler(u, c, e) if c else None


# In order: where two detectors could match, the earlier row is the question's type
# ("compare" before "superlative": "which is larger, Bury or Kent?"; "which_scored" before
# "score"). tests/data/intents.jsonl pins which question reads as which type.
QUESTION_TYPES: tuple[QuestionType, ...] = (
    # "What reports do you have?": the index's own list, by family (no report text claims it).
    QuestionType("indexed_reports", _detect_indexed_reports,
                 lambda u, c, s, e: across.indexed_reports(u, e)),
    # "Who was Ofsted's letter to Kent sent to?", "who was Dudley's interim director of
    # children's services?": a visit letter's addressee and post (rag/letters.py); a council
    # with no letter, or none whose addressee holds the post asked, is searched.
    QuestionType("addressee", _detect_addressee,
                 _some(lambda u, c, e: letter_addressee(u, c, e)
                       or partnership_post_holder(u, c, e)), falls_through=True),
    # "Who led Ofsted's inspection of Doncaster?", "who was Redbridge's deputy lead inspector?":
    # the lines of the council's reports that name its inspection team (rag/team.py); a
    # council whose reports print none is searched.
    QuestionType("inspector", _detect_inspector,
                 _some(lambda u, c, e: inspection_team_answer(u, c, e)), falls_through=True),
    # "When was Bury's CQC assessment published?": the date each report says it was published.
    QuestionType("publication_date", _detect_publication_date,
                 _some(lambda u, c, e: publication_dates(u, c, e)), falls_through=True,
                 this_inspection=True),
    # "When was Doncaster inspected?": the dates each report of that council states.
    QuestionType("inspection_date", _detect_inspection_date,
                 _some(lambda u, c, e: dates_or_publication(u, c, e)),
                 falls_through=True, this_inspection=True),
    # "What did Ofsted grade Doncaster's services for care leavers?": a named council's judgement.
    # A council with only an ungraded visit: no grade, the visit's findings instead.
    QuestionType("judgement", _detect_judgement,
                 _some(lambda u, c, e: judgements(u, c, e) or visit_findings(u, c, e)
                       or family_not_indexed(u, c, e)),
                 falls_through=True, overlay=True, this_inspection=True),
    # "Compare Darlington and Bury on safeguarding": side by side, a quota per council.
    QuestionType("compare", _detect_compare,
                 lambda u, c, s, e: _compare(u, c, s, e) if len(c) >= 2 else None),
    # "Which councils are below the England average for carers' satisfaction?"
    QuestionType("versus_england", _detect_versus_england, lambda u, c, s, e: versus_england(u, c, e)),
    # "Which councils scored 1 for safeguarding?"
    QuestionType("which_scored", _detect_which_scored, lambda u, c, s, e: _which_scored(u, c, s, e)),
    # "Which of Darlington's areas got the lowest score?": its lowest (highest) scores.
    QuestionType("statement_extreme", _detect_statement_extreme, _one(lambda u, c, e: _statement_extreme(u, c, e)),
                 falls_through=True),
    # "What was Doncaster's weakest judgement?": its judgements at the bottom (top) of its
    # family's grade scale, besides the overall one.
    QuestionType("judgement_extreme", _detect_judgement_extreme,
                 _one(lambda u, c, e: judgement_extreme(u, c, e)), this_inspection=True),
    # "Which council has the highest overall score?"
    QuestionType("top_rating", _detect_top_rating, lambda u, c, s, e: _top_rating(u, e)),
    # "Which council has the lowest score for safeguarding?": each statement's bottom (top)
    # score across councils, ties listed.
    QuestionType("statement_top", _detect_statement_top,
                 lambda u, c, s, e: across.statement_top(u, s, e)),
    # "Which council has the largest population?": one figure per council, ranked.
    QuestionType("superlative", _detect_superlative, lambda u, c, s, e: superlative(u, c, e)),
    # "Which councils were rated good?"
    QuestionType("which_rated", _detect_which_rated, lambda u, c, s, e: across.which_rated(u, e)),
    # "Summarise Plymouth's report": its overall grade and the opening of its findings.
    QuestionType("summary", _detect_summary, _one(lambda u, c, e: report_summary(u, c, e)),
                 this_inspection=True),
    # "Which councils were inspected by Ofsted in 2024?": the dates each report states.
    QuestionType("which_inspected", _detect_which_inspected,
                 lambda u, c, s, e: across.which_inspected(u, e), falls_through=True),
    # "List Bury's scores for every quality statement"
    QuestionType("all_scores", _detect_all_scores, lambda u, c, s, e: _scores(u, c, (), e),
                 this_inspection=True),
    # "What was Ealing's overall rating?"
    QuestionType("rating", _detect_rating, _some(lambda u, c, e: _ratings(u, c, e)),
                 this_inspection=True),
    # "What did St Helens score for care provision?"
    QuestionType("score", _detect_score, lambda u, c, s, e: _scores(u, c, s, e),
                 this_inspection=True),
    # "Which councils have a carers' strategy?": each council searched on its own.
    QuestionType("which_councils", _detect_which_councils, lambda u, c, s, e: _which_councils(u, s, e)),
    # "What does Bury need to improve?": the items its report lists under that heading.
    QuestionType("list", _detect_list, _one(lambda u, c, e: report_list(u, c, u.list_kind or "", e)),
                 falls_through=True, overlay=True),
)


def _top_rating(u: Understanding, eng: Engine) -> Answer:
    """Highest/lowest overall percentage across indexed councils (ties listed)."""
    rows: dict[str, RatingRow] = {}
    for r in eng.derived().ratings:
        if r.percentage is not None:
            rows.setdefault(r.council_key, r)
    if not rows:
        return refused(u, "No indexed report states an overall percentage score.")
    low = u.asks_lowest
    best = (min if low else max)(r.percentage for r in rows.values() if r.percentage is not None)
    top = [r for r in rows.values() if r.percentage == best]
    cites = [cite_row(i + 1, r, eng, r.start, r.end) for i, r in enumerate(top)]
    names = " and ".join(f"{r.council} ({r.rating}, {r.percentage}) [{i + 1}]"
                         for i, r in enumerate(top))
    tie = ", a tie between" if len(top) > 1 else ":"
    word = "lowest" if low else "highest"
    marks = "".join(f"[{i + 1}]" for i in range(len(top)))
    return Answer(u.question, f"The {word} overall score among indexed councils is {best} "
                  f"{marks}{tie} {names}.", False, tuple(cites), answerer="table")


def _which_councils(u: Understanding, stmts: tuple[str, ...], eng: Engine) -> Answer | None:
    """"Which councils ..." over free text: each council gets its own retrieval (a quota), and
    councils whose best sentence clears the abstention threshold are listed."""

    found = []
    for c in eng.derived().councils:
        hits = eng.retriever.retrieve(u.content, Filters(councils=(c.key,)), W.which_councils_passages,
                                      boost_statements=stmts)
        cands = rerank_dense(u, rank_sentences(u, hits, eng), eng) if hits else []
        if cands and cands[0].confidence >= eng.settings.abstain_threshold:
            found.append((cands[0].confidence, c.name, cands[0]))
    if not found:
        return None  # let ordinary retrieval answer or abstain
    found.sort(key=lambda x: (-x[0], x[1]))
    cites: list[Citation] = []
    names: list[str] = []
    for _, name, cand in found[:W.which_councils_shown]:
        cites.append(replace(cite(len(cites) + 1, cand, eng), n=len(cites) + 1))
        names.append(f"{name} [{len(cites)}]")
    return Answer(u.question, "Indexed councils whose reports state this: " + "; ".join(names)
                  + ".", False, tuple(cites), answerer="table+extractive")


def _compare(u: Understanding, councils: tuple[str, ...], stmts: tuple[str, ...],
             eng: Engine) -> Answer:
    """Side by side, with a per-council quota: each named council gets its own retrieval, so
    one council's pages cannot fill every slot."""

    names = dict(zip(councils, eng.derived().council_names(councils), strict=True))
    if not stmts and not across.names_a_topic(u, names):
        graded = across.grades_side_by_side(u, councils, eng)
        if graded is not None:
            return graded
    score_rows = best_per_key(eng.derived().scores) if stmts else {}
    n_scores = sum(1 for k in councils for st in stmts if score_rows.get((k, st)))
    budget = max(W.compare_min_words,
                 (W.compare_words - W.compare_score_words * n_scores) // len(councils))
    parts: list[str] = []
    cites: list[Citation] = []
    missing: list[str] = []
    score_ns: list[int] = []
    for key in councils:
        said = False
        for st in stmts:
            grp = score_rows.get((key, st))
            if grp:
                r = grp[0]
                cites.append(cite_score(len(cites) + 1, r, eng))
                score_ns.append(len(cites))
                parts.append(f"{r.council} scored {r.score} - {r.label} for {r.statement} "
                             f"[{len(cites)}].")
                said = True
        hits = eng.retriever.retrieve(u.content, Filters(councils=(key,)), W.compare_passages,
                                      boost_statements=stmts)
        cands = rerank_dense(u, rank_sentences(u, hits, eng), eng) if hits else []
        best = cands[0] if cands else None
        if best is not None and len(best.text.split()) > budget:
            best = trim_to(best, budget)  # a verbatim prefix: offsets stay exact
        if best is not None and best.confidence >= eng.settings.abstain_threshold * W.compare_confidence_factor:
            cites.append(replace(cite(len(cites) + 1, best, eng), n=len(cites) + 1))
            tail = "" if re.search(r"[.!?]$", best.text) else " …"
            parts.append(f"{names[key]}: "
                         + with_marker(clean_quote(best.text) + tail, len(cites)))
            said = True
        if not said:
            missing.append(names[key])
    if len(missing) == len(councils):
        return refused(u, "The indexed reports don't give evidence on this for "
                       + " or ".join(missing) + ".")
    scores = {r.score for k in councils for st in stmts for r in score_rows.get((k, st), [])[:1]}
    if stmts and len(scores) == 1 and all(score_rows.get((k, st)) for k in councils for st in stmts):
        marks = "".join(f"[{n}]" for n in score_ns)
        parts.append(f"Both scored {scores.pop()} {marks}." if len(councils) == 2
                     else f"All scored {scores.pop()} {marks}.")
    if missing:
        parts.append("Nothing relevant is indexed for " + ", ".join(missing) + ".")
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table+extractive")


def _scores(u: Understanding, councils: tuple[str, ...], stmts: tuple[str, ...],
            eng: Engine) -> Answer | None:
    d = eng.derived()
    rows = _of_the_year(u, [r for r in d.scores if (not councils or r.council_key in councils)
                            and (not stmts or r.statement in stmts)], eng)
    if rows is None:
        return None
    groups = best_per_key(rows)
    names = eng.derived().council_names(councils)
    if not groups:
        what = " and ".join(stmts) if stmts else "any quality statement"
        who = " or ".join(names) if names else "any council"
        return refused(u, f"The indexed reports don't state a score for {who} on {what}."
                       + _no_cqc_pages(councils, eng))
    parts: list[str] = []
    cites: list[Citation] = []
    for (_, _), grp in groups.items():
        r = grp[0]
        n = len(cites) + 1
        cites.append(cite_score(n, r, eng))
        kind = "indicative score" if r.indicative else "score"
        note = ""
        others = {x.score for x in grp[1:]}
        if others - {r.score}:
            alt = grp[next(i for i, x in enumerate(grp) if x.score != r.score)]
            cites.append(cite_score(n + 1, alt, eng))
            note = (f" (the {alt.page_kind.replace('_', ' ')} page says {alt.score} instead"
                    f" [{n + 1}])")
        parts.append(f"{r.council}'s {kind} for {r.statement} is {r.score} - {r.label}"
                     f"{note} [{n}].")
    missing = [c for c in councils if not any(r.council_key == c for r in rows)]
    if missing:
        parts.append("No score is indexed for " + ", ".join(eng.derived().council_names(tuple(missing))) + ".")
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


def _no_cqc_pages(councils: tuple[str, ...], eng: Engine) -> str:
    """Why a named council has no CQC score, when it is that no CQC assessment of its adult
    social care is indexed ("what score did bury get for safeguarding?": its only report is
    its SEND inspection)."""
    kinds = kinds_without_cqc(councils, eng) if len(councils) == 1 else []
    if not kinds:
        return ""
    return (" Scores are given by CQC's assessments of adult social care, and none is indexed "
            f"for it; its indexed reports: {'; '.join(kinds)}.")


def _statement_extreme(u: Understanding, council: str, eng: Engine) -> Answer | None:
    """A council's lowest (or highest) quality-statement scores, every tie, one citation each;
    None when it has no scores (an Ofsted council: its judgements answer instead)."""
    stated = [grp[0] for grp in best_per_key([r for r in eng.derived().scores
                                              if r.council_key == council]).values()]
    if not stated:
        return None
    pick = min if u.direction == "min" else max
    extreme = pick(r.score for r in stated)
    rows = [r for r in stated if r.score == extreme]
    which = "lowest" if u.direction == "min" else "highest"
    # No count of our own ("of 9 statements"): every figure in an answer is in what it cites.
    parts = [f"{rows[0].council}'s {which} quality statement score is {extreme} - "
             f"{rows[0].label}:"]
    cites = [cite_score(i + 1, r, eng) for i, r in enumerate(rows)]
    parts += [f"{r.statement} [{i + 1}]." for i, r in enumerate(rows)]
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


def _ratings(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    rows = _of_the_year(u, [r for r in eng.derived().ratings if r.council_key in councils], eng)
    if rows is None:
        return None
    if u.asks_percentage:
        rows = [r for r in rows if r.percentage is not None]
        if not rows:
            return refused(u, "The indexed reports don't state an overall percentage score for "
                           + " or ".join(eng.derived().council_names(councils)) + ".")
    if not rows:
        return visit_findings(u, councils, eng) or refused(
            u, "The indexed reports don't state an overall rating for "
            + " or ".join(eng.derived().council_names(councils)) + ".")
    parts: list[str] = []
    cites: list[Citation] = []
    seen: set[str] = set()
    for r in rows:
        if r.council_key in seen:
            continue
        seen.add(r.council_key)
        n = len(cites) + 1
        cites.append(cite_row(n, r, eng, r.start, r.end))
        kind = "indicative overall rating" if r.indicative else "overall rating"
        quote = eng.retriever.report_text(r.report_id)[r.start : r.end]
        unit = "%" if f"{r.percentage}%" in quote else ""
        pct = f" with an overall score of {r.percentage}{unit}" if r.percentage is not None else ""
        parts.append(f"{r.council}'s {kind} is {_as_printed(r.rating, quote)}{pct}"
                     f"{in_its_words(quote)} [{n}].")
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


def _as_printed(rating: str, quote: str) -> str:
    """The rating with the words the page prints after it ("Good: Evidence shows a good
    standard", as CQC prints its ratings, like its scores "3 - Evidence shows a good
    standard"); the bare rating where a score or another line follows ("Good Score: 75")."""
    row = clean_quote(quote)
    if row.lower().startswith(rating.lower()) and row[len(rating):].startswith(":"):
        return row.rstrip(".")
    return rating


def _which_scored(u: Understanding, councils: tuple[str, ...], stmts: tuple[str, ...],
                  eng: Engine) -> Answer:
    rows = [g[0] for g in best_per_key(eng.derived().scores).values()
            if (not stmts or g[0].statement in stmts) and (not councils or g[0].council_key in councils)]
    match = [r for r in rows if r.score == u.score_value]
    what = " and ".join(stmts) if stmts else "any quality statement"
    if u.all_of and not stmts:
        # "scored 3 on every quality statement": councils with all nine stated, all equal.
        full = {c for c in {r.council_key for r in rows}
                if len([r for r in rows if r.council_key == c]) == 9
                and all(r.score == u.score_value for r in rows if r.council_key == c)}
        match = [r for r in match if r.council_key in full]
        what = "every one of the nine quality statements"
        if not match:
            return refused(u, f"No indexed council has all nine quality statements stated at "
                           f"{u.score_value}.")
        cites: list[Citation] = []
        names = []
        for c in sorted(full):
            mine = [x for x in match if x.council_key == c]
            r = mine[0]
            same_page = [x for x in mine if x.report_id == r.report_id]
            # Cite the whole list of nine lines on the page, not just its first row.
            cites.append(cite_row(len(cites) + 1, r, eng, min(x.start for x in same_page),
                                  max(x.end for x in same_page), score=u.score_value))
            names.append(f"{r.council} [{len(cites)}]")
        return Answer(u.question, f"Indexed councils that scored {u.score_value} on {what}: "
                      + "; ".join(names) + ".", False, tuple(cites), answerer="table")
    if not match:
        return refused(u, f"No indexed council scored {u.score_value} on {what} "
                       f"({len(rows)} stated scores checked).")
    cites = []
    lines: list[str] = []
    by_council: dict[str, list[ScoreRow]] = {}
    for r in match:
        by_council.setdefault(r.council, []).append(r)
    for council, rs in sorted(by_council.items()):
        refs = []
        for r in rs:
            cites.append(cite_score(len(cites) + 1, r, eng))
            refs.append(f"{r.statement} [{len(cites)}]")
        lines.append(f"{council}: " + "; ".join(refs) + ".")
    body = "; ".join(line.rstrip(".") for line in lines)
    return Answer(u.question, f"Indexed councils that scored {u.score_value} on {what}: {body}.",
                  False, tuple(cites), answerer="table")


# --- helpers -------------------------------------------------------------------------------

def _of_the_year(u: Understanding, rows: list[Row], eng: Engine) -> list[Row] | None:
    """The rows from the inspection a question's year points to (all of them when it names
    no year); None when it names a year no row is from: the reports' text may give that
    year's grade ("judged inadequate in 2016"), so search answers, not the table."""
    if not u.years:
        return rows
    kept = [r for r in rows if inspected_in(u, report_metadata(r.report_id, eng))]
    return kept or None





