"""Question types, and the answers read from the structured tables, one citation per row.
Public: `understand` (a question parsed and typed), `route` (its table answer, if any) and
`QUESTION_TYPES`, the one ordered table of detector and handler per type.

Top-k retrieval cannot count or compare ("which councils scored 1 on safeguarding?"); the
score and rating tables read at ingest can, completely over the index.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from ingest.index import ReportRow
from ingest.profiles import all_grades, listed_under, profile_named, profiles
from ingest.structure import RATINGS, council_key
from rag.engine import Engine
from rag.evidence import (
    W,
    cite,
    cite_span,
    rank_sentences,
    rank_terms,
    rerank_dense,
    term_coverage,
    trim_to,
    with_marker,
)
from rag.lexicon import pattern, words
from rag.query import (
    CHANGE,
    PROJECTION,
    Council,
    Understanding,
    asks,
    asks_rating,
    parse_question,
)
from rag.retrieve import Filters, tokenize
from rag.stats import Stat
from rag.tables import JudgementRow, RatingRow, ScoreRow, best_per_key
from reportqa.records import Answer, Citation
from reportqa.text import years_in

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
_RATED = re.compile(rf"\b{pattern('questions', 'rated_as').pattern} "
                    rf"({'|'.join(r.lower() for r in RATINGS)})\b")
_WHOLE_SERVICE = pattern("questions", "whole_service")


def _detect_inspection_date(p: Parsed) -> Slots | None:
    # Only a question that opens by asking when: "how many children ... when Ofsted visited"
    # asks a count, not a date.
    if (asks("asks_when", p.q) and asks("inspection_word", p.q)) or asks("inspection_dates", p.q):
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
    return {"score_value": int(m_val.group(1))} if _WHICH.search(p.q) and m_val else None


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


def _detect_superlative(p: Parsed) -> Slots | None:
    m_sup = pattern("questions", "superlative").search(p.q)
    across = len(p.councils) >= 2 or (not p.councils and asks("across_councils", p.q))
    if m_sup and across and asks("which_what", p.q) and not asks("not_superlative", p.q):
        low = m_sup.group(1) in words("questions", "superlative_low")
        return {"direction": "min" if low else "max"}
    return None


def _detect_which_rated(p: Parsed) -> Slots | None:
    m_rated = _RATED.search(p.q)
    if _WHICH.search(p.q) and m_rated:
        return {"rating_value": next(r for r in RATINGS if r.lower() == m_rated.group(1))}
    return None


def _detect_all_scores(p: Parsed) -> Slots | None:
    return {} if p.councils and asks("all_statements", p.q) else None


def _detect_rating(p: Parsed) -> Slots | None:
    return {} if asks_rating(p.q) and not p.stmts else None


def _detect_score(p: Parsed) -> Slots | None:
    return {} if asks("asks_score", p.q) and p.stmts else None


def _detect_which_councils(p: Parsed) -> Slots | None:
    if _WHICH.search(p.q) and not p.councils and asks("which_councils", p.q):
        return {}
    return None


def _detect_list(p: Parsed) -> Slots | None:
    # A report's list answers "what/which/list ..." questions, not "why ...?", "is it true
    # that ...?" or "how much ...?" ones that happen to use the word "improve" or "fix".
    u = p.u
    if len(p.councils) == 1 and u.list_kind and not (u.asks_reason or u.yes_no or u.asks_quantity):
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
    # "When was Doncaster inspected?": the dates each report of that council states.
    QuestionType("inspection_date", _detect_inspection_date, _some(lambda u, c, e: _inspection_dates(u, c, e)),
                 falls_through=True, this_inspection=True),
    # "What did Ofsted grade Doncaster's services for care leavers?": a named council's judgement.
    QuestionType("judgement", _detect_judgement, _some(lambda u, c, e: _judgements(u, c, e)),
                 falls_through=True, overlay=True, this_inspection=True),
    # "Compare Darlington and Bury on safeguarding": side by side, a quota per council.
    QuestionType("compare", _detect_compare,
                 lambda u, c, s, e: _compare(u, c, s, e) if len(c) >= 2 else None),
    # "Which councils are below the England average for carers' satisfaction?"
    QuestionType("versus_england", _detect_versus_england, lambda u, c, s, e: _versus_england(u, c, e)),
    # "Which councils scored 1 for safeguarding?"
    QuestionType("which_scored", _detect_which_scored, lambda u, c, s, e: _which_scored(u, c, s, e)),
    # "Which of Darlington's areas got the lowest score?": its lowest (highest) scores.
    QuestionType("statement_extreme", _detect_statement_extreme, _one(lambda u, c, e: _statement_extreme(u, c, e)),
                 falls_through=True),
    # "What was Doncaster's weakest judgement?": its judgements at the bottom (top) of its
    # family's grade scale, besides the overall one.
    QuestionType("judgement_extreme", _detect_judgement_extreme,
                 _one(lambda u, c, e: _judgement_extreme(u, c, e)), this_inspection=True),
    # "Which council has the highest overall score?"
    QuestionType("top_rating", _detect_top_rating, lambda u, c, s, e: _top_rating(u, e)),
    # "Which council has the largest population?": one figure per council, ranked.
    QuestionType("superlative", _detect_superlative, lambda u, c, s, e: _superlative(u, c, e)),
    # "Which councils were rated good?"
    QuestionType("which_rated", _detect_which_rated, lambda u, c, s, e: _which_rated(u, e)),
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
    QuestionType("list", _detect_list, _one(lambda u, c, e: _report_list(u, c, u.list_kind or "", e)),
                 falls_through=True, overlay=True),
)


def _inspected_in(u: Understanding, metadata: Mapping[str, Any]) -> bool:
    """Is this report the inspection a question with a year asks about? Its years are those
    of its inspection dates and publication, and the year after the inspection (a November
    inspection is published in January)."""
    if not u.years:
        return True
    stated = " ".join(str(metadata.get(k) or "") for k in ("inspection_dates", "published"))
    years = {int(y) for y in years_in(stated)}
    if metadata.get("inspection_dates"):
        years |= {y + 1 for y in years}
    if not years:  # nothing stated to compare with
        return True
    return any(int(y) in years for y in u.years)


# The judgement each report family names as its overall one (ingest/profiles/*.toml).
_OVERALL = frozenset(p.overall for p in profiles() if p.overall)


def _metadata(report_id: str, eng: Engine) -> Mapping[str, Any]:
    row = eng.retriever.state().reports.get(report_id)
    return row.metadata if row is not None else {}


def _council_reports(councils: Collection[str], eng: Engine) -> list[ReportRow]:
    """The current reports of these councils that the question's filters allow, by id."""
    d = eng.derived()
    hidden = set(d.hidden())
    return [row for row in sorted(eng.retriever.state().reports.values(), key=lambda r: r.report_id)
            if row.report_id not in hidden and d.in_scope(row.report_id)
            and council_key(row.metadata.get("council")) in councils]


def _inspection_dates(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    """The inspection dates stated by each named council's reports (families whose profile
    reads dates), one citation per report; None when no report states them."""
    cites: list[Citation] = []
    parts: list[str] = []
    for row in _council_reports(councils, eng):
        m = row.metadata
        dates = m.get("inspection_dates")
        if not dates or not _inspected_in(u, m):
            continue
        text = eng.retriever.report_text(row.report_id)
        at = text.find(dates)
        if at < 0:
            continue
        prof = profile_named(m.get("family"))
        what = prof.title if prof else "inspection"
        n = len(cites) + 1
        cites.append(cite_span(n, row.report_id, eng, at, at + len(dates), council=m.get("council")))
        parts.append(f"{m.get('organisation') or m.get('council')}, {what} by "
                     f"{m.get('inspectorate') or 'the inspectorate'}: {dates} [{n}].")
    if not cites:
        return None
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


def _named_first(u: Understanding, headings: tuple[str, ...]) -> tuple[str, ...]:
    """A family's list headings, those whose every word the question uses first ("areas for
    priority action" asks for that list, not the first one the report prints)."""
    asked = set(u.terms)
    return tuple(sorted(headings, key=lambda h: not set(tokenize(h)) <= asked))


def _report_list(u: Understanding, council: str, kind: str, eng: Engine) -> Answer | None:
    """The items a council's report lists under its family's heading for ``kind`` ("What
    needs to improve?"), one citation per item, as many as fit in ~70 words; None when no
    report of that council has such a list."""
    for row in _council_reports((council,), eng):
        m = row.metadata
        prof = profile_named(m.get("family"))
        if prof is None:
            continue
        text = eng.retriever.report_text(row.report_id)
        heading, spans = listed_under(text, _named_first(u, prof.lists.get(kind, ())))
        if not spans:
            continue
        cites: list[Citation] = []
        words = 0
        for s, e in spans:
            n_words = len(text[s:e].split())
            if cites and words + n_words > W.list_words:
                break
            if not cites and n_words > W.list_words:  # one long item: its opening words
                e = s + len(" ".join(text[s:e].split(" ")[:W.list_words]))
            cites.append(cite_span(len(cites) + 1, row.report_id, eng, s, e,
                                   council=m.get("council")))
            words += len(text[s:e].split())
        # The heading as the report prints it: "What needs to improve?", "Recommendations:".
        shown = heading if (heading or "").endswith("?") else f"{heading}:"
        body = " ".join(with_marker(" ".join(c.quote.split()), c.n) for c in cites)
        # No figure of our own in the text: every figure in an answer must be in what it cites.
        tail = " The report lists more." if len(spans) > len(cites) else ""
        return Answer(u.question, f"{m.get('council')}: {shown} {body}{tail}", False,
                      tuple(cites), answerer="table")
    return None


# Words every judgement name shares: they cannot tell one judgement from another.
_JUDGEMENT_FRAME_STEMS = {t for w in words("questions", "judgement_frame") for t in tokenize(w)}


def _judgement_words(text: str) -> set[str]:
    """Distinctive words, stemmed as the retriever stems them ("outcomes" matches "Inspection
    outcome"), without stop words ("in") or words every judgement name shares."""
    return {t for t in tokenize(text) if t not in _JUDGEMENT_FRAME_STEMS}


def _share(question_words: set[str], judgement_words: set[str]) -> float:
    """How much of a judgement's name the question uses."""
    return len(question_words & judgement_words) / max(1, len(judgement_words))


def _covers(topic: set[str], judgement_words: set[str]) -> bool:
    """Does a judgement's name cover enough of what the question asks about?"""
    return len(topic & judgement_words) / max(1, len(topic)) >= W.judgement_cover


def _family_title(family: str) -> str:
    prof = profile_named(family)
    return prof.title if prof else ""


_GRADE_ASKING = {t for w in words("questions", "grade_asking") for t in tokenize(w)}
_GRADE_NAMES = {t for g in all_grades() for t in tokenize(g)}


def _topic(question_words: set[str], rows: list[JudgementRow]) -> set[str]:
    """What a grade question asks about: its words less the council's name, the report
    family's title ("area SEND inspection"), the grades, the words that ask for a grade, and
    figures (years, dates)."""
    named = {t for j in rows for t in tokenize(f"{j.council} {j.organisation} "
                                                f"{_family_title(j.family)}")}
    return {t for t in question_words - named - _GRADE_NAMES - _GRADE_ASKING
            if not t[0].isdigit()}


def _grade_in(terms: tuple[str, ...], rows: list[JudgementRow]) -> str | None:
    """The longest of these judgements' grades that the question's words name ("requires
    improvement" names "Requires improvement to be good")."""
    # Stemmed, as whole words: "requiring improvement" names "Requires improvement".
    q = f" {' '.join(terms)} "
    named = [g for g in {j.grade for j in rows}
             if f" {' '.join(tokenize(g))} " in q
             or (len(g.split()) > 2 and f" {' '.join(tokenize(g)[:2])} " in q)]
    return max(named, key=len) if named else None


def _judgements(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    """The judgement of a named council whose distinctive words the question uses ("care
    leavers" -> "The experiences and progress of care leavers: Good"), one citation each;
    None (search instead) when no judgement's words are in the question."""
    q = {t for t in u.topic_terms if t not in _JUDGEMENT_FRAME_STEMS}
    named = _graded(u, councils, eng)
    topic = _topic(q, named)
    picked = []
    for key in councils:
        rows = [j for j in named if j.council_key == key]
        # A judgement answers when the question uses its words and it covers what is asked
        # ("the front door for help and protection" is more than "help and protection");
        # a question about nothing narrower than the council gets the overall judgement.
        if topic:
            scored = [(_share(q, jw) if _covers(topic, jw) else 0.0, j)
                      for j in rows for jw in [_judgement_words(j.judgement)]]
        else:
            scored = [(1.0 if j.judgement in _OVERALL else 0.0, j) for j in rows]
        if u.asks_overall:  # "overall" names the overall judgement
            scored = [(s + 1.0 if j.judgement in _OVERALL else s, j) for s, j in scored]
        asked = _grade_in(u.terms, rows)
        if asked and u.asks_which:
            # "Which area was graded requires improvement?": the judgements with that grade.
            scored = [(1.0 if j.grade == asked and j.judgement not in _OVERALL else 0.0, j)
                      for j in rows]
        best = max((s for s, _ in scored), default=0.0)
        if best >= W.judgement_match:
            picked += [j for s, j in scored if s == best]
    if not picked:
        return None
    cites: list[Citation] = []
    parts: list[str] = []
    for j in picked:
        n = len(cites) + 1
        cites.append(cite_span(n, j.report_id, eng, j.start, j.end, council=j.council))
        parts.append(f"{j.inspectorate} judged {j.council}'s \"{j.judgement}\": {j.grade} [{n}].")
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


def _graded(u: Understanding, councils: tuple[str, ...], eng: Engine) -> list[JudgementRow]:
    """The inspection judgements of these councils from the inspection the question's year
    points to. CQC local authority scores have their own table and rows (score, rating)."""
    return [j for j in eng.derived().judgements if j.council_key in councils
            and j.family != "cqc-la-assessment" and _inspected_in(u, _metadata(j.report_id, eng))]


def _grade_scale(family: str) -> tuple[str, ...]:
    """A report family's grades, best first (ingest/profiles/*.toml)."""
    prof = profile_named(family)
    return prof.grades if prof else ()


def _judgement_extreme(u: Understanding, council: str, eng: Engine) -> Answer | None:
    """A council's judgements with the lowest (or highest) grade on its report family's scale,
    the overall judgement aside, every tie, one citation each; None when it has none."""
    rows = [j for j in _graded(u, (council,), eng) if j.judgement not in _OVERALL]
    ranked = [(scale.index(j.grade), j) for j in rows for scale in [_grade_scale(j.family)]
              if j.grade in scale]
    if not ranked:
        return None
    # A family's grades run from best to worst: the lowest grade has the largest index.
    pick = max if u.direction == "min" else min
    end = pick(i for i, _ in ranked)
    picked = [j for i, j in ranked if i == end]
    which = "lowest" if u.direction == "min" else "highest"
    cites = [cite_span(n + 1, j.report_id, eng, j.start, j.end, council=j.council)
             for n, j in enumerate(picked)]
    j0 = picked[0]
    parts = [f"{j0.inspectorate} graded every judgement of {j0.council} besides the overall one "
             f"{j0.grade}:" if len(picked) == len(ranked) else
             f"{j0.inspectorate}'s {which} grade for {j0.council}, besides the overall judgement, "
             f"is {j0.grade}:"]
    parts += [f"\"{j.judgement}\" [{n + 1}]." for n, j in enumerate(picked)]
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


# Question words that frame a superlative rather than name the measure, and (for a
# percentage) the words that name its unit; reports state a population share as "of the
# population", "of people", "of residents" (rag/vocab/questions.toml).
_FRAME = words("questions", "superlative_frame")
_PCT_WORDS = words("questions", "percent_unit")
_SAME = words("questions", "population_stems")


def _superlative(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    """"Which council has the highest/lowest X": one figure per council from the statistics
    table, ranked; all ranked figures share one unit."""
    d = eng.derived()
    unit = u.unit
    measure = _Measure.of(u, eng, unit)
    if measure is None:
        return None
    pool = set(councils or (c.key for c in d.councils))
    best: dict[tuple[str, str], tuple[float, Stat]] = {}  # (unit, council) -> best figure
    for st in d.stats:
        key = council_key(st.council) or ""
        match = measure.match(st, eng.retriever.report_text(st.report_id)) if key in pool else None
        if match is not None and match > best.get((st.unit, key), (-1.0, st))[0]:
            best[(st.unit, key)] = (match, st)
    by_unit: dict[str, list[tuple[float, Stat]]] = {}
    for (un, _), row in best.items():
        by_unit.setdefault(un, []).append(row)
    if not by_unit:
        return None  # nothing comparable: ordinary retrieval answers or abstains
    # The unit the question asks for ("proportion" -> %), else the one most councils state.
    rows = by_unit.get(unit or "") or max(by_unit.values(),
                                         key=lambda rs: (len(rs), sum(m for m, _ in rs)))
    if len(rows) < 2 and len(pool) > 1:
        return None
    low = u.direction == "min"
    ranked = sorted((st for _, st in rows), key=lambda st: (st.value if low else -st.value,
                                                             st.council or ""))
    return _ranked_answer(u, ranked, councils, low, eng)


@dataclass(frozen=True)
class _Measure:
    """What a superlative question measures, and how well a stated figure matches it."""

    weight: dict[str, float]  # measure terms -> idf
    same: dict[str, set[str]]  # term -> terms that count as it
    figures: tuple[str, ...]  # "aged 65+": the 65 must be in the figure's own words
    skip: tuple[re.Pattern[str], ...]  # projection / change, unless the question asks for it

    @classmethod
    def of(cls, u: Understanding, eng: Engine, unit: str | None) -> _Measure | None:
        frame = set(tokenize(" ".join(_FRAME | (_PCT_WORDS if unit == "%" else frozenset()))))
        terms = [t for t in rank_terms(u, eng) if t not in frame and t in eng.derived().idf]
        if not terms:
            return None
        # "% of residents" and "% of the population" are the same share; "10,495 people" and
        # "a population of 755,833" are not the same count.
        same = {t: set(_SAME) for t in _SAME} if unit == "%" else {}
        return cls({t: eng.idf(t) for t in terms}, same,
                   tuple(t for t in terms if t[0].isdigit()),
                   tuple(rx for rx, asked in ((PROJECTION, u.projection), (CHANGE, u.change))
                         if not asked))

    def cover(self, text: str) -> float:
        return term_coverage(self.weight, set(tokenize(text)), self.same)

    def match(self, st: Stat, text: str) -> float | None:
        """How well ``st`` measures this, from the stretch of its sentence it owns (up to
        the neighbouring figures); None when it does not."""
        # "projected to reach 344,300 by 2027", "an increase of 15.5% in ...": the words that
        # make a figure a projection or a change come before it or right after it.
        if any(rx.search(text[st.context_start : st.figure_end + W.measure_skip_chars]) for rx in self.skip):
            return None
        own = text[st.context_start : st.context_end]
        local = self.cover(own)
        if local < W.measure_cover or not set(self.figures) <= set(tokenize(own)):
            return None
        return local + W.measure_context_weight * self.cover(text[st.start : st.end])


def _ranked_answer(u: Understanding, ranked: list[Stat], named: tuple[str, ...], low: bool,
                   eng: Engine) -> Answer:
    """The top figure (ties included) and the next few, each cited; short enough to read."""
    shown = ranked[: max(W.ranked_shown, sum(1 for st in ranked if st.value == ranked[0].value))]
    cites = [cite_span(i + 1, st.report_id, eng, st.start, st.end, council=st.council,
                        statement=st.quality_statement) for i, st in enumerate(shown)]
    top = [st for st in shown if st.value == ranked[0].value]
    word = "lowest" if low else "highest"
    lead = " and ".join(f"{st.council} ({st.raw}) [{i + 1}]" for i, st in enumerate(top))
    # No figure of our own (a count of councils) in the text: the number check would drop it.
    text = (f"Among the councils whose indexed reports state this figure, {lead} "
            f"{'have' if len(top) > 1 else 'has'} the {word}.")
    rest = [f"{st.council} {st.raw} [{i + 1}]" for i, st in enumerate(shown) if st not in top]
    if rest:
        text += " Next: " + "; ".join(rest) + "."
    if len(ranked) > len(shown):
        text += " Further councils are not listed."
    found = {council_key(st.council) for st in ranked}
    missing = sorted(_names(tuple(k for k in named if k not in found), eng))
    if missing:
        text += " No comparable figure is indexed for " + ", ".join(missing) + "."
    return Answer(u.question, text, False, tuple(cites), answerer="table")


def _versus_england(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    """Every extracted statistic compared with an England average in the asked direction,
    restricted to the topic words of the question."""
    generic = set(tokenize("England national average below above worse better higher lower where"))
    terms = [t for t in rank_terms(u, eng) if t not in generic]
    rows = [s for s in eng.derived().stats if s.comparator and "england" in s.comparator.lower()
            and s.direction == u.direction
            and (not councils or council_key(s.council) in councils)]
    scored = []
    weights = {t: eng.idf(t) for t in terms}
    for s in rows:
        sent_terms = set(tokenize(eng.retriever.report_text(s.report_id)[s.start : s.end]))
        cov = term_coverage(weights, sent_terms)
        if cov >= W.england_cover:
            scored.append((cov, s))
    if not scored:
        return None  # fall back to retrieval, which can still answer or abstain
    scored.sort(key=lambda x: (-x[0], x[1].council or "", x[1].start))
    cites: list[Citation] = []
    parts: list[str] = []
    for _, s in scored[:W.england_shown]:
        n = len(cites) + 1
        cites.append(cite_span(n, s.report_id, eng, s.start, s.end, council=s.council,
                                statement=s.quality_statement))
        cmp_val = f" {s.comparator_value:g}%" if s.comparator_value is not None else ""
        parts.append(f"{s.council}: {s.raw} {s.subject[:60].rstrip()} ({u.direction} the "
                     f"{s.comparator}{cmp_val}) [{n}].")
    head = f"Statistics {u.direction} the England average on this topic:"
    return Answer(u.question, head + " " + " ".join(parts), False, tuple(cites), answerer="table")


def _top_rating(u: Understanding, eng: Engine) -> Answer:
    """Highest/lowest overall percentage across indexed councils (ties listed)."""
    rows: dict[str, RatingRow] = {}
    for r in eng.derived().ratings:
        if r.percentage is not None:
            rows.setdefault(r.council_key, r)
    if not rows:
        return _no(u, "No indexed report states an overall percentage score.")
    low = u.asks_lowest
    best = (min if low else max)(r.percentage for r in rows.values() if r.percentage is not None)
    top = [r for r in rows.values() if r.percentage == best]
    cites = [_cite(i + 1, r, eng, r.start, r.end) for i, r in enumerate(top)]
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

    names = dict(zip(councils, _names(councils, eng), strict=True))
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
                cites.append(_cite_score(len(cites) + 1, r, eng))
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
                         + with_marker(" ".join(best.text.split()) + tail, len(cites)))
            said = True
        if not said:
            missing.append(names[key])
    if len(missing) == len(councils):
        return _no(u, "The indexed reports don't give evidence on this for "
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
    names = _names(councils, eng)
    if not groups:
        what = " and ".join(stmts) if stmts else "any quality statement"
        who = " or ".join(names) if names else "any council"
        return _no(u, f"The indexed reports don't state a score for {who} on {what}.")
    parts: list[str] = []
    cites: list[Citation] = []
    for (_, _), grp in groups.items():
        r = grp[0]
        n = len(cites) + 1
        cites.append(_cite_score(n, r, eng))
        kind = "indicative score" if r.indicative else "score"
        note = ""
        others = {x.score for x in grp[1:]}
        if others - {r.score}:
            alt = grp[next(i for i, x in enumerate(grp) if x.score != r.score)]
            cites.append(_cite_score(n + 1, alt, eng))
            note = (f" (the {alt.page_kind.replace('_', ' ')} page says {alt.score} instead"
                    f" [{n + 1}])")
        parts.append(f"{r.council}'s {kind} for {r.statement} is {r.score} - {r.label}"
                     f"{note} [{n}].")
    missing = [c for c in councils if not any(r.council_key == c for r in rows)]
    if missing:
        parts.append("No score is indexed for " + ", ".join(_names(tuple(missing), eng)) + ".")
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


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
    cites = [_cite_score(i + 1, r, eng) for i, r in enumerate(rows)]
    parts += [f"{r.statement} [{i + 1}]." for i, r in enumerate(rows)]
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


def _ratings(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    rows = _of_the_year(u, [r for r in eng.derived().ratings if r.council_key in councils], eng)
    if rows is None:
        return None
    if u.asks_percentage:
        rows = [r for r in rows if r.percentage is not None]
        if not rows:
            return _no(u, "The indexed reports don't state an overall percentage score for "
                       + " or ".join(_names(councils, eng)) + ".")
    if not rows:
        return _no(u, "The indexed reports don't state an overall rating for "
                   + " or ".join(_names(councils, eng)) + ".")
    parts: list[str] = []
    cites: list[Citation] = []
    seen: set[str] = set()
    for r in rows:
        if r.council_key in seen:
            continue
        seen.add(r.council_key)
        n = len(cites) + 1
        cites.append(_cite(n, r, eng, r.start, r.end))
        kind = "indicative overall rating" if r.indicative else "overall rating"
        quote = eng.retriever.report_text(r.report_id)[r.start : r.end]
        unit = "%" if f"{r.percentage}%" in quote else ""
        pct = f" with an overall score of {r.percentage}{unit}" if r.percentage is not None else ""
        parts.append(f"{r.council}'s {kind} is {r.rating}{pct} [{n}].")
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


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
            return _no(u, f"No indexed council has all nine quality statements stated at "
                       f"{u.score_value}.")
        cites: list[Citation] = []
        names = []
        for c in sorted(full):
            mine = [x for x in match if x.council_key == c]
            r = mine[0]
            same_page = [x for x in mine if x.report_id == r.report_id]
            # Cite the whole list of nine lines on the page, not just its first row.
            cites.append(_cite(len(cites) + 1, r, eng, min(x.start for x in same_page),
                               max(x.end for x in same_page), score=u.score_value))
            names.append(f"{r.council} [{len(cites)}]")
        return Answer(u.question, f"Indexed councils that scored {u.score_value} on {what}: "
                      + "; ".join(names) + ".", False, tuple(cites), answerer="table")
    if not match:
        return _no(u, f"No indexed council scored {u.score_value} on {what} "
                   f"({len(rows)} stated scores checked).")
    cites = []
    lines: list[str] = []
    by_council: dict[str, list[ScoreRow]] = {}
    for r in match:
        by_council.setdefault(r.council, []).append(r)
    for council, rs in sorted(by_council.items()):
        refs = []
        for r in rs:
            cites.append(_cite_score(len(cites) + 1, r, eng))
            refs.append(f"{r.statement} [{len(cites)}]")
        lines.append(f"{council}: " + "; ".join(refs) + ".")
    body = "; ".join(line.rstrip(".") for line in lines)
    return Answer(u.question, f"Indexed councils that scored {u.score_value} on {what}: {body}.",
                  False, tuple(cites), answerer="table")


def _which_rated(u: Understanding, eng: Engine) -> Answer:
    seen: dict[str, RatingRow] = {}
    for r in eng.derived().ratings:
        seen.setdefault(r.council_key, r)
    match = [r for r in seen.values() if r.rating == u.rating_value]
    if not match:
        return _no(u, f"No indexed council is rated {u.rating_value} ({len(seen)} ratings indexed).")
    cites = [_cite(i + 1, r, eng, r.start, r.end) for i, r in enumerate(match)]
    body = "; ".join(f"{r.council}{' (indicative)' if r.indicative else ''} [{i + 1}]"
                     for i, r in enumerate(match))
    return Answer(u.question, f"Indexed councils rated {u.rating_value}: {body}.",
                  False, tuple(cites), answerer="table")


# --- helpers -------------------------------------------------------------------------------

def _of_the_year(u: Understanding, rows: list[Row], eng: Engine) -> list[Row] | None:
    """The rows from the inspection a question's year points to (all of them when it names
    no year); None when it names a year no row is from: the reports' text may give that
    year's grade ("judged inadequate in 2016"), so search answers, not the table."""
    if not u.years:
        return rows
    kept = [r for r in rows if _inspected_in(u, _metadata(r.report_id, eng))]
    return kept or None


def _no(u: Understanding, text: str) -> Answer:
    return Answer(u.question, text, True, (), answerer="table")


def _names(keys: tuple[str, ...], eng: Engine) -> list[str]:
    names = {c.key: c.name for c in eng.derived().councils}
    return [names.get(k, k) for k in keys]


def _cite_score(n: int, r: ScoreRow, eng: Engine) -> Citation:
    return _cite(n, r, eng, r.start, r.end, statement=r.statement, score=r.score)


def _cite(n: int, r: ScoreRow | RatingRow, eng: Engine, start: int, end: int,
          statement: str | None = None, score: int | None = None) -> Citation:
    return cite_span(n, r.report_id, eng, start, end, council=r.council, statement=statement,
                      score=score)
