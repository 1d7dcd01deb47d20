"""Chat follow-ups: a message read in the light of the turn before it. Public: `Reading`,
`read_in_context`, `followup_question`, `topic_of`, and the `asks_*` checks of what a
follow-up asks of the passage just quoted.

People type "and Staffordshire?", "what about care leavers?", "why?" or "which page is that
on?" after a question. rag/vocab/followups.toml lists the kinds of follow-up (cues) and the
questions they stand for (templates); this module matches a message against them and writes
out the question it stands for, which the app shows ("Read as: ...") and the router answers
like any other question. "page", "more" and the questions about the passage just quoted are
answered from it by rag/quote_answers.py, without a new search.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ingest.profiles import profiles
from rag.evidence import leaning
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
from reportqa.records import Turn
from reportqa.text import MONTH_WORDS, MONTHS, months_in

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


_THEIR_OPENER = pattern("followups", "their_opener")


def _carry(q: str, org: str) -> str:
    """A message that names no organisation, about the last one: "their" -> "Bury's" when
    nothing before it could be what it points to, else "... in Bury". "They" stays: it is
    as often the children as the council."""
    body = q.rstrip(" ?.!")
    end = q[len(body):]
    if _THEIR_OPENER.match(body):
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


_ASKS_ACTION = pattern("followups", "asks_action")


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


_ASKS_CONSEQUENCE = pattern("followups", "asks_consequence")


def asks_consequence(reading: Reading) -> bool:
    """Does the message ask what follows from the finding just quoted ("so what does that
    mean for families?", "why's that a problem")?"""
    return reading.previous is not None and bool(_ASKS_CONSEQUENCE.search(reading.question))


_JUDGES_FIGURE = pattern("followups", "judges_figure")


def asks_comparison(reading: Reading) -> bool:
    """Does the message ask how the figure just given compares ("is that good?", "is that
    better than the national average?", "how does that compare")?"""
    return reading.previous is not None and bool(_JUDGES_FIGURE.search(reading.question))


def asks_when(reading: Reading) -> bool:
    """Does the message ask when what was just quoted happened ("when was that?")?"""
    return reading.previous is not None and bool(_ASKS_WHEN.match(reading.question))


_ASKS_WHEN = pattern("followups", "asks_when")


def followup_question(reading: Reading) -> str:
    """The message as its own question, without the "(following: ...)" note."""
    return _FOLLOWING.sub("", reading.read_as)
