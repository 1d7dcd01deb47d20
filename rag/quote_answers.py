"""Follow-ups answered from the passages the last answer quoted, without a new search.
Public: `page_answer`, `more_answer`, `as_indexed` and the `*_quote` answers.

rag/followup.py reads a message in the light of the turn before it; when it asks about what
was just quoted, the answer is often beside the quote: its page ("which page is that on?"), the
rest of its paragraph ("tell me more"), the reason the report gives next to it ("why?"), what
is being done about it, what follows from it, how it compares, when it happened. Each function
here looks there, in the report's stored text, and returns None when the report does not say
it there (rag/chat.py then searches).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

from rag.engine import Engine
from rag.evidence import (
    ACTION,
    COMPARISON,
    PURPOSE,
    cite_span,
    may_explain_the_one_before,
    own_line,
    sentence_before,
    with_marker,
)
from rag.followup import Reading, lean_of
from rag.lexicon import pattern
from reportqa.records import Answer, Citation, Turn, overlap
from reportqa.text import clean_quote, months_in, quotable_spans, years_in

__all__ = ["as_indexed", "around_in_paragraph", "action_after_quote", "cause_in_quote",
           "comparison_in_quote", "consequence_of_quote", "date_in_quote", "more_answer",
           "page_answer", "quoting", "reason_after_quote", "reason_in_quote"]

MORE_WORDS = 75  # as long as an extractive answer
PAGE_QUOTE_WORDS = 12  # enough of the quote to recognise it


def page_answer(reading: Reading, eng: Engine) -> Answer | None:
    """"Which page is that on?": the page of each passage the last answer cited; after an
    answer that quoted none, of the closest passages it showed instead."""
    cites = _previous_citations(reading)
    shown = () if cites or reading.previous is None else reading.previous.see_also
    if shown:
        cites = tuple(replace(c, see_also=False) for c in shown)
    if not cites:
        return None
    parts = ["The closest passages shown:"] if shown else []
    for c in cites:
        words = clean_quote(c.quote).split()
        quote = " ".join(words[:PAGE_QUOTE_WORDS]) + (" …" if len(words) > PAGE_QUOTE_WORDS else "")
        name = Path(c.source).name
        if c.page is None:
            # A web page has no page numbers, but its headings say where on it the quote is.
            under = (f"under the heading \u201c{c.section}\u201d of "
                     if _heading_above(c, eng) else "from ")
            parts.append(f"\u201c{quote}\u201d is {under}{name}, a web page with no page "
                         f"numbers [{c.n}].")
            continue
        parts.append(f"\u201c{quote}\u201d is on page {c.pages} of {name} [{c.n}].")
    return Answer(reading.question, " ".join(parts), False, cites, answerer="page",
                  read_as=reading.read_as)


def _heading_above(c: Citation, eng: Engine) -> bool:
    """Is the citation's section a heading printed above the quote? (Not the council's name,
    nor the "Introduction" ingest gives the text before a page's first heading.)"""
    if not c.section or c.section == c.council:
        return False
    before = eng.retriever.report_text(c.report_id)[:c.start]
    return re.search(rf"(?m)^\s*{re.escape(c.section)}\s*:?\s*$", before) is not None


def more_answer(reading: Reading, eng: Engine,
                quoted_before: Sequence[tuple[str, int, int]] = ()) -> Answer | None:
    """"Tell me more": first what the paragraph of the best passage quoted ([1]) says besides
    it, as much as an answer holds (the rest of the paragraph, then its opening: "For example,
    only four carers were recruited" is an example of the sentence before it; a paragraph
    keeps to one subject, the next often starts another); else the sentences the last answer
    skipped between two passages it quoted from one stretch of a report, then the report's
    next sentences after the last passage cited. Nothing quoted earlier in the conversation
    (``quoted_before``) is quoted again, so "more" after "more" goes on through the report."""
    cites = _previous_citations(reading)
    if not cites:
        return None
    last = _last_passage(cites)
    text = eng.retriever.report_text(last.report_id)
    quoted = [c.span for c in cites] + list(quoted_before)

    def unquoted(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return [sp for sp in spans if not any(overlap((last.report_id, *sp), q) for q in quoted)]

    spans = _more_spans(text, unquoted(around_in_paragraph(text, cites[0])), MORE_WORDS)
    if not spans:
        far = max([e for rid, _, e in quoted if rid == last.report_id], default=last.end)
        after = quotable_spans(text, last.end, min(len(text), far + 2000))
        spans = _more_spans(text, unquoted(_skipped(cites, text) + after), MORE_WORDS // 2)
    if not spans:
        return None
    new = tuple(cite_span(i + 1, last.report_id, eng, s, e, council=last.council)
                for i, (s, e) in enumerate(sorted(spans)))
    body = " ".join(with_marker(clean_quote(c.quote), c.n) for c in new)
    return Answer(reading.question, body, False, new, answerer="extractive",
                  read_as=reading.read_as)


def _more_spans(text: str, spans: list[tuple[int, int]], enough: int) -> list[tuple[int, int]]:
    """The sentences "more" quotes, in the order offered, within MORE_WORDS as a reader counts
    them (each "[n]." a word), until ``enough`` words. A heading or label line ("Financial
    facts", or asked: "What needs to improve?") is not more of what the report says."""
    out: list[tuple[int, int]] = []
    words = 0
    for s, e in spans:
        n = len(text[s:e].split()) + 1
        if not _ENDS_SENTENCE.search(text[s:e]) or _question_heading(text, s, e) \
                or (out and words + n > MORE_WORDS):
            continue
        out.append((s, e))
        words += n
        if words >= enough:
            break
    return out


_ENDS_SENTENCE = re.compile(r"[.!?;][\"”’')]*\s*$")


def around_in_paragraph(text: str, cite: Citation) -> list[tuple[int, int]]:
    """The other sentences of the paragraph (line) a passage was quoted from: those after it
    in reading order, then those before it, nearest first."""
    start = text.rfind("\n", 0, cite.start) + 1
    return _rest_of_paragraph(text, cite) + quotable_spans(text, start, cite.start)[::-1]


def _question_heading(text: str, start: int, end: int) -> bool:
    """Is text[start:end] a line of its own that asks a question? Ofsted's reports head
    their sections so ("What needs to improve?"); a finding is never put as one."""
    return text[start:end].rstrip().endswith("?") and own_line(text, start, end)


def _skipped(cites: tuple[Citation, ...], text: str) -> list[tuple[int, int]]:
    """Sentences lying between two passages quoted from the report quoted first, when the
    passages are near each other (one stretch of the report), in reading order."""
    quoted = sorted((c for c in cites if c.report_id == cites[0].report_id), key=lambda c: c.start)
    return [span for a, b in pairwise(quoted) if 0 < b.start - a.end <= _NEAR_CHARS
            for span in quotable_spans(text, a.end, b.start)]


def quoting(reading: Reading, cite: Citation) -> Answer:
    """A follow-up's answer that is one quoted passage, as the extractive answerer words it."""
    return Answer(reading.question, with_marker(clean_quote(cite.quote), 1), False, (cite,),
                  answerer="extractive", read_as=reading.read_as)


def reason_after_quote(reading: Reading, eng: Engine) -> Answer | None:
    """"Why?" after a quoted sentence: the sentence right after the last passage quoted, when
    it may explain it ("This meant ...", "... due to ..."): reports state a finding and then
    why. None when the next sentence starts something else."""
    cites = _previous_citations(reading)
    if not cites:
        return None
    last = _last_passage(cites)
    purpose = _purpose_may(reading)
    text = eng.retriever.report_text(last.report_id)
    # The last passage first (where the report went on); then the others of that report in
    # the order quoted: "[1] ... on some commissioning panels. [2] ..." is explained after [1].
    for c in [last, *(c for c in cites if c.report_id == last.report_id and c != last)]:
        nxt = quotable_spans(text, c.end, min(len(text), c.end + _NEAR_CHARS))[:1]
        if nxt and not any(overlap((c.report_id, *nxt[0]), q.span) for q in cites) \
                and may_explain_the_one_before(text[nxt[0][0]:nxt[0][1]], purpose):
            return quoting(reading, cite_span(1, c.report_id, eng, *nxt[0], council=c.council))
    return None


def reason_in_quote(reading: Reading, eng: Engine) -> Answer | None:
    """"Why?" after an answer that quoted a finding with the sentence next to it, when that
    pair already gives the reason: "As such, too many pupils leave without ..." follows its
    cause; "This dramatic rise has been ... attributed to ..." explains the one before. The
    reason is quoted again rather than searched for elsewhere. A quote that opens with its
    consequence ("Consequently, most EHC plans are now completed on time") follows its cause:
    the sentence before it in its paragraph."""
    purpose = _purpose_may(reading)
    for c in _previous_citations(reading):
        text = eng.retriever.report_text(c.report_id)
        spans = quotable_spans(text, c.start, c.end)
        cause = _cause_before(text, spans[0][0]) if spans and _follows_its_cause(
            text[spans[0][0]:spans[0][1]]) else None
        if cause is not None:
            return quoting(reading, cite_span(1, c.report_id, eng, *cause, council=c.council))
        for (a, b), (s, e) in pairwise(spans):
            second = text[s:e]
            if _CONSEQUENCE.match(second):
                reason = (a, b)
            elif may_explain_the_one_before(second, purpose):
                reason = (s, e)
            else:
                continue
            return quoting(reading, cite_span(1, c.report_id, eng, *reason, council=c.council))
    return None


def _purpose_may(reading: Reading) -> bool:
    """May a purpose ("set up to tackle inequalities") answer this "why?"? It says why
    something was done, not why a shortfall is so: not after a quoted shortfall ("... lack
    contributions ... in order to ensure needs are identified")."""
    return reading.previous is None or lean_of(reading.previous) != "shortfall"


def _follows_its_cause(sentence: str) -> bool:
    """Does the sentence open with a consequence of what came before ("Consequently, ..."),
    not naming its cause itself ("As a result of the huge delays, ...")?"""
    return bool(_CONSEQUENCE.match(sentence.lstrip("◼• "))) and not _CAUSE_WITHIN.search(sentence)


def _cause_before(text: str, at: int) -> tuple[int, int] | None:
    """The sentence that ends right before ``at`` in the same paragraph, with the one before
    it when it points back ("The partnership has increased the size of the SEND team. This
    has improved the timeliness ..."); None when a paragraph starts at ``at``."""
    first = sentence_before(text, at, line_break=False)
    if first is None:
        return None
    earlier = sentence_before(text, first[0], line_break=False) \
        if _POINTS_BACK.match(text[first[0]:first[1]]) else None
    return (earlier[0], first[1]) if earlier else first


def cause_in_quote(reading: Reading, eng: Engine) -> Answer | None:
    """"Why?" after a quoted sentence that gives its finding's cause itself ("... living in
    children's homes because of a lack of suitable foster placements", "... has deteriorated
    since the police ceased to be co-located") or its purpose ("... set up to tackle
    inequalities"): that sentence is quoted again, rather than a
    sentence not yet quoted that the search would find (some other finding)."""
    purpose = _purpose_may(reading)
    for c in _previous_citations(reading):
        text = eng.retriever.report_text(c.report_id)
        for s, e in quotable_spans(text, c.start, c.end):
            if _CAUSE_WITHIN.search(text, s, e) or (purpose and PURPOSE.search(text, s, e)):
                return quoting(reading, cite_span(1, c.report_id, eng, s, e, council=c.council))
    return None


_CONSEQUENCE = pattern("sentences", "consequence")


_POINTS_BACK = pattern("sentences", "anaphor")


_CAUSE_WITHIN = pattern("followups", "cause_within")


_NEAR_CHARS = 600  # longer than nearly every report sentence


_ABOUT_THESE = pattern("cues", "about_these")


_EXAMPLES_FOLLOW = pattern("sentences", "examples_follow")


ACTION_SENTENCES = 3  # how far past a quoted problem its response is looked for


def action_after_quote(reading: Reading, eng: Engine) -> Answer | None:
    """"What are they doing about it?" after a quoted problem: the first of the next few
    sentences of the same paragraph that says what is being done ("Leaders have started to
    work with ..."), or further on one that names the problems it answers ("The ICB is aware
    of these issues and has started a full review"), with its example if the next sentence
    gives one. None when the paragraph says nothing of the kind (the question is then
    searched as any other)."""
    cites = _previous_citations(reading)
    if not cites:
        return None
    last = _last_passage(cites)
    text = eng.retriever.report_text(last.report_id)
    spans = _rest_of_paragraph(text, last)
    for i, (s, e) in enumerate(spans):
        sentence = text[s:e]
        # Further on in the paragraph, only a response that names the problems it answers
        # ("aware of these issues and has started a full review").
        if sentence[:1].isupper() and ACTION.search(sentence) \
                and (i < ACTION_SENTENCES or _ABOUT_THESE.search(sentence)):
            more = spans[i + 1:i + 2]
            if more and _EXAMPLES_FOLLOW.match(text[more[0][0]:more[0][1]]) \
                    and len(text[s:more[0][1]].split()) <= MORE_WORDS:
                e = more[0][1]
            return quoting(reading, cite_span(1, last.report_id, eng, s, e, council=last.council))
    return None


_CONSEQUENCE_WITHIN = pattern("cues", "consequence_within")


CONSEQUENCE_SENTENCES = 2  # how far past a quoted finding what follows from it is looked for


def consequence_of_quote(reading: Reading, eng: Engine) -> Answer | None:
    """"So what does that mean for families?" after a quoted finding: the sentence of the last
    answer's quotes that states what follows from it ("This means they may not fully
    understand ...", "... meaning that these children are experiencing drift"), else the
    first of the next sentences of its paragraph that does. None when none does: the
    question is then read as any other."""
    return _in_or_after_quote(reading, eng, _states_consequence, CONSEQUENCE_SENTENCES)


def _states_consequence(sentence: str) -> bool:
    return bool(_CONSEQUENCE.match(sentence.lstrip("◼■• "))
                or _CONSEQUENCE_WITHIN.search(sentence))


def comparison_in_quote(reading: Reading, eng: Engine) -> Answer | None:
    """"Is that good?" after a quoted figure: the sentence of the last answer that sets it
    against an average or another figure, else the next sentence of its paragraph when that
    one does ("This is higher than the England average."). None when neither does: the
    question is then searched as any other."""
    return _in_or_after_quote(reading, eng, lambda sentence: bool(COMPARISON.search(sentence)), 1)


def date_in_quote(reading: Reading, eng: Engine) -> Answer | None:
    """"When was that?" after a quoted finding: the quote's sentence that names a year or a
    month, else the first of the next WHEN_SENTENCES of its paragraph that does ("In May 2024
    they appointed ..."). None when none does: the question is then searched as any other."""
    return _in_or_after_quote(reading, eng, _dated, WHEN_SENTENCES)


def _dated(sentence: str) -> bool:
    return bool(years_in(sentence) or months_in(sentence))


WHEN_SENTENCES = 2  # as for a consequence: a finding, what followed, then when


def _in_or_after_quote(reading: Reading, eng: Engine, says: Callable[[str], bool],
                       after: int) -> Answer | None:
    """The first sentence of the last answer's quotes that ``says`` what is asked, else the
    first of the ``after`` sentences that follow the last passage in its paragraph that does,
    quoted alone. None when none does."""
    cites = _previous_citations(reading)
    for c in cites:
        text = eng.retriever.report_text(c.report_id)
        for s, e in quotable_spans(text, c.start, c.end):
            if says(text[s:e]):
                return quoting(reading, cite_span(1, c.report_id, eng, s, e, council=c.council))
    if not cites:
        return None
    last = _last_passage(cites)
    text = eng.retriever.report_text(last.report_id)
    for s, e in _rest_of_paragraph(text, last)[:after]:
        if says(text[s:e]):
            return quoting(reading, cite_span(1, last.report_id, eng, s, e, council=last.council))
    return None


def _rest_of_paragraph(text: str, last: Citation) -> list[tuple[int, int]]:
    """The sentences after a quoted passage, to the end of its paragraph."""
    end = text.find("\n", last.end)
    return [sp for sp in quotable_spans(text, last.end, len(text) if end < 0 else end)
            if sp[0] >= last.end]


def _last_passage(cites: tuple[Citation, ...]) -> Citation:
    """The passage quoted last in the report quoted first: where "more" and "why" go on from."""
    return max((c for c in cites if c.report_id == cites[0].report_id), key=lambda c: c.end)


def _previous_citations(reading: Reading) -> tuple[Citation, ...]:
    """The last answer's citations. ``reading.previous`` holds them as the index has them
    (`as_indexed`): `answer_in_chat` re-reads the turn it hands on, once per message."""
    return reading.previous.citations if reading.previous else ()


def as_indexed(turn: Turn, eng: Engine) -> Turn:
    """The turn with its citations re-made from the index: a client may send back stale,
    edited or empty quotes (the API's history carries offsets only); only each citation's
    report id and offsets are trusted, and one that no longer fits its report is dropped."""
    return replace(turn, citations=_reread(turn.citations, eng),
                   see_also=_reread(turn.see_also, eng))


def _reread(cites: tuple[Citation, ...], eng: Engine) -> tuple[Citation, ...]:
    out = []
    for i, c in enumerate(cites):
        if eng.retriever.report(c.report_id) is None:
            continue
        n = len(eng.retriever.report_text(c.report_id))
        if 0 <= c.start < c.end <= n:
            out.append(cite_span(i + 1, c.report_id, eng, c.start, c.end, council=c.council,
                                 statement=c.quality_statement, score=c.score,
                                 see_also=c.see_also))
    return tuple(out)
