"""Stage 6 in a conversation: a chat message -> Answer, read in the light of the turns before
it. Public: `answer_in_chat`.

`rag/followup.py` reads the message ("and Staffordshire?" is the question before, about
Staffordshire; "why?" asks the reason for what was just quoted); this module answers the
reading: a page or "tell me more" from the passages quoted before, a follow-up about the quote
beside it (what follows from it, when, what is being done, how it compares), "why?" from the
reports the last answer quoted, and anything else through `rag.answer`, as a question of its own.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from rag import structured
from rag.answer import (
    MAX_QUESTION_CHARS,
    Answerer,
    answer_validated,
    answerer_for,
    check_figures,
    councils_respelt,
    merge_filters,
    search_and_compose,
    timed,
    understood,
    validate,
)
from rag.engine import Engine, get_engine
from rag.evidence import (
    ACTION,
    COMPARISON,
    NOT_IN_REPORTS,
    W,
    abstained,
    cite_span,
    new_figures,
    states_asked_figure,
    with_marker,
)
from rag.extractive import MAY_ANSWER, needs_figure
from rag.followup import (
    Reading,
    asks_action,
    asks_comparison,
    asks_consequence,
    asks_only_why,
    asks_when,
    followup_question,
    lean_of,
    read_in_context,
    reason_query,
    topic_of,
    topic_query,
    topic_question,
)
from rag.judgement_answers import findings_behind
from rag.query import Understanding, asks
from rag.quote_answers import (
    action_after_quote,
    as_indexed,
    cause_in_quote,
    comparison_in_quote,
    consequence_of_quote,
    date_in_quote,
    more_answer,
    page_answer,
    quoting,
    reason_after_quote,
    reason_in_quote,
)
from rag.reader import SentenceReader, pair_text
from rag.retrieve import Filters, tokenize
from rag.tables import JudgementRow, RatingRow, ScoreRow
from reportqa.records import Answer, Citation, Turn, overlap
from reportqa.settings import Settings
from reportqa.text import clean_quote, quotable_spans

__all__ = ["READING_CHARS", "answer_in_chat"]

# A chat message's reading: the message and the question before it ("why? (following: ...)").
READING_CHARS = 3 * MAX_QUESTION_CHARS


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
    q = validate(question, words=False)
    eng = engine or get_engine(settings)
    eng.require_ready()
    # The last turn's quotes as the index has them: an API client sends offsets only, and a
    # follow-up must read the turn before it alike, whoever sent it. (An older turn is only
    # ever quoted again through `_last_quoted`, which re-reads it too; rag/quote_answers.py
    # trusts the turn it is given.)
    if history:
        history = [*history[:-1], as_indexed(history[-1], eng)]
    reading = Reading(q, q) if literal else read_in_context(councils_respelt(q, eng), history,
                                                            eng.derived().councils)
    # Words to search for: in the message, unless it only swaps a slot of the question
    # before ("2025?"); the reading may be longer than a message, not without end.
    validate(reading.read_as if reading.kind == "other_slot" else q, length=False)
    reading = replace(reading, read_as=validate(reading.read_as, words=False,
                                                limit=READING_CHARS))
    if not history and reading.kind in _NOTHING_BEFORE:
        # "why?" as the first message: there is no answer to ask it of.
        return timed(abstained(q, _NOTHING_BEFORE[reading.kind]), t0, t0)
    if reading.kind in ("page", "more"):
        last = _last_quoted(reading, history, eng)
        found = page_answer(last, eng) if reading.kind == "page" else more_answer(
            last, eng, [c.span for t in history for c in t.citations])
        ans = found or abstained(q, NOT_IN_REPORTS + (
            " The report quoted says nothing more after that passage."
            if reading.kind == "more" and last.previous and last.previous.citations
            else " There is no earlier passage to continue from: ask the question in full."))
        return timed(replace(ans, question=q, read_as=reading.read_as), t0, t0)
    found = _from_the_quote(reading, settings, filters, eng, answerer, k, t0)
    if found is not None:
        return timed(replace(found, question=q, read_as=reading.read_as), t0, t0)
    if reading.kind == "why" and reading.previous is not None:
        ans = _why(reading, reading.previous, settings, eng, answerer, k, on_delta, t0)
    elif reading.kind == "carry_topic":
        ans = _with_topic(reading, settings, filters, eng, answerer, k, on_delta, t0)
    else:
        ans = answer_validated(reading.read_as, settings, filters, engine=eng,
                               answerer=answerer, k=k, on_delta=on_delta)
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
    if prev is None:
        return None
    near = _asked_of_quoted_reports(
        topic_of(prev), prev, lambda u: replace(u, avoid=tuple(c.span for c in prev.citations)),
        None, settings, eng, answerer, k, t0)
    if near is None:
        return None
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
    near = _asked_of_quoted_reports(
        followup_question(reading), prev,
        lambda u: replace(u, content=topic_query(reading) if reading.kind == "carry_topic"
                          else u.content, avoid=tuple(c.span for c in prev.citations)),
        filters, settings, eng, answerer, k, t0)
    return near if near is not None and near.outcome == "answer" else None


def _action_in_the_report(reading: Reading, settings: Settings, filters: Filters | None,
                          eng: Engine, answerer: Answerer | None, k: int | None,
                          t0: float) -> Answer | None:
    """"What are they doing about it?" when the quoted problem's own paragraph says nothing
    of it: the reports quoted before, searched for the problem's topic among sentences that
    say what is being done (`Understanding.wants_action`); searched as any other question, it
    mostly quoted the problem again. None when none of them does."""
    if reading.previous is None:
        return None
    near = _asked_of_quoted_reports(
        followup_question(reading), reading.previous,
        lambda u: replace(u, content=topic_query(reading), reader_question=topic_question(reading),
                          wants_action=True),
        filters, settings, eng, answerer, k, t0)
    if near is None or not near.abstained:
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


def _asked_of_quoted_reports(question: str, prev: Turn,
                             shape: Callable[[Understanding], Understanding],
                             filters: Filters | None, settings: Settings, eng: Engine,
                             answerer: Answerer | None, k: int | None,
                             t0: float) -> Answer | None:
    """``question`` searched in the reports ``prev`` quoted and no others, read as usual and
    then reshaped by ``shape`` (the quotes to avoid, the topic to search for): a follow-up about
    what was just quoted is asked of the report it came from. None when ``prev`` quoted nothing
    or the question is not one to search for (a table question)."""
    reports = _cited_reports(prev)
    if not reports:
        return None
    u = understood(question, eng)
    if u.intent != "search":
        return None
    u = shape(u)
    merged = replace(merge_filters(filters or Filters(), u, eng), report_ids=reports)
    return search_and_compose(u, merged, settings, eng, answerer, k, None, t0)


def _cited_reports(turn: Turn) -> tuple[str, ...]:
    """The reports a turn's answer quoted, in the order it quoted them."""
    return tuple(dict.fromkeys(c.report_id for c in turn.citations))


def _last_quoted(reading: Reading, history: Sequence[Turn], eng: Engine) -> Reading:
    """"Tell me more" or "which page is that on?" after an answer that quoted nothing: go on
    from (or give the page of) the last passage a turn quoted, re-read from the index as the
    last turn was. Not a page question after an answer that showed its closest passages: it
    asks their pages (`page_answer`)."""
    if reading.previous is None or reading.previous.citations or (
            reading.kind == "page" and reading.previous.see_also):
        return reading
    quoted = next((t for t in reversed(history) if t.citations), None)
    return reading if quoted is None else replace(reading, previous=as_indexed(quoted, eng))


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
    return getattr(answerer or answerer_for(settings), "reader", None)


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
    u = understood(followup_question(reading), eng)
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
    return ans if understood(followup_question(reading), eng).yes_no else None


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
            return timed(found, t0, t0)
    query = reason_query(reading)
    after = (reason_in_quote(reading, eng) or reason_after_quote(reading, eng)
             or cause_in_quote(reading, eng))
    if after is not None:
        return timed(after, t0, t0)
    reports = _cited_reports(prev)
    u = structured.understand(query or reading.read_as, eng.derived().councils)
    u = replace(u, question=reading.question, content=query or u.content, asks_reason=True,
                intent="search", reason_for=lean_of(prev),
                avoid=tuple(c.span for c in prev.citations)
                + _table_rows(eng, reports))
    filters = replace(merge_filters(Filters(), u, eng), report_ids=reports)
    return search_and_compose(u, filters, settings, eng, answerer, k or W.why_hits, on_delta, t0)


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
    u = understood(own, eng)
    if not u.statements and asks("asks_score", own) and reading.previous is not None:
        # "what score did it get?" after a question about Staffordshire's safeguarding: the
        # score of the quality statement that question was about.
        before = understood(topic_of(reading.previous), eng).statements
        if before:
            own = f"{own.rstrip(' ?')} for {' and '.join(before)}?"
            u = understood(own, eng)
    merged = merge_filters(filters or Filters(), u, eng)
    routed = structured.route(u, merged, eng)
    if routed is not None:
        return timed(check_figures(routed), t0, time.perf_counter())
    u = replace(u, content=topic_query(reading) or u.content,
                reader_question=topic_question(reading))
    return search_and_compose(u, merged, settings, eng, answerer, k, on_delta, t0)


