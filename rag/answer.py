"""Stage 6: question -> Answer with citations. Public: `answer`, the only router.

Routing: structured questions (scores, ratings, judgements, lists over councils) are answered
from the tables read at ingest (rag/structured.py); everything else goes through hybrid
retrieval and an answerer: extractive by default (rag/extractive.py: it only ever quotes
report sentences, so it cannot invent) or an LLM (rag/llm.py). Evidence and citations for all
of them come from rag/evidence.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any, Protocol

from ingest.structure import council_key, inspectorate_of
from rag import structured
from rag.engine import Engine, get_engine
from rag.evidence import (
    ACTION,
    COMPARISON,
    NOT_IN_REPORTS,
    Candidate,
    W,
    abstained,
    cite_span,
    distinct_spans,
    new_figures,
    rank_sentences,
    states_asked_figure,
    with_marker,
)
from rag.extractive import MAY_ANSWER, ExtractiveAnswerer, extractive_for, needs_figure
from rag.followup import (
    Reading,
    action_after_quote,
    as_indexed,
    asks_action,
    asks_comparison,
    asks_consequence,
    asks_only_why,
    asks_when,
    cause_in_quote,
    comparison_in_quote,
    consequence_of_quote,
    date_in_quote,
    followup_question,
    lean_of,
    more_answer,
    page_answer,
    quoting,
    read_in_context,
    reason_after_quote,
    reason_in_quote,
    reason_query,
    topic_of,
    topic_query,
    topic_question,
)
from rag.judgement_answers import findings_behind
from rag.lexicon import pattern
from rag.llm import LLMAnswerer
from rag.query import (
    Council,
    Understanding,
    asks,
    expand_shorthand,
    org_mentions,
    resolve_council,
)
from rag.reader import SentenceReader, pair_text
from rag.retrieve import Filters, tokenize
from rag.spelling import respell
from rag.tables import JudgementRow, RatingRow, ScoreRow
from rag.verify import verify_figures
from reportqa.errors import QuestionError
from reportqa.records import Answer, Citation, Hit, Turn, overlap
from reportqa.settings import Settings
from reportqa.text import (
    answer_sentences,
    as_typed,
    clean_quote,
    quotable_spans,
    surrogate_at,
    years_in,
)

__all__ = ["MAY_ANSWER", "NOT_IN_REPORTS", "ExtractiveAnswerer", "answer", "answer_in_chat", "candidates_for",
           "check_figures", "extractive_for", "understand_and_filter"]
MAX_QUESTION_CHARS = 1000
# A chat message's reading: the message and the question before it ("why? (following: ...)").
READING_CHARS = 3 * MAX_QUESTION_CHARS


class Answerer(Protocol):
    name: str

    def compose(self, u: Understanding, hits: list[Hit], engine: Engine) -> Answer: ...


def answer(question: str, settings: Settings, filters: Filters | None = None, *,
           engine: Engine | None = None, answerer: Answerer | None = None,
           k: int | None = None, on_delta: Callable[[str], None] | None = None) -> Answer:
    """Answer one question from the index named by ``settings``. Deterministic."""
    return _answer(_validate(question), settings, filters, engine=engine, answerer=answerer,
                   k=k, on_delta=on_delta)


def _answer(q: str, settings: Settings, filters: Filters | None = None, *,
            engine: Engine | None = None, answerer: Answerer | None = None,
            k: int | None = None, on_delta: Callable[[str], None] | None = None) -> Answer:
    """`answer` of a question already validated (a chat message's reading may be longer
    than the message typed: "and Staffordshire?" read as the whole question before)."""
    t0 = time.perf_counter()
    eng = engine or get_engine(settings)
    eng.require_ready()
    u = _understood(q, eng)
    explicit = filters or Filters()
    filters = _merge_filters(explicit, u, eng)
    if explicit.councils:
        filters = _council_reports_only(filters, eng)
    if u.unknown_councils and u.unknown_first and not explicit.councils:
        ans = abstained(q, "The indexed reports don't cover "
                       + " or ".join(u.unknown_councils) + ": no report for that council is indexed.")
        return _timed(ans, t0, t0)
    names = {c.key: c.name for c in eng.derived().councils}
    notes = _left_out(u, explicit, filters, names) + _reports_left_out(u, explicit, names, eng)
    by = _inspectorate_named(u.question)
    if by is not None:
        missing, filters = _by_inspectorate(by, filters, names, eng)
        if missing is None:
            return _timed(abstained(q, f"The indexed reports include no {by} report: ask "
                                    f"without naming {by} to search the reports that are "
                                    "indexed."), t0, t0)
        if missing and len(missing) == len(filters.councils):
            return _timed(abstained(q, f"The indexed reports include no {by} report for "
                                    f"{' or '.join(missing)}: ask without naming {by} to "
                                    "search the reports that are indexed."), t0, t0)
        if missing:
            notes += (f"The indexed reports include no {by} report for "
                      f"{' or '.join(missing)}: answered from the others.",)
    # "Why was X rated ...?" before the tables: they would give the grade, not its reasons.
    routed = _reason_for_grade(q, u, filters, eng) or structured.route(u, filters, eng)
    if routed is not None:
        ans = _timed(check_figures(routed), t0, time.perf_counter())
    else:
        ans = _search_and_compose(u, filters, settings, eng, answerer, k, on_delta, t0)
    # Understood with its shorthand read ("r" -> "are"), answered as typed.
    return replace(ans, question=q, notes=(*ans.notes, *notes))


# "Why was Harrow rated inadequate?": the asking words before the grade question they wrap
# (questions.toml why_graded).
_WHY_GRADED = pattern("questions", "why_graded")


def _reason_for_grade(q: str, u: Understanding, filters: Filters, eng: Engine) -> Answer | None:
    """"Why was Harrow rated inadequate?", "why did Darlington only get a 2 for equity?": the
    grade question it wraps, answered from the tables, then the report's own summary of that
    judgement, as "why?" after a grade in a chat (`findings_behind`). Searched, such a
    question found whatever shared its words ("rated" is in no Ofsted summary). None unless
    an organisation follows the asking words and its grade is in the tables."""
    m = _WHY_GRADED.match(q)
    if not (u.asks_reason and u.asks_grade and m):
        return None
    graded = q[m.end():]
    named = org_mentions(graded, eng.derived().councils)
    if not named or named[0].start != 0:
        return None
    told = structured.route(_understood(graded, eng), filters, eng)
    return findings_behind(q, told.citations, eng) if told is not None else None


def _council_reports_only(filters: Filters, eng: Engine) -> Filters:
    """A council filter narrows the tables as it narrows the passages: "which councils were
    rated good?" filtered to Darlington lists Darlington's rating alone, not every council's.
    (Councils a question names are no such filter: "which scored lower than Darlington?"
    reads every council's row.)"""
    ids = [r.report_id for r in eng.retriever.state().reports.values()
           if council_key(r.metadata.get("council")) in filters.councils
           and (not filters.report_ids or r.report_id in filters.report_ids)]
    return replace(filters, report_ids=tuple(ids) or ("(none)",))


def _inspectorate_named(question: str) -> str | None:
    """The one inspectorate a question names ("What did Ofsted rate ...?"), if it names one."""
    named = [name for name, row in (("Ofsted", "names_ofsted"), ("CQC", "names_cqc"))
             if asks(row, question)]
    return named[0] if len(named) == 1 else None


def _by_inspectorate(by: str, filters: Filters, names: dict[str, str],
                     eng: Engine) -> tuple[list[str] | None, Filters]:
    """The councils searched (named, or set by the filter) that have no report by ``by``
    (a joint SEND inspection is by both), and the filters narrowed to its reports; None when
    the index holds none of them. Read from the reports the engine holds in memory."""
    reports: dict[str, str | None] = {}  # report id -> council key
    others: list[str] = []
    for r in eng.retriever.state().reports.values():
        if by in (inspectorate_of(r.metadata) or ""):
            reports[r.report_id] = council_key(r.metadata.get("council"))
        else:
            others.append(r.report_id)
    if not reports:
        return None, filters
    have = set(reports.values())
    missing = [names.get(c, c) for c in filters.councils if c not in have]
    # The shorter list of the two: a search filtered by thousands of ids is slow, and an
    # index of one inspectorate's reports needs no filter at all.
    keep = [r for r in reports if not filters.report_ids or r in filters.report_ids]
    if filters.report_ids or (others and len(keep) <= len(others)):
        filters = replace(filters, report_ids=tuple(keep) or ("(none)",))
    elif others:
        filters = replace(filters, exclude_report_ids=filters.exclude_report_ids + tuple(others))
    return missing, filters


def _reports_left_out(u: Understanding, explicit: Filters, names: dict[str, str],
                      eng: Engine) -> tuple[str, ...]:
    """The councils the question names whose every indexed report the report filter (the
    app's family and year filters) leaves out: "What score did Darlington get?" filtered to
    2024 is answered "no score stated", which is only true of the filtered reports."""
    if not explicit.report_ids:
        return ()
    kept: dict[str, bool] = {}
    for r in eng.retriever.state().reports.values():
        key = council_key(r.metadata.get("council"))
        if key in u.councils:
            kept[key] = kept.get(key, False) or r.report_id in explicit.report_ids
    out = [names.get(c, c) for c in u.councils if kept.get(c) is False]
    if not out:
        return ()
    return (f"The report filters (family, year) leave out every report of {' and '.join(out)}, "
            "which the question names: answered from the filtered reports only.",)


def _left_out(u: Understanding, explicit: Filters, merged: Filters,
              names: dict[str, str]) -> tuple[str, ...]:
    """What the question names that the filters given leave out: the filters decide what is
    searched (a council's reports may discuss its neighbours), but an answer about Bury to
    "What did Birmingham score?" must say why it is about Bury. ``merged`` holds the filter's
    councils as `_merge_filters` resolved them."""
    allowed = set(merged.councils) if explicit.councils else set()
    notes = []
    councils = [names.get(c, c) for c in u.councils if allowed and c not in allowed]
    if councils:
        notes.append(f"The council filter ({', '.join(names.get(c, c) for c in sorted(allowed))}) "
                     f"leaves out {' and '.join(councils)}, which the question names: answered "
                     "from the filtered reports only.")
    statements = [s for s in u.statements if explicit.statements and s not in explicit.statements]
    if statements:
        notes.append(f"The quality statement filter ({', '.join(explicit.statements)}) leaves "
                     f"out {' and '.join(statements)}, which the question names: answered from "
                     "the filtered statements only.")
    return tuple(notes)


def answer_in_chat(question: str, history: Sequence[Turn], settings: Settings,
                   filters: Filters | None = None, *, engine: Engine | None = None,
                   answerer: Answerer | None = None, k: int | None = None,
                   on_delta: Callable[[str], None] | None = None,
                   literal: bool = False) -> Answer:
    """Answer a chat message in the light of the turns before it (rag/followup.py): "and
    Staffordshire?" after a score question is answered as that question about Staffordshire.
    ``Answer.read_as`` says how it was read; ``literal`` answers the words alone."""
    t0 = time.perf_counter()
    # The message is checked as typed; whether it has words to search for, as read ("2025?"
    # after a question about 2024's inspections asks that question of 2025).
    q = _validate(question, words=False)
    eng = engine or get_engine(settings)
    eng.require_ready()
    # The last turn's quotes as the index has them: an API client sends offsets only, and a
    # follow-up must read the turn before it alike, whoever sent it. (An older turn is only
    # ever quoted again through `_previous_citations`, which re-reads it too.)
    if history:
        history = [*history[:-1], as_indexed(history[-1], eng)]
    reading = Reading(q, q) if literal else read_in_context(_councils_respelt(q, eng), history,
                                                            eng.derived().councils)
    # Words to search for: in the message, unless it only swaps a slot of the question
    # before ("2025?"); the reading may be longer than a message, not without end.
    _validate(reading.read_as if reading.kind == "other_slot" else q, length=False)
    reading = replace(reading, read_as=_validate(reading.read_as, words=False,
                                                 limit=READING_CHARS))
    if not history and reading.kind in _NOTHING_BEFORE:
        # "why?" as the first message: there is no answer to ask it of.
        return _timed(abstained(q, _NOTHING_BEFORE[reading.kind]), t0, t0)
    if reading.kind in ("page", "more"):
        last = _last_quoted(reading, history)
        found = page_answer(last, eng) if reading.kind == "page" else more_answer(
            last, eng, [c.span for t in history for c in t.citations])
        ans = found or abstained(q, NOT_IN_REPORTS + (
            " The report quoted says nothing more after that passage."
            if reading.kind == "more" and last.previous and last.previous.citations
            else " There is no earlier passage to continue from: ask the question in full."))
        return _timed(replace(ans, question=q, read_as=reading.read_as), t0, t0)
    found = _from_the_quote(reading, settings, filters, eng, answerer, k, t0)
    if found is not None:
        return _timed(replace(found, question=q, read_as=reading.read_as), t0, t0)
    if reading.kind == "why" and reading.previous is not None:
        ans = _why(reading, reading.previous, settings, eng, answerer, k, on_delta, t0)
    elif reading.kind == "carry_topic":
        ans = _with_topic(reading, settings, filters, eng, answerer, k, on_delta, t0)
    else:
        ans = _answer(reading.read_as, settings, filters, engine=eng, answerer=answerer, k=k,
                      on_delta=on_delta)
    if reading.kind in _NEW_QUESTION and reading.previous is not None:
        if _requotes(ans, reading.previous) and not _states_the_figure(reading, ans, eng):
            ans = (_beyond_the_quote(reading, reading.previous, settings, filters, eng,
                                     answerer, k, t0)
                   or _another_fact_of_the_quote(reading, ans, settings, eng, answerer)
                   or _settled_by_the_quote(reading, ans, eng)
                   or _nothing_new(ans))
        elif ans.abstained:
            ans = _in_the_report_quoted(reading, reading.previous, settings, filters, eng,
                                        answerer, k, t0) or ans
    return replace(ans, question=q, read_as=reading.read_as)


def _from_the_quote(reading: Reading, settings: Settings, filters: Filters | None, eng: Engine,
                    answerer: Answerer | None, k: int | None, t0: float) -> Answer | None:
    """A follow-up about the passage just quoted, answered beside it before any new search:
    what follows from it ("so what does that mean for families?"), when it happened ("when was
    that?"), what is being done about it ("are they sorting it out?"), how it compares ("is
    that good?"). None otherwise."""
    if asks_consequence(reading):
        found = consequence_of_quote(reading, eng)
        if found is not None:
            return found
    if asks_when(reading):
        found = date_in_quote(reading, eng)
        if found is not None:
            return found
    if reading.kind not in ("carry", "carry_topic"):
        return None
    if asks_action(reading):
        found = action_after_quote(reading, eng) or _action_in_the_report(
            reading, settings, filters, eng, answerer, k, t0)
        if found is not None:
            return found
    if not asks_comparison(reading):
        return None
    found = comparison_in_quote(reading, eng) or _grade_quoted(reading, eng)
    if found is not None or not _quoted_a_figure(reading.previous):
        # "is it any good?" after a quote with no figure asks about the thing itself: searched.
        return found
    return (_compared_in_the_report(reading, settings, eng, answerer, k, t0)
            or _not_compared(reading))


def _quoted_a_figure(turn: Turn | None) -> bool:
    return turn is not None and any(new_figures(c.quote, set()) for c in turn.citations
                                    if not c.see_also)


def _compared_in_the_report(reading: Reading, settings: Settings, eng: Engine,
                            answerer: Answerer | None, k: int | None, t0: float) -> Answer | None:
    """"Is that good?" when the quoted figure's own paragraph compares it with nothing: the
    report quoted, searched for the topic of the question before among sentences that set a
    figure against an average, a target or another figure. Searched with the message's own
    words ("is that ok in Sandwell"), the whole index gave school census figures or a vacancy
    rate (a chat review: Sandwell, Stockton-on-Tees). None unless the answer found compares;
    with no answer, the closest passage may, if it compares the figure quoted."""
    prev = reading.previous
    reports = _cited_reports(prev) if prev else ()
    if prev is None or not reports:
        return None
    u = _understood(topic_of(prev), eng)
    if u.intent != "search":
        return None
    u = replace(u, avoid=tuple(c.span for c in prev.citations))
    merged = replace(_merge_filters(Filters(), u, eng), report_ids=reports)
    near = _search_and_compose(u, merged, settings, eng, answerer, k, None, t0)
    if near.abstained:
        return _closest_on_the_quote(near, COMPARISON, reading)
    return near if any(COMPARISON.search(c.quote) for c in near.citations
                       if not c.see_also) else None


def _not_compared(reading: Reading) -> Answer | None:
    """"Is that good?" when neither the quote nor its report sets the figure against
    another: say so, with the quote as see-also, rather than search the message's words."""
    see = _as_see_also(reading.previous.citations) if reading.previous else ()
    return abstained(reading.question, NOT_COMPARED, see, ()) if see else None


NOT_COMPARED = ("The report quoted doesn't set that against an average, a target or another "
                "council, so the indexed reports don't say how it compares.")


def _grade_quoted(reading: Reading, eng: Engine) -> Answer | None:
    """"Is that good?" after an answer that quoted a score, rating or judgement line
    ("Safeguarding Indicative score: 2 - Evidence shows some shortfalls", "overall rating is
    Good"): that line is the report's own verdict, so it is quoted again. Searched, the words
    found another figure or nothing (a chat review: Westminster's rating, Birmingham's
    safeguarding score)."""
    prev = reading.previous
    if prev is None:
        return None
    rows = _table_rows(eng, _cited_reports(prev))
    graded = next((c for c in prev.citations if not c.see_also
                   and any(overlap(c.span, row) for row in rows)), None)
    return None if graded is None else quoting(reading, replace(graded, n=1))


_NOTHING_BEFORE = {
    kind: f"There is no earlier answer to {what}: ask the question in full (for example "
          "\u201cWhat did Ofsted say about care leavers in Bury?\u201d)."
    for kind, what in (("why", "ask why about"), ("more", "go on from"),
                       ("page", "give the page of"))}


def _in_the_report_quoted(reading: Reading, prev: Turn, settings: Settings,
                          filters: Filters | None, eng: Engine, answerer: Answerer | None,
                          k: int | None, t0: float) -> Answer | None:
    """A follow-up the whole index found nothing for ("how many cases do they check each
    month?" after a quote from the council's governance page), asked again of the reports
    the last answer quoted, beside the passages it quoted: "they" were talking about that
    report. Also when the index's best answer would only repeat the last quote ("what are
    they doing about it?" after the problem was quoted): the next best passage of that report
    may say. Only a plain answer is kept."""
    reports = _cited_reports(prev)
    if not reports:
        return None
    u = _understood(followup_question(reading), eng)
    if u.intent != "search":
        return None
    u = replace(u, content=topic_query(reading) if reading.kind == "carry_topic" else u.content,
                avoid=tuple(c.span for c in prev.citations))
    merged = replace(_merge_filters(filters or Filters(), u, eng), report_ids=reports)
    near = _search_and_compose(u, merged, settings, eng, answerer, k, None, t0)
    return near if near.outcome == "answer" else None


def _action_in_the_report(reading: Reading, settings: Settings, filters: Filters | None,
                          eng: Engine, answerer: Answerer | None, k: int | None,
                          t0: float) -> Answer | None:
    """"What are they doing about it?" when the quoted problem's own paragraph says nothing
    of it: the reports quoted before, searched for the problem's topic among sentences that
    say what is being done (`Understanding.wants_action`); searched as any other question, it
    mostly quoted the problem again. None when none of them does."""
    reports = _cited_reports(reading.previous) if reading.previous else ()
    if not reports:
        return None
    u = _understood(followup_question(reading), eng)
    if u.intent != "search":
        return None
    u = replace(u, content=topic_query(reading), reader_question=topic_question(reading),
                wants_action=True)
    merged = replace(_merge_filters(filters or Filters(), u, eng), report_ids=reports)
    near = _search_and_compose(u, merged, settings, eng, answerer, k, None, t0)
    if not near.abstained:
        return near
    # The question's words ("sort that") name little; the quoted problem names what is being
    # sorted, so an action sentence of that report on the same thing may answer.
    return _closest_on_the_quote(near, ACTION, reading)


def _closest_on_the_quote(near: Answer, says: re.Pattern[str], reading: Reading) -> Answer | None:
    """A search that found no answer: its closest passage, quoted as one that may answer, if
    it says what was asked (an action, a comparison: ``says``) about what the last answer
    quoted (`_on_the_quoted_passage`). None otherwise."""
    closest = near.citations[:1]
    if not closest or not says.search(closest[0].quote) \
            or not _on_the_quoted_passage(closest[0], reading.previous):
        return None
    quote = replace(closest[0], n=1, see_also=False)
    return Answer(reading.question, MAY_ANSWER + with_marker(clean_quote(quote.quote), 1),
                  False, (quote,), uncertain=True, read_as=reading.read_as)


SHARED_WITH_QUOTE = 3  # words besides the organisation's name: "care leavers ... outside"


def _on_the_quoted_passage(cite: Citation, prev: Turn | None) -> bool:
    """Does a sentence speak of what the last answer quoted (the problem acted on, the figure
    compared): at least SHARED_WITH_QUOTE of its words, not counting the organisation's name?
    (``prev`` holds the quotes as indexed: `answer_in_chat` re-read them.)"""
    if prev is None:
        return False
    quoted = set(tokenize(" ".join(c.quote for c in prev.citations)))
    return len((set(tokenize(cite.quote)) & quoted) - set(tokenize(cite.council or ""))) \
        >= SHARED_WITH_QUOTE


def _cited_reports(turn: Turn) -> tuple[str, ...]:
    """The reports a turn's answer quoted, in the order it quoted them."""
    return tuple(dict.fromkeys(c.report_id for c in turn.citations))


def _last_quoted(reading: Reading, history: Sequence[Turn]) -> Reading:
    """"Tell me more" or "which page is that on?" after an answer that quoted nothing: go on
    from (or give the page of) the last passage a turn quoted. Not a page question after an
    answer that showed its closest passages: it asks their pages (`page_answer`)."""
    if reading.previous is None or reading.previous.citations or (
            reading.kind == "page" and reading.previous.see_also):
        return reading
    quoted = next((t for t in reversed(history) if t.citations), None)
    return reading if quoted is None else replace(reading, previous=quoted)


# Follow-ups that ask something new of the same organisation ("how many of them ...?", "what
# about care leavers?"): repeating the passage just quoted does not answer them.
_NEW_QUESTION = ("carry", "carry_topic", "other_topic")


def _requotes(ans: Answer, prev: Turn) -> bool:
    """Is the answer only the passage the last answer quoted, stated as an answer? (Quoted as
    uncertain, the repeat already says it may not answer.)"""
    cited = [c for c in ans.citations if not c.see_also]
    return ans.outcome == "answer" and bool(cited) and bool(prev.citations) and all(
        any(overlap(c.span, p.span) for p in prev.citations) for c in cited)


def _beyond_the_quote(reading: Reading, prev: Turn, settings: Settings,
                      filters: Filters | None, eng: Engine, answerer: Answerer | None,
                      k: int | None, t0: float) -> Answer | None:
    """A new follow-up whose best answer would only repeat the last quote ("what are they doing
    about it?" after the problem was quoted): the next best passage of the report quoted, if
    the sentence reader judges it the better answer. Not when the message restates the
    question before: the quote was its answer."""
    # Without a reader to judge (the LLM answerer, the tests' lexical setup) the quote stands,
    # so the report is not searched again: with the LLM answerer that search is a generation.
    reader = _reader_of(settings, answerer)
    if reader is None or _restates(reading, prev, eng):
        return None
    near = _in_the_report_quoted(reading, prev, settings, filters, eng, answerer, k, t0)
    if near is None:
        return None
    question = followup_question(reading)
    return near if _best_p(reader, question, near) > _best_p(reader, question, prev) else None


def _another_fact_of_the_quote(reading: Reading, ans: Answer, settings: Settings, eng: Engine,
                               answerer: Answerer | None) -> Answer | None:
    """A new follow-up that the passage just quoted answers with one of its sentences
    ("when was the council set up?" after a passage on its green belt that also says when
    it was created): when the reader is sure of the sentence that best answers the new
    question, that sentence is quoted as the answer. If it is the sentence that best answered
    the question before, the reader must be surer (``requote_sure``): "where are they mostly
    from?" after a sentence giving both the share of ethnic minority groups and their
    heritage asks another fact of it; "who leads the council?" after a sentence on when it
    was set up is rather a question the reports do not answer."""
    reader = _reader_of(settings, answerer)
    sentences = _quoted_sentences(ans, eng)
    if reader is None or reading.previous is None or not sentences:
        return None
    texts = [pair_text(c.council, c.section, c.quote) for c in sentences]
    new = reader.score(followup_question(reading), texts)
    old = reader.score(topic_of(reading.previous), texts)
    best = max(range(len(texts)), key=new.__getitem__)
    same = best == max(range(len(texts)), key=old.__getitem__)
    if new[best] < (W.requote_sure if same else settings.reader_threshold):
        return None
    return replace(quoting(reading, sentences[best]), timings_ms=ans.timings_ms)


def _quoted_sentences(ans: Answer, eng: Engine) -> list[Citation]:
    """Each sentence of an answer's quotes, cited on its own."""
    return [cite_span(1, c.report_id, eng, s, e, council=c.council)
            for c in ans.citations if not c.see_also
            for s, e in quotable_spans(eng.retriever.report_text(c.report_id), c.start, c.end)]


def _reader_of(settings: Settings, answerer: Answerer | None) -> SentenceReader | None:
    """The sentence reader the answerer ranks with, if it has one (not the LLM answerer)."""
    return getattr(answerer or _answerer_for(settings), "reader", None)


def _best_p(reader: SentenceReader, question: str, quoted: Answer | Turn) -> float:
    """The reader's probability that the best of these quotes answers the question."""
    texts = [pair_text(c.council, c.section, c.quote) for c in quoted.citations if not c.see_also]
    return max(reader.score(question, texts), default=0.0) if texts else 0.0


def _restates(reading: Reading, prev: Turn, eng: Engine) -> bool:
    """Does the follow-up ask again what the question before asked ("what is their
    population?" after "what is the population of Wirral?")? Then the passage quoted before
    is its answer, and the next best passage of that report is not."""
    v = eng.sentences().embed([prev.read_as, followup_question(reading)])
    return float(v[0] @ v[1]) >= W.restated_similarity


def _states_the_figure(reading: Reading, ans: Answer, eng: Engine) -> bool:
    """Does the passage quoted again state the figure the new question asks for ("how long
    are they waiting?" after "are families waiting?")? Then it answers this one too."""
    u = _understood(followup_question(reading), eng)
    return needs_figure(u) and any(states_asked_figure(u, c.quote) for c in ans.citations
                                   if not c.see_also)


def _settled_by_the_quote(reading: Reading, ans: Answer, eng: Engine) -> Answer | None:
    """A yes-or-no follow-up whose best evidence is the passage just quoted ("do their social
    workers actually find it useful?" after "Supervision is regular ... Social workers told
    inspectors that supervision is helpful ..."): that passage is what settles it, so it is
    quoted again. A question asking for something new ("who leads the council?") is not
    answered by the repeat (`_nothing_new`). Read conversations: every yes-or-no follow-up
    answered by a repeat either had its answer in the repeat (fresh 2: Cumberland's
    supervision, Ealing's budget) or was answered by no passage at all."""
    return ans if _understood(followup_question(reading), eng).yes_no else None


def _nothing_new(ans: Answer) -> Answer:
    """An answer to a new question that only re-quotes what the last answer quoted: the
    reports say nothing more on it, so say so, with that passage as see-also."""
    return replace(abstained(ans.question, "The indexed reports don't say more on this than the "
                             "passage quoted before.", _as_see_also(ans.citations), ans.hits),
                   timings_ms=ans.timings_ms)


def _as_see_also(cites: Sequence[Citation]) -> tuple[Citation, ...]:
    """The passages quoted (not those only shown as see-also), numbered again as see-also:
    what a reply that does not answer offers instead."""
    return tuple(replace(c, n=i + 1, see_also=True)
                 for i, c in enumerate(c for c in cites if not c.see_also))


def _why(reading: Reading, prev: Turn, settings: Settings, eng: Engine,
         answerer: Answerer | None, k: int | None,
         on_delta: Callable[[str], None] | None, t0: float) -> Answer:
    """"Why?" after an answer: the reason, searched for in the reports the answer cited,
    about the question before, never the sentences already quoted. After a grade, asked
    nothing more than why, the reason is the report's own summary of that judgement."""
    if asks_only_why(reading):
        found = findings_behind(reading.question, prev.citations, eng)
        if found is not None:
            return _timed(found, t0, t0)
    query = reason_query(reading)
    after = (reason_in_quote(reading, eng) or reason_after_quote(reading, eng)
             or cause_in_quote(reading, eng))
    if after is not None:
        return _timed(after, t0, t0)
    reports = _cited_reports(prev)
    u = structured.understand(query or reading.read_as, eng.derived().councils)
    u = replace(u, question=reading.question, content=query or u.content, asks_reason=True,
                intent="search", reason_for=lean_of(prev),
                avoid=tuple(c.span for c in prev.citations)
                + _table_rows(eng, reports))
    filters = replace(_merge_filters(Filters(), u, eng), report_ids=reports)
    return _search_and_compose(u, filters, settings, eng, answerer, k or W.why_hits, on_delta, t0)


def _table_rows(eng: Engine, reports: tuple[str, ...]) -> tuple[tuple[str, int, int], ...]:
    """The score, rating and judgement lines of these reports: a grade restated is not the
    reason for it."""
    d = eng.derived()
    rows: list[ScoreRow | RatingRow | JudgementRow] = [*d.scores, *d.ratings, *d.judgements]
    return tuple((r.report_id, r.start, r.end) for r in rows if r.report_id in reports)


def _with_topic(reading: Reading, settings: Settings, filters: Filters | None, eng: Engine,
                answerer: Answerer | None, k: int | None,
                on_delta: Callable[[str], None] | None, t0: float) -> Answer:
    """A message that points back ("how many of them ...?"): read as its own question about
    the same organisation, searched with the words of the question it points back to."""
    own = followup_question(reading)
    u = _understood(own, eng)
    if not u.statements and asks("asks_score", own) and reading.previous is not None:
        # "what score did it get?" after a question about Staffordshire's safeguarding: the
        # score of the quality statement that question was about.
        before = _understood(topic_of(reading.previous), eng).statements
        if before:
            own = f"{own.rstrip(' ?')} for {' and '.join(before)}?"
            u = _understood(own, eng)
    merged = _merge_filters(filters or Filters(), u, eng)
    routed = structured.route(u, merged, eng)
    if routed is not None:
        return _timed(check_figures(routed), t0, time.perf_counter())
    u = replace(u, content=topic_query(reading) or u.content,
                reader_question=topic_question(reading))
    return _search_and_compose(u, merged, settings, eng, answerer, k, on_delta, t0)


def _search_and_compose(u: Understanding, filters: Filters, settings: Settings, eng: Engine,
                        answerer: Answerer | None, k: int | None,
                        on_delta: Callable[[str], None] | None, t0: float) -> Answer:
    hits = eng.retriever.retrieve(u.content, filters, k or settings.k,
                                  boost_statements=u.statements)
    t_ret = time.perf_counter()
    if not hits:
        return _timed(abstained(u.question, NOT_IN_REPORTS + " Nothing in the index matches this "
                               "question" + (" with the filters given." if not filters.empty()
                                             else ".")), t0, t_ret)
    chosen = answerer or _answerer_for(settings)
    stream = getattr(chosen, "stream", None)
    if on_delta is not None and stream is not None:
        # Generative answerers stream a draft; what is returned is the verified answer.
        gen = stream(u, hits, eng)
        while True:
            try:
                on_delta(next(gen))
            except StopIteration as stop:
                ans = stop.value
                break
    else:
        ans = chosen.compose(u, hits, eng)
    ans = check_figures(ans)
    if ans.outcome != "answer" and k is not None and k < settings.k:
        # "The reports don't say" after reading fewer passages than usual may only mean the
        # passage that says it was not read.
        ans = replace(ans, notes=(*ans.notes, f"Only {k} passage{'s' if k > 1 else ''} "
                                  f"{'were' if k > 1 else 'was'} read (k={k}; the default is "
                                  f"{settings.k}): a larger k may find the answer."))
    return _timed(ans, t0, t_ret)


def check_figures(ans: Answer) -> Answer:
    """Number check for every answer path: each figure in a sentence must appear, with the
    same value, in a quote that sentence cites. Unsupported sentences are dropped and the
    answer says so; if nothing is left the answer abstains."""
    # The LLM path runs the same check sentence by sentence (rag/verify.py); a page answer's
    # figures are page numbers from the page map, not claims about the quote.
    if ans.abstained or not ans.citations or ans.answerer in ("llm", "page"):
        return ans
    quotes = {c.n: c.quote for c in ans.citations}
    # A table answer says which years it was asked for ("inspected before 2023"): the
    # question's own years, not a claim about a report.
    asked = " ".join(years_in(ans.question)) if ans.answerer == "table" else ""
    kept, dropped = [], 0
    sentences = answer_sentences(ans.text)
    for i, sent in enumerate(sentences):
        # A sentence without a marker is the start of a quote whose marker comes at its end:
        # it cites what the next marked sentence cites.
        marked = next((s for s in sentences[i:] if re.search(r"\[\d+\]", s)), "")
        cited = [int(n) for n in re.findall(r"\[(\d+)\]", marked)]
        evidence = "\n".join([asked, *(quotes.get(n, "") for n in cited)])
        body = re.sub(r"\s*\[\d+\]", "", sent)
        if verify_figures(body, evidence):
            dropped += 1
            continue
        kept.append(sent)
    if not dropped:
        return ans
    note = f"{dropped} sentence(s) removed: a figure in them is not in the passage they cite."
    if not kept:
        return replace(ans, text=NOT_IN_REPORTS + " " + note, abstained=True, notes=(*ans.notes, note))
    return replace(ans, text=" ".join(kept), notes=(*ans.notes, note))


def _answerer_for(settings: Settings) -> Answerer:
    if settings.answerer == "llm":
        return LLMAnswerer(settings)
    return extractive_for(settings)


def _validate(question: str, *, length: bool = True, words: bool = True,
              limit: int = MAX_QUESTION_CHARS) -> str:
    """The question with its spacing normalised, or QuestionError saying what is wrong with
    it: empty, longer than ``limit`` (with ``length``), no English words to search for
    (``words``), or text that is not Unicode (a lone surrogate half, which no reply could
    carry)."""
    q = " ".join((question or "").split())
    if surrogate_at(q) is None:
        q = " ".join(as_typed(q).split())
    if not q:
        raise QuestionError("the question is empty; type a question about the reports")
    if length and len(q) > limit:
        if limit != MAX_QUESTION_CHARS:
            raise QuestionError(f"the conversation's question before is too long to follow on "
                                f"from ({len(q):,} characters read); start a new conversation")
        raise QuestionError(f"the question is {len(q):,} characters; keep it under "
                            f"{MAX_QUESTION_CHARS:,} (ask one thing at a time)")
    bad = surrogate_at(q)
    if bad is not None:
        raise QuestionError(f"the question has an invalid character at position {bad + 1} "
                            f"(half of a UTF-16 pair, U+{ord(q[bad]):04X}); type or paste "
                            "it again")
    if words and not re.search(r"[A-Za-z]{2,}", q):
        raise QuestionError("the question has no English words to search for; the reports are "
                            "in English, so please ask in English")
    return q


def _merge_filters(f: Filters, u: Understanding, eng: Engine) -> Filters:
    d = eng.derived()
    councils = tuple(resolve_council(c, d.councils) for c in f.councils) or u.councils
    return Filters(councils=councils, statements=f.statements, page_kinds=f.page_kinds,
                   report_ids=f.report_ids, exclude_report_ids=_version_exclusions(u, d))


def _version_exclusions(u: Understanding, d: Any) -> tuple[str, ...]:
    """Older assessments are hidden unless the question names their year; then the newer
    version of that page is hidden instead. Duplicate copies are always hidden."""
    years = set(u.years)
    hidden = set(d.hidden())
    for rid, v in d.versions.items():
        if v.status == "superseded" and v.published and v.published[:4] in years:
            hidden.discard(rid)
            if v.of:
                hidden.add(v.of)
    return tuple(sorted(hidden))


def _councils_respelt(message: str, eng: Engine) -> str:
    """A chat message with a council typed one slip away read as that council ("birmingam",
    "plymoth"), as `_understood` reads it: else it names no organisation, and the follow-up
    reading carries the last one over ("birmingam safeguarding score in Westminster")."""
    d = eng.derived()
    respelt = _councils_read(message, d)
    # Only for a name it did not find as typed: "redbridges front door" names Redbridge
    # already, and is read as typed.
    found = len(org_mentions(respelt, d.councils)) > len(org_mentions(message, d.councils))
    return respelt if found else message


def _understood(question: str, eng: Engine) -> Understanding:
    """The question read with its misspelt words read as the index's own ("assesment"; a
    council typed one slip away, "sandwel", "stafordshire", is that council, so its filter and
    its tables apply; chat shorthand, "r", "ppl", read as the word it stands for). The
    question it carries is read so too: answer() gives the answer back the question as typed."""
    question = expand_shorthand(question)
    d = eng.derived()
    # Council names first, only where no report word is nearer: "comunity" is "community",
    # not the council word "county". Then every word, so the question-type rows read the
    # words the reports use ("... when was it publishd" asks the publication date), and the
    # content searched for, cut from that question, is respelt with it.
    typed = respell(_councils_read(question, d), d.words, counts=d.word_counts)
    return replace(structured.understand(typed, d.councils), question=question)


def _councils_read(text: str, d: Any) -> str:
    """``text`` with each word one slip away from a council's name read as it, where no
    report word is nearer ("sandwel" -> "sandwell"; "comunity" stays for "community")."""
    names, near = _council_words(tuple(d.councils), d.words)
    return respell(text, near, only=names)


@lru_cache(maxsize=4)
def _council_words(councils: tuple[Council, ...],
                   words: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    """The words of the indexed councils' names and aliases, as a misspelling may near them,
    and those with the index's words (which a misspelling may be nearer)."""
    names = frozenset(w for c in councils for n in (c.name, *c.aliases)
                      for w in re.findall(r"[a-z]+", n.lower()))
    return names, names | words


def _timed(a: Answer, t0: float, t_ret: float) -> Answer:
    now = time.perf_counter()
    return replace(a, timings_ms={"retrieve": (t_ret - t0) * 1000,
                                  "answer": (now - t_ret) * 1000, "total": (now - t0) * 1000})


def understand_and_filter(question: str, engine: Engine) -> tuple[Understanding, Filters]:
    """The question read, and the filters answer() would search it with (named councils,
    older versions hidden)."""
    q = _validate(question)
    u = _understood(q, engine)
    return u, _merge_filters(Filters(), u, engine)


def candidates_for(question: str, engine: Engine, n: int = 20) -> list[Candidate]:
    """The answerer's top ``n`` distinct candidate sentences for a question, retrieved with the
    same filters answer() would use (for the reader's training and the llama-index seam)."""
    u, f = understand_and_filter(question, engine)
    hits = engine.retriever.retrieve(u.content, f, engine.settings.k,
                                     boost_statements=u.statements)
    return distinct_spans(rank_sentences(u, hits, engine), n)
