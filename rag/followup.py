"""Chat follow-ups: a message read in the light of the turn before it. Public: `Reading`,
`read_in_context`, `page_answer`, `more_answer`, `as_indexed`.

People type "and Staffordshire?", "what about care leavers?", "why?" or "which page is that
on?" after a question. rag/vocab/followups.toml lists the kinds of follow-up (cues) and the
questions they stand for (templates); this module matches a message against them and writes
out the question it stands for, which the app shows ("Read as: ...") and the router answers
like any other question. "page" and "more" are answered here from the last answer's
citations, without a new search.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

from ingest.profiles import profiles
from rag.engine import Engine
from rag.evidence import (
    ACTION,
    COMPARISON,
    PURPOSE,
    cite_span,
    leaning,
    may_explain_the_one_before,
    own_line,
    sentence_before,
    with_marker,
)
from rag.grades import (
    asked_grade,
    drop_families,
    listed_grades,
    named_families,
    unshorten,
    without_families,
)
from rag.lexicon import pattern, vocab, words
from rag.query import (
    Council,
    Mention,
    Understanding,
    asks,
    asks_grade,
    expand_shorthand,
    org_keys,
    org_mentions,
    same_orgs,
    statement_spans,
)
from rag.retrieve import tokenize
from rag.structured import understand
from rag.when import asked_window, season_words
from reportqa.records import Answer, Citation, Turn, overlap
from reportqa.text import MONTH_WORDS, MONTHS, clean_quote, months_in, quotable_spans

# Words a short follow-up may carry besides a cue and an organisation and still mean "the
# same question, about this organisation" ("and what about Hull then, please?").
_FILLER = words("followups", "filler")
# Questions across organisations stand alone: "which councils ...", "any council ...".
_ACROSS = pattern("followups", "across")
# Words that point back at what the last question was about: "how many of them", "did they
# fix it". "They" is as often the council, so it counts only in a message too short to
# name a topic of its own ("how long are they waiting?").
_ANAPHOR = pattern("followups", "anaphor")
_THEY = pattern("followups", "they")
_OWN_QUESTION = pattern("followups", "own_question")
TOPIC_WORDS = 2  # words of its own (not "how long") beyond which a "they" message names its topic
_PRONOUN = pattern("followups", "pronoun")
MORE_WORDS = 75  # as long as an extractive answer
PAGE_QUOTE_WORDS = 12  # enough of the quote to recognise it


@dataclass(frozen=True)
class Reading:
    """How a chat message was read: ``read_as`` is the question answered; ``kind`` says why
    (alone | other_org | other_slot | other_topic | carry | carry_topic | why | more | page)."""

    question: str
    read_as: str
    kind: str = "alone"
    previous: Turn | None = None

    @property
    def changed(self) -> bool:
        return self.read_as != self.question


@lru_cache(maxsize=1)
def _cues() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((r["kind"], re.compile(r["pattern"], re.I)) for r in vocab("followups")["cue"])


def cue_kind(message: str) -> tuple[str | None, str]:
    """The follow-up cue a message opens with (page | more | why | other) and the rest of it."""
    for kind, rx in _cues():
        m = rx.search(message)
        if m:
            rest = message[m.end():] if kind == "other" and m.start() == 0 else message
            return kind, rest.strip(" ,?.!")
    return None, message


_CUE_ONLY = words("followups", "cue_only")


def cue_only(message: str) -> str | None:
    """The follow-up kind (why | more | page) of a message that is nothing but the cue: no
    topic of its own to search for ("how come", "which page is that on?")."""
    kind, _ = cue_kind(message)
    if kind not in ("why", "more", "page"):
        return None
    topic = set(tokenize(message)) - _NOT_A_TOPIC - set(tokenize(" ".join(_CUE_ONLY)))
    return None if topic else kind


def read_in_context(question: str, history: Sequence[Turn],
                    councils: list[Council]) -> Reading:
    """``question`` as the conversation so far means it. Deterministic; no index access."""
    q = expand_shorthand(" ".join(question.split()))
    if not history:
        # "why?" or "tell me more" with nothing before it: a follow-up to no answer.
        return Reading(q, q, cue_only(q) or "alone")
    last = history[-1]
    # "and Wirral?" after "tell me more" swaps the organisation of what "more" was about.
    prev = Turn(topic_of(last), topic_of(last), last.citations)
    kind, rest = cue_kind(q)
    named = org_mentions(q, councils)
    prev_named = org_mentions(prev.read_as, councils)
    # "why did staffs get that?" names the organisation the answer before was about, as it
    # was named there, so the cue's words are read against that answer's words: still "why?".
    if kind in ("page", "more", "why") and (not named or same_orgs(named, prev_named, councils)):
        for m in reversed(named):
            q = _renamed(q, m, next(p for p in prev_named
                                    if org_keys(p, councils) & org_keys(m, councils)))
        return Reading(q, _following(q, prev), kind, last)
    if named:
        if _only_names(q, named):
            if asks("how_did_it_do", q) and not (asks_grade(prev.read_as)
                                                 or asks("asks_score", prev.read_as)):
                # "how did Doncaster do?" asks Doncaster's grade, whatever came before, unless
                # a grade was asked before ("what did Bury score for safeguarding?"): then
                # it may ask the same of Doncaster.
                return Reading(q, q)
            return Reading(q, _swap_org(prev, prev_named, named[0], councils), "other_org", prev)
        return _elsewhere(q, kind, rest, prev, prev_named, named[0])
    if kind in ("other", None) and rest and not named and not prev_named:
        # "and 2025?", or just "2025?": nothing but a new value for a slot of the question
        # before (swap_slot reads nothing else).
        swapped = swap_slot(rest, prev.read_as)
        if swapped:
            return Reading(q, swapped, "other_slot", prev)
    # "which area did they do worst in" is about the organisation, not across organisations.
    # "how does that compare nationally?" sets the figure just given against others: not
    # a question across organisations.
    if not prev_named or (_ACROSS.search(q) and not _PRONOUN.search(q)
                          and not _JUDGES_FIGURE.search(q)):
        return Reading(q, q)
    org = _display(prev_named[0])
    if _ASKS_FINDINGS.match(q):
        # "what did they find?": "they" are the inspectors of the organisation just asked
        # about, and what they found is the report's summary (the summary route).
        return Reading(q, _TOPICS["findings"].format(org=org, topic="", opener=""), "carry", prev)
    statement = _statement_quoted(q, last)
    if statement:
        return Reading(q, _TOPICS["score"].format(org=org, topic=statement, opener=""),
                       "other_topic", prev)
    body = q
    if kind == "other" and rest:
        if not _OWN_QUESTION.match(rest) and _ANAPHOR.search(rest):
            # "what about the ones in custody?" after a question about care leavers: a part
            # of the topic before, not a new topic to put in its form ("What grade did
            # Doncaster get for the ones in custody?"), so it is searched with that topic.
            own = _topic_question(prev, rest, org, councils, part=True)
            return Reading(q, f"{own} (following: {prev.read_as})", "carry_topic", prev)
        if not _OWN_QUESTION.match(rest):
            return Reading(q, _topic_question(prev, rest, org, councils), "other_topic", prev)
        # "and did their carers find the advice helpful?": a question of its own after the
        # "and", read as one (not slotted into the question before as its topic).
        body = rest
    own_words = len(tokenize(_OPENER.sub(" ", body)))
    if _ANAPHOR.search(body) or (_THEY.search(body) and own_words <= TOPIC_WORDS):
        # "how long are they waiting?": "they" are whoever the question before was about.
        return Reading(q, f"{_carry(body, org)} (following: {prev.read_as})", "carry_topic", prev)
    return Reading(q, _carry(body, org), "carry", prev)


_OF_THE_QUOTE = pattern("followups", "score_of_quote")
_ASKS_FINDINGS = pattern("followups", "asks_findings")


def _statement_quoted(q: str, last: Turn) -> str | None:
    """The quality statement whose score "what score did they get for that?" asks: the one
    the page last quoted is about (CQC pages are one statement each), when the message names
    none itself. None for any other message."""
    if not (_OF_THE_QUOTE.search(q) and asks("asks_score", q)) or statement_spans(q):
        return None
    return next((c.quality_statement for c in last.citations if c.quality_statement), None)


def _elsewhere(q: str, kind: str | None, rest: str, prev: Turn, prev_named: list[Mention],
               new: Mention) -> Reading:
    """A message naming another organisation with words of its own: read as typed, unless it
    points back ("what did Bradford budget for it?", "is Southend any better at getting them
    legal help?"): then "it" and "them" are what the question before was about, asked of the
    organisation named, so it is searched with that question's words put to it. Its previous
    turn carries no citations: the reports quoted before are another organisation's."""
    body = rest if kind == "other" and rest and _OWN_QUESTION.match(rest) else q
    if not _ANAPHOR.search(body):
        return Reading(q, q)
    there = _renamed(prev.read_as, prev_named[0], new) if prev_named else prev.read_as
    return Reading(q, f"{body} (following: {there})", "carry_topic", Turn(there, there))


_SLOT_FILLER = words("followups", "slot_filler") | _FILLER
_SCALE_END = words("followups", "scale_end")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")


def swap_slot(rest: str, before: str) -> str | None:
    """The question before with one of its slots changed, when ``rest`` (a follow-up less its
    cue) names nothing but a new value for it: a grade ("and inadequate?"), a year ("and
    2025?"), the other end of a scale ("and the highest?") or a report family ("what about
    by ofsted?", added to the question). None when it names anything else, or the question
    before has no such slot to change."""
    rest = unshorten(rest)  # "and RI?"
    own = [w for w in re.findall(r"[\w']+", rest.lower()) if w not in _SLOT_FILLER]
    body = before.rstrip(" ?.!")
    if not own:
        return None
    if all(_YEAR.fullmatch(w) for w in own) and len(own) == 1:
        # "and 2025?" changes the year asked, or asks the question of that year when it
        # named none ("which councils got inadequate" / "and 2025?" was read alone).
        return (_YEAR.sub(own[0], body, count=1) if _YEAR.search(body)
                else f"{body} in {own[0]}") + "?"
    redated = _swap_month(own, body) or _swap_window(rest, own, body)
    if redated:
        return redated
    if len(own) == 1 and own[0] in _SCALE_END:
        m = re.search(rf"\b(?:{'|'.join(_SCALE_END)})\b", body, re.I)
        return body[:m.start()] + own[0] + body[m.end():] + "?" if m else None
    grade = asked_grade(f"rated {' '.join(own)}")
    old = listed_grades(body)[0]
    if grade and old and _grade_words_only(own, grade):
        at = re.search(_grade_text(old[0]), body, re.I)
        return body[:at.start()] + grade.lower() + body[at.end():] + "?" if at else None
    families = named_families(" ".join(own))
    if families and not without_families(" ".join(own)):
        # "what about by ofsted?" after "... from cqc": the family asked instead
        return f"{drop_families(body)} {rest.strip(' ?.!')}?"
    return _swap_statement(rest, body)


_MONTH = re.compile(r"\b(?:" + "|".join(MONTH_WORDS) + r")\b", re.I)


def _swap_month(own: list[str], body: str) -> str | None:
    """"What about feb 2024?" after a question about January 2025: that question of the month
    named (and of its year, when one is named). None unless the message names one month and
    at most a year, and the question before names a month to change."""
    months = [w for w in own if months_in(w, loose=True)]
    years = [w for w in own if _YEAR.fullmatch(w)]
    at = _MONTH.search(body)
    if len(months) != 1 or len(years) > 1 or len(own) != len(months) + len(years) or not at:
        return None
    out = body[:at.start()] + MONTHS[months_in(months[0], loose=True)[0] - 1] + body[at.end():]
    return (_YEAR.sub(years[0], out, count=1) if years else out) + "?"


_WINDOW_WORDS = words("followups", "window_words") | season_words()
_DATES_PHRASE = pattern("followups", "dates_phrase")
_LEADS_IN = re.compile(r"(?:in|during|over|between|before|after|since|from|prior|pre|until)\b", re.I)


def _swap_window(rest: str, own: list[str], body: str) -> str | None:
    """"and since 2024?" after "which councils did ofsted inspect before 2023?": the question
    before, asked of the dates the message names (rag/when.py reads them) in place of its
    own. None unless the message names nothing but dates and the question before names some."""
    if asked_window(rest) is None or not all(
            _YEAR.fullmatch(w) or months_in(w, loose=True) or w in _WINDOW_WORDS for w in own):
        return None
    at = _DATES_PHRASE.search(body)
    if at is None:
        return None
    said = rest.strip(" ?.!")
    said = said if _LEADS_IN.match(said) else f"in {said}"
    return f"{body[:at.start()]}{said}{body[at.end():]}?"


def _swap_statement(rest: str, body: str) -> str | None:
    """"What about safeguarding?" after a question about another quality statement: that
    question about this statement, when the message names nothing else."""
    named = statement_spans(rest)
    if len(named) != 1:
        return None
    s, e, new = named[0]
    if [w for w in re.findall(r"[\w']+", (rest[:s] + " " + rest[e:]).lower())
            if w not in _SLOT_FILLER]:
        return None
    old = [x for x in statement_spans(body) if x[2] != new]
    if not old:
        return None
    at, end, _ = old[0]
    return body[:at] + new.lower() + body[end:] + "?"


def _grade_words_only(own: list[str], grade: str) -> bool:
    words_of = set(re.findall(r"[a-z]+", grade.lower())) | {"and", "or", "to", "be"}
    return set(own) <= words_of


def _grade_text(grade: str) -> str:
    """A pattern for a grade as a question may type it: its words, whatever joins them."""
    return r"\b" + r"\W+(?:(?:and|or|to|be)\W+)*".join(
        re.escape(w) for w in re.findall(r"[a-z]+", grade.lower()) if w not in ("and", "or", "to", "be")) + r"\b"


def _following(q: str, prev: Turn) -> str:
    return f"{q.rstrip()} (following: {topic_of(prev)})"


_FOLLOWING = re.compile(r" \(following: (.*)\)$")


def topic_of(turn: Turn) -> str:
    """The standalone question a turn was about: "why? (following: X)" was about X."""
    m = _FOLLOWING.search(turn.read_as)
    return m.group(1) if m else turn.read_as


def _display(m: Mention) -> str:
    """An organisation as typed, capitalised if it was typed in lower case ("hull" -> "Hull")."""
    return m.typed.title() if m.typed.islower() else m.typed


def _renamed(text: str, old: Mention, new: Mention) -> str:
    """``text`` with the organisation ``new`` named where it named ``old``."""
    return text[:old.start] + _display(new) + text[old.end:]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _only_names(q: str, named: list[Mention]) -> bool:
    """Nothing but organisation names, follow-up cue words and filler: "and Staffordshire?"."""
    rest = q
    for m in reversed(named):
        rest = rest[:m.start] + " " + rest[m.end:]
    return not [w for w in _words(rest) if w not in _FILLER and w != "s"]


def _swap_org(prev: Turn, prev_named: list[Mention], new: Mention,
              councils: list[Council]) -> str:
    """The previous question put to another organisation."""
    if prev_named:
        return pattern("followups", "year").sub("", _renamed(prev.read_as, prev_named[0], new))
    name = _display(new)
    pu = understand(prev.read_as, councils)
    # Ofsted judges and grades, CQC rates: "judged inadequate" asks for a grade.
    graded = asks_grade(prev.read_as) and not pattern("followups", "cqc_rated").search(prev.read_as)
    asked = "grade" if graded and pu.intent not in ("which_scored", "score") else pu.intent
    template = _TEMPLATES.get(asked)
    if template and ("{statements}" not in template or pu.statements):
        return template.format(org=name, statements=" and ".join(pu.statements))
    return f"{name}: {prev.read_as}"


def _topic_question(prev: Turn, topic: str, org: str, councils: list[Council],
                    part: bool = False) -> str:
    """The question a new topic stands for, in the form of the question before ("What grade
    did X get for care leavers?"); a ``part`` of the topic before ("the ones in custody")
    keeps a figure question's form but names no judgement or score of its own."""
    # "what about their care leavers?": every template names the organisation itself, so
    # "their" goes rather than becoming "Hull's care leavers in Hull".
    topic = re.sub(r"^their\s+", "", topic.strip(), flags=re.I)
    topic = _carry(topic, org).removesuffix(f" in {org}")
    asked = _asked(understand(prev.read_as, councils), prev.read_as)
    if part and asked in ("grade", "score"):
        asked = "search"
    if asked == "grade" and not _names_a_judgement(topic):
        # "what about care leavers who are dads?" after a grade asks about those young
        # people, not for a grade: no judgement is of them.
        asked = "search"
    if asked == "quantity" and not _CONTINUES.match(topic):
        asked = "search"
    opener = _OPENER.match(prev.read_as)
    return _TOPICS.get(asked, _TOPICS["search"]).format(
        org=org, topic=topic, opener=opener.group(1).capitalize() if opener else "")


def _names_a_judgement(topic: str) -> bool:
    """Does a topic name no more than one of the judgements a report family grades ("care
    leavers", "leadership", "children in care") by the words of its name or the words people
    ask it by (ingest/profiles/*.toml)?"""
    own = set(tokenize(topic)) - _FILLER_STEMS
    return bool(own) and any(own <= names for names in _judgement_words())


@lru_cache(maxsize=1)
def _judgement_words() -> tuple[frozenset[str], ...]:
    return tuple(frozenset(tokenize(" ".join([name, *p.asked_as.get(name, ())])))
                 for p in profiles() for name in p.judgements)


_FILLER_STEMS = frozenset(tokenize(" ".join(_FILLER)))


# The question word that asks for a figure: "how long", "how many", "what percentage".
_OPENER = pattern("followups", "figure_opener")


def _asked(pu: Understanding, text: str) -> str:
    if pu.intent in ("score", "all_scores", "which_scored"):
        return "score"
    if asks_grade(text):
        return "grade"
    return "quantity" if _OPENER.match(text) else "search"


# "and to see a paediatrician?" continues the question before; "what about the quality of
# care homes?" is a question of its own.
_CONTINUES = pattern("followups", "continues")


def _carry(q: str, org: str) -> str:
    """A message that names no organisation, about the last one: "their" -> "Bury's", else
    "... in Bury". "They" stays: it is as often the children as the council."""
    body = q.rstrip(" ?.!")
    end = q[len(body):]
    if re.search(r"\btheir\b", body, re.I):
        return re.sub(r"\btheir\b", f"{org}'s", body, count=1, flags=re.I) + end
    return f"{body} in {org}{end}"


# Words that asked for the finding itself; the reason for a grade shares none of them.
_VERDICT_WORDS = pattern("followups", "verdict_words")


def topic_query(reading: Reading) -> str:
    """What a "carry_topic" message searches for: its own words with the organisation, plus
    the words of the question before that are not about asking ("how long are they waiting"
    after "are families in Brighton waiting for early help?" -> ... early help)."""
    prev = reading.previous
    own = followup_question(reading)
    return " ".join(_VERDICT_WORDS.sub(" ", f"{own} {topic_of(prev) if prev else ''}").split())


def topic_question(reading: Reading) -> str:
    """What the sentence reader reads for a "carry_topic" message: its own question with the
    organisation, then the question it points back to ("how many counties border it in
    Wiltshire? which towns are the poorest in Wiltshire"), as sentences, not the bag of
    words the search uses (`topic_query`). Read that way on the read conversation sets,
    follow-ups went 389 -> 392 of 554 with none lost; the unread fresh sets 118 -> 119."""
    prev = reading.previous
    own = followup_question(reading)
    return f"{own.rstrip(' ?')}? {topic_of(prev)}" if prev else own


def lean_of(turn: Turn) -> str:
    """Which way the finding a turn quoted leans: "shortfall" ("requires improvement to be
    good", "some shortfalls", "typically poor"), "strength" ("rated good") or "" (neither, or
    both equally). "Why?" looks for a reason leaning the same way."""
    return leaning(" ".join(c.quote for c in turn.citations))


_VERDICT_ONLY = words("followups", "verdict_only")


def asks_only_why(reading: Reading) -> bool:
    """Does a "why?" message ask only why the finding before was so ("why?", "how come", "why
    was it so bad"), adding no topic of its own ("why is supervision a problem there")?"""
    prev = reading.previous
    _, rest = cue_kind(reading.question)
    rest = _VERDICT_WORDS.sub(" ", pattern("followups", "why_opener").sub(" ", rest))
    known = set(tokenize(topic_of(prev) if prev else "")) | set(tokenize(" ".join(_VERDICT_ONLY)))
    return not set(tokenize(rest)) - known


def reason_query(reading: Reading) -> str:
    """What "why?" searches for: the topic of the turn before without the words that asked
    for its verdict, plus anything the message adds ("why did it slip")."""
    prev = reading.previous
    topic = topic_of(prev) if prev else ""
    _, rest = cue_kind(reading.question)
    rest = pattern("followups", "why_opener").sub(" ", rest)
    return " ".join(_VERDICT_WORDS.sub(" ", f"{topic} {rest}").split())


_TEMPLATES = {r["intent"]: r["text"] for r in vocab("followups")["template"]}
_TOPICS = {r["asked"]: r["text"] for r in vocab("followups")["topic"]}


# --- answers that need no new search -----------------------------------------------------

def page_answer(reading: Reading, eng: Engine) -> Answer | None:
    """"Which page is that on?": the page of each passage the last answer cited; after an
    answer that quoted none, of the closest passages it showed instead."""
    cites = _previous_citations(reading, eng)
    shown = () if cites or reading.previous is None else _reread(reading.previous.see_also, eng)
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
    before = eng.retriever.report_text(c.report_id)[:c.start]
    return bool(c.section) and c.section != c.council and re.search(
        rf"(?m)^\s*{re.escape(c.section)}\s*:?\s*$", before) is not None


def more_answer(reading: Reading, eng: Engine,
                quoted_before: Sequence[tuple[str, int, int]] = ()) -> Answer | None:
    """"Tell me more": first what the paragraph of the best passage quoted ([1]) says besides
    it, as much as an answer holds (the rest of the paragraph, then its opening: "For example,
    only four carers were recruited" is an example of the sentence before it; a paragraph
    keeps to one subject, the next often starts another); else the sentences the last answer
    skipped between two passages it quoted from one stretch of a report, then the report's
    next sentences after the last passage cited. Nothing quoted earlier in the conversation
    (``quoted_before``) is quoted again, so "more" after "more" goes on through the report."""
    cites = _previous_citations(reading, eng)
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
    cites = _previous_citations(reading, eng)
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
    for c in _previous_citations(reading, eng):
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
    for c in _previous_citations(reading, eng):
        text = eng.retriever.report_text(c.report_id)
        for s, e in quotable_spans(text, c.start, c.end):
            if _CAUSE_WITHIN.search(text, s, e) or (purpose and PURPOSE.search(text, s, e)):
                return quoting(reading, cite_span(1, c.report_id, eng, s, e, council=c.council))
    return None


_CONSEQUENCE = pattern("sentences", "consequence")
_POINTS_BACK = pattern("sentences", "anaphor")
_CAUSE_WITHIN = pattern("followups", "cause_within")
_NEAR_CHARS = 600  # longer than nearly every report sentence
_ASKS_ACTION = pattern("followups", "asks_action")
_ABOUT_THESE = pattern("cues", "about_these")
_EXAMPLES_FOLLOW = pattern("sentences", "examples_follow")
ACTION_SENTENCES = 3  # how far past a quoted problem its response is looked for
# Words of "whats the council doin about it" that name no topic, as typed and as stemmed.
_NOT_A_TOPIC = _FILLER | set(tokenize(" ".join(_FILLER | {"what", "whats", "anything", "they"}
                                                | words("followups", "actor"))))


def asks_action(reading: Reading) -> bool:
    """Does the message ask what is being done about what was just quoted ("what are they
    doing about it?", "have they done anything about it")? Not when it asks for a figure
    ("how much are they putting in to fix it?") or names a topic the last turn did not."""
    q = reading.question
    if reading.previous is None or not _ASKS_ACTION.search(q) or _OPENER.match(q):
        return False
    said = " ".join([topic_of(reading.previous)] + [c.quote for c in reading.previous.citations])
    return not set(tokenize(_ASKS_ACTION.sub(" ", q))) - set(tokenize(said)) - _NOT_A_TOPIC


def action_after_quote(reading: Reading, eng: Engine) -> Answer | None:
    """"What are they doing about it?" after a quoted problem: the first of the next few
    sentences of the same paragraph that says what is being done ("Leaders have started to
    work with ..."), or further on one that names the problems it answers ("The ICB is aware
    of these issues and has started a full review"), with its example if the next sentence
    gives one. None when the paragraph says nothing of the kind (the question is then
    searched as any other)."""
    cites = _previous_citations(reading, eng)
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


_ASKS_CONSEQUENCE = pattern("followups", "asks_consequence")
_CONSEQUENCE_WITHIN = pattern("cues", "consequence_within")
CONSEQUENCE_SENTENCES = 2  # how far past a quoted finding what follows from it is looked for


def asks_consequence(reading: Reading) -> bool:
    """Does the message ask what follows from the finding just quoted ("so what does that
    mean for families?", "why's that a problem")?"""
    return reading.previous is not None and bool(_ASKS_CONSEQUENCE.search(reading.question))


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


_JUDGES_FIGURE = pattern("followups", "judges_figure")


def asks_comparison(reading: Reading) -> bool:
    """Does the message ask how the figure just given compares ("is that good?", "is that
    better than the national average?", "how does that compare")?"""
    return reading.previous is not None and bool(_JUDGES_FIGURE.search(reading.question))


def comparison_in_quote(reading: Reading, eng: Engine) -> Answer | None:
    """"Is that good?" after a quoted figure: the sentence of the last answer that sets it
    against an average or another figure, else the next sentence of its paragraph when that
    one does ("This is higher than the England average."). None when neither does: the
    question is then searched as any other."""
    return _in_or_after_quote(reading, eng, lambda sentence: bool(COMPARISON.search(sentence)), 1)


def asks_when(reading: Reading) -> bool:
    """Does the message ask when what was just quoted happened ("when was that?")?"""
    return reading.previous is not None and bool(_ASKS_WHEN.match(reading.question))


def date_in_quote(reading: Reading, eng: Engine) -> Answer | None:
    """"When was that?" after a quoted finding: the quote's sentence that names a year or a
    month, else the first of the next WHEN_SENTENCES of its paragraph that does ("In May 2024
    they appointed ..."). None when none does: the question is then searched as any other."""
    return _in_or_after_quote(reading, eng, _dated, WHEN_SENTENCES)


def _dated(sentence: str) -> bool:
    return bool(_YEAR.search(sentence) or months_in(sentence))


_ASKS_WHEN = pattern("followups", "asks_when")
WHEN_SENTENCES = 2  # as for a consequence: a finding, what followed, then when


def _in_or_after_quote(reading: Reading, eng: Engine, says: Callable[[str], bool],
                       after: int) -> Answer | None:
    """The first sentence of the last answer's quotes that ``says`` what is asked, else the
    first of the ``after`` sentences that follow the last passage in its paragraph that does,
    quoted alone. None when none does."""
    cites = _previous_citations(reading, eng)
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


def _previous_citations(reading: Reading, eng: Engine) -> tuple[Citation, ...]:
    """The last answer's citations, re-made from the index."""
    return as_indexed(reading.previous, eng).citations if reading.previous else ()


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


def followup_question(reading: Reading) -> str:
    """The message as its own question, without the "(following: ...)" note."""
    return _FOLLOWING.sub("", reading.read_as)
